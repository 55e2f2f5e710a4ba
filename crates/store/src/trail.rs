//! ActionTrail storage: events in an append-only hash chain, and the signed digests over it.
//! The trail crate computes hashes and signatures; this module only stores and reads rows.

use crate::{Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// One stored event. `body` is the event's canonical JSON; the other columns are lookup keys.
#[derive(Clone, Debug, PartialEq)]
pub struct TrailRow {
    pub seq: i64,
    pub event_id: String,
    pub event_time: i64,
    pub account_id: String,
    pub event_name: String,
    pub service_name: String,
    pub event_rw: String,
    pub access_key_id: String,
    pub user_name: String,
    pub resource_name: String,
    pub error_code: String,
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
}

/// A signed digest: `body` (JSON) and its signature.
#[derive(Clone, Debug, PartialEq)]
pub struct DigestRow {
    pub seq: i64,
    pub body: String,
    pub signature: String,
}

/// The columns `LookupEvents` may filter on (a fixed list: never caller-chosen SQL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrailKey {
    EventName,
    ServiceName,
    EventRw,
    AccessKeyId,
    UserName,
    EventId,
    ResourceName,
}

impl TrailKey {
    fn column(self) -> &'static str {
        match self {
            TrailKey::EventName => "event_name",
            TrailKey::ServiceName => "service_name",
            TrailKey::EventRw => "event_rw",
            TrailKey::AccessKeyId => "access_key_id",
            TrailKey::UserName => "user_name",
            TrailKey::EventId => "event_id",
            TrailKey::ResourceName => "resource_name",
        }
    }
}

const COLUMNS: &str = "seq, event_id, event_time, account_id, event_name, service_name, event_rw, access_key_id, \
                       user_name, resource_name, error_code, body, prev_hash, hash";

fn row_from(r: &AnyRow) -> Result<TrailRow, StoreError> {
    Ok(TrailRow {
        seq: r.try_get("seq")?,
        event_id: r.try_get("event_id")?,
        event_time: r.try_get("event_time")?,
        account_id: r.try_get("account_id")?,
        event_name: r.try_get("event_name")?,
        service_name: r.try_get("service_name")?,
        event_rw: r.try_get("event_rw")?,
        access_key_id: r.try_get("access_key_id")?,
        user_name: r.try_get("user_name")?,
        resource_name: r.try_get("resource_name")?,
        error_code: r.try_get("error_code")?,
        body: r.try_get("body")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

impl Store {
    /// The last event's (seq, hash), or (0, "") for an empty trail.
    pub async fn trail_head(&self) -> Result<(i64, String), StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM trail_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => (r.try_get("seq")?, r.try_get("hash")?),
            None => (0, String::new()),
        })
    }

    /// Appends a batch in one transaction (one fsync for the lot).
    pub async fn append_trail(&self, rows: &[TrailRow]) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        for r in rows {
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO trail_events ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            )))
            .bind(r.seq)
            .bind(&r.event_id)
            .bind(r.event_time)
            .bind(&r.account_id)
            .bind(&r.event_name)
            .bind(&r.service_name)
            .bind(&r.event_rw)
            .bind(&r.access_key_id)
            .bind(&r.user_name)
            .bind(&r.resource_name)
            .bind(&r.error_code)
            .bind(&r.body)
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Events in chain order after `after_seq`, at most `limit` (for verification and delivery).
    pub async fn trail_range(&self, after_seq: i64, limit: i64) -> Result<Vec<TrailRow>, StoreError> {
        sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM trail_events WHERE seq > $1 ORDER BY seq LIMIT $2")))
            .bind(after_seq)
            .bind(limit)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(row_from)
            .collect()
    }

    /// One account's events between `start` and `end` (unix ms, inclusive) matching every filter,
    /// newest first (or oldest first when `forward`), continuing past `cursor` (a seq).
    /// (LookupEvents' own parameters, one argument each: a struct would only rename them.)
    #[allow(clippy::too_many_arguments)]
    pub async fn lookup_trail(
        &self,
        account_id: &str,
        start: i64,
        end: i64,
        filters: &[(TrailKey, String)],
        cursor: Option<i64>,
        forward: bool,
        limit: i64,
    ) -> Result<Vec<TrailRow>, StoreError> {
        let mut sql = format!(
            "SELECT {COLUMNS} FROM trail_events WHERE account_id = $1 AND event_time >= $2 AND event_time <= $3"
        );
        for (i, (k, _)) in filters.iter().enumerate() {
            sql.push_str(&format!(" AND {} = ${}", k.column(), i + 4));
        }
        let n = filters.len() + 4;
        sql.push_str(&if forward {
            format!(" AND seq > ${n} ORDER BY seq LIMIT ${}", n + 1)
        } else {
            format!(" AND seq < ${n} ORDER BY seq DESC LIMIT ${}", n + 1)
        });
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(account_id).bind(start).bind(end);
        for (_, v) in filters {
            q = q.bind(v.clone());
        }
        let cursor = cursor.unwrap_or(if forward { 0 } else { i64::MAX });
        q.bind(cursor).bind(limit).fetch_all(self.pool()).await?.iter().map(row_from).collect()
    }

    pub async fn append_digest(&self, d: &DigestRow) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO trail_digests (seq, body, signature) VALUES ($1, $2, $3)")
            .bind(d.seq)
            .bind(&d.body)
            .bind(&d.signature)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn digests(&self) -> Result<Vec<DigestRow>, StoreError> {
        sqlx::query("SELECT seq, body, signature FROM trail_digests ORDER BY seq")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                Ok(DigestRow { seq: r.try_get("seq")?, body: r.try_get("body")?, signature: r.try_get("signature")? })
            })
            .collect()
    }
}
