//! A durable job queue with leases.
//!
//! A worker *leases* a ready job for a while (`lease_until`), reports progress with *heartbeats*
//! that extend the lease, and finally completes or fails it. A worker that dies simply stops
//! heartbeating: once its lease runs out any worker may take the job again, and the job resumes
//! from its last `checkpoint`. A restarting node also reclaims at once the leases it held itself
//! ([`Store::reclaim_jobs`]), since their previous holder is certainly dead.
//!
//! Every transition is one conditional UPDATE (`… WHERE id = $1 AND lease_owner = $2 …`), so two
//! workers racing for one job cannot both win, on SQLite or on PostgreSQL.

use crate::{Store, StoreError};
use nimbus_core::clock::now_millis;
use nimbus_core::ids::resource_id;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "Queued",
            JobState::Running => "Running",
            JobState::Succeeded => "Succeeded",
            JobState::Failed => "Failed",
        }
    }
    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "Queued" => JobState::Queued,
            "Running" => JobState::Running,
            "Succeeded" => JobState::Succeeded,
            "Failed" => JobState::Failed,
            other => return Err(StoreError::Corrupt(format!("job state {other:?}"))),
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub account_id: String,
    pub payload: Value,
    pub state: JobState,
    /// How many times a worker has leased it (the current run included).
    pub attempts: i64,
    pub max_attempts: i64,
    pub lease_owner: Option<String>,
    pub progress: i64,
    pub checkpoint: Option<Value>,
    pub result: Option<Value>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What to enqueue.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub kind: String,
    pub account_id: String,
    pub payload: Value,
    pub max_attempts: i64,
}

const COLUMNS: &str = "id, kind, account_id, payload, state, attempts, max_attempts, lease_owner, progress, \
                       checkpoint, result, last_error, created_at, updated_at";

// A job is ready when queued and due, or running under a lease that has run out.
const READY: &str = "((state = 'Queued' AND run_after <= $1) OR (state = 'Running' AND lease_until < $1))";

fn job_from(row: &AnyRow) -> Result<Job, StoreError> {
    let opt_json = |c: &str| -> Result<Option<Value>, StoreError> {
        let s: Option<String> = row.try_get(c)?;
        Ok(match s {
            Some(s) => Some(serde_json::from_str(&s)?),
            None => None,
        })
    };
    let payload: String = row.try_get("payload")?;
    let state: String = row.try_get("state")?;
    Ok(Job {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        account_id: row.try_get("account_id")?,
        payload: serde_json::from_str(&payload)?,
        state: JobState::parse(&state)?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        lease_owner: row.try_get("lease_owner")?,
        progress: row.try_get("progress")?,
        checkpoint: opt_json("checkpoint")?,
        result: opt_json("result")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    pub async fn enqueue_job(&self, new: &NewJob) -> Result<Job, StoreError> {
        let id = resource_id("job-");
        let now = now_millis();
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO jobs ({COLUMNS}, run_after) VALUES ($1, $2, $3, $4, 'Queued', 0, $5, NULL, 0, NULL, NULL, NULL, $6, $6, $6)"
        )))
        .bind(&id)
        .bind(&new.kind)
        .bind(&new.account_id)
        .bind(new.payload.to_string())
        .bind(new.max_attempts.max(1))
        .bind(now)
        .execute(self.pool())
        .await?;
        self.get_job(&id).await
    }

    pub async fn get_job(&self, id: &str) -> Result<Job, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM jobs WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound)?;
        job_from(&row)
    }

    /// Newest first.
    pub async fn list_jobs(&self, limit: i64) -> Result<Vec<Job>, StoreError> {
        sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM jobs ORDER BY created_at DESC, id LIMIT $1")))
            .bind(limit)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(job_from)
            .collect()
    }

    /// Leases the oldest ready job of one of `kinds` to `owner` for `lease_ms`. A job whose lease ran
    /// out after its last allowed attempt is marked Failed instead of being handed out again.
    pub async fn lease_job(&self, owner: &str, kinds: &[&str], lease_ms: i64) -> Result<Option<Job>, StoreError> {
        let now = now_millis();
        sqlx::query(
            "UPDATE jobs SET state = 'Failed', lease_owner = NULL, lease_until = NULL, updated_at = $1, \
             last_error = COALESCE(last_error, 'worker lost its lease on the last attempt') \
             WHERE state = 'Running' AND lease_until < $1 AND attempts >= max_attempts",
        )
        .bind(now)
        .execute(self.pool())
        .await?;
        let candidates = sqlx::query(AssertSqlSafe(format!(
            "SELECT id, kind FROM jobs WHERE {READY} ORDER BY run_after, created_at, id LIMIT 16"
        )))
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        for row in candidates {
            let id: String = row.try_get("id")?;
            let kind: String = row.try_get("kind")?;
            if !kinds.contains(&kind.as_str()) {
                continue;
            }
            let won = sqlx::query(AssertSqlSafe(format!(
                "UPDATE jobs SET state = 'Running', lease_owner = $2, lease_until = $3, attempts = attempts + 1, \
                 updated_at = $1 WHERE id = $4 AND {READY}"
            )))
            .bind(now)
            .bind(owner)
            .bind(now + lease_ms)
            .bind(&id)
            .execute(self.pool())
            .await?;
            if won.rows_affected() == 1 {
                return Ok(Some(self.get_job(&id).await?));
            }
        }
        Ok(None)
    }

    /// Records progress (0–100) and a resumable checkpoint, and extends the lease. Returns false if
    /// `owner` no longer holds the job: the worker must stop, someone else has it.
    pub async fn heartbeat_job(
        &self,
        id: &str,
        owner: &str,
        progress: i64,
        checkpoint: Option<&Value>,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let now = now_millis();
        let done = sqlx::query(
            "UPDATE jobs SET progress = $1, checkpoint = COALESCE($2, checkpoint), lease_until = $3, updated_at = $4 \
             WHERE id = $5 AND lease_owner = $6 AND state = 'Running'",
        )
        .bind(progress.clamp(0, 100))
        .bind(checkpoint.map(Value::to_string))
        .bind(now + lease_ms)
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn complete_job(&self, id: &str, owner: &str, result: &Value) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'Succeeded', progress = 100, result = $1, lease_owner = NULL, lease_until = NULL, \
             updated_at = $2 WHERE id = $3 AND lease_owner = $4 AND state = 'Running'",
        )
        .bind(result.to_string())
        .bind(now_millis())
        .bind(id)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Fails this attempt: the job is queued again after `retry_in_ms`, or marked Failed when it has
    /// used all its attempts (or `permanent`).
    pub async fn fail_job(
        &self,
        id: &str,
        owner: &str,
        error: &str,
        retry_in_ms: i64,
        permanent: bool,
    ) -> Result<bool, StoreError> {
        let now = now_millis();
        let done = sqlx::query(
            "UPDATE jobs SET state = CASE WHEN $1 = 1 OR attempts >= max_attempts THEN 'Failed' ELSE 'Queued' END, \
             run_after = $2, last_error = $3, lease_owner = NULL, lease_until = NULL, updated_at = $4 \
             WHERE id = $5 AND lease_owner = $6 AND state = 'Running'",
        )
        .bind(i64::from(permanent))
        .bind(now + retry_in_ms)
        .bind(error)
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts back in the queue every job `owner` was running. Called by a node as it starts: whatever
    /// it held before was held by a process that is no longer running.
    pub async fn reclaim_jobs(&self, owner: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'Queued', lease_owner = NULL, lease_until = NULL, run_after = $1, updated_at = $1 \
             WHERE state = 'Running' AND lease_owner = $2",
        )
        .bind(now_millis())
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }
}
