//! Resources with optimistic concurrency, and `ClientToken` idempotency records.

use crate::{Store, StoreError};
use nimbus_core::clock::now_millis;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// One cloud resource. Every read and write is scoped by `account_id`: a resource of another account
/// is indistinguishable from one that does not exist.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub id: String,
    pub account_id: String,
    /// e.g. `ecs.instance`, `vpc.vpc`.
    pub kind: String,
    pub region: String,
    /// Desired state, as the API last wrote it.
    pub spec: Value,
    /// Observed state, as the controller last saw it.
    pub status: Value,
    pub tags: Value,
    /// Bumped by every write; an update names the version it read.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Resource {
    pub fn new(id: &str, account_id: &str, kind: &str, region: &str, spec: Value) -> Self {
        Resource {
            id: id.into(),
            account_id: account_id.into(),
            kind: kind.into(),
            region: region.into(),
            spec,
            status: Value::Object(Default::default()),
            tags: Value::Object(Default::default()),
            version: 0,
            created_at: 0,
            updated_at: 0,
        }
    }

    /// A read-only view of this row's spec as `T`, for code that reads another service's rows
    /// (a VPC checking an instance's address) without owning their schema. Never write a view
    /// back: fields it does not name would be lost; the owning service's [`crate::Kind`] writes.
    pub fn spec_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, StoreError> {
        serde_json::from_value(self.spec.clone())
            .map_err(|e| StoreError::Corrupt(format!("{} {} spec: {e}", self.kind, self.id)))
    }
}

const COLUMNS: &str = "id, account_id, kind, region, spec, status, tags, version, created_at, updated_at";

fn resource_from(row: &AnyRow) -> Result<Resource, StoreError> {
    let json = |c: &str| -> Result<Value, StoreError> {
        let s: String = row.try_get(c)?;
        Ok(serde_json::from_str(&s)?)
    };
    Ok(Resource {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        kind: row.try_get("kind")?,
        region: row.try_get("region")?,
        spec: json("spec")?,
        status: json("status")?,
        tags: json("tags")?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The outcome of claiming a `ClientToken` before running a create call.
#[derive(Debug, PartialEq)]
pub enum Claim {
    /// First time: run the call, then [`Store::complete_idempotency`].
    New,
    /// A finished call with the same token and parameters: return its response again.
    Replay(Value),
    /// The same token is being served right now by another request.
    InFlight,
    /// The same token was used with different parameters (`IdempotentParameterMismatch`).
    Mismatch,
}

impl Store {
    /// Inserts `r` at version 1. Fails with `AlreadyExists` if the id is taken.
    pub async fn create_resource(&self, r: &Resource) -> Result<Resource, StoreError> {
        let now = now_millis();
        let done = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO resources ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8) ON CONFLICT DO NOTHING"
        )))
        .bind(&r.id)
        .bind(&r.account_id)
        .bind(&r.kind)
        .bind(&r.region)
        .bind(r.spec.to_string())
        .bind(r.status.to_string())
        .bind(r.tags.to_string())
        .bind(now)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::AlreadyExists);
        }
        Ok(Resource { version: 1, created_at: now, updated_at: now, ..r.clone() })
    }

    pub async fn get_resource(&self, account_id: &str, id: &str) -> Result<Resource, StoreError> {
        let row =
            sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM resources WHERE account_id = $1 AND id = $2")))
                .bind(account_id)
                .bind(id)
                .fetch_optional(self.pool())
                .await?
                .ok_or(StoreError::NotFound)?;
        resource_from(&row)
    }

    /// Resources of one kind in one account, in id order, after `after` (exclusive), at most `limit`.
    pub async fn list_resources(
        &self,
        account_id: &str,
        kind: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Resource>, StoreError> {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM resources WHERE account_id = $1 AND kind = $2 AND id > $3 ORDER BY id LIMIT $4"
        )))
        .bind(account_id)
        .bind(kind)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(resource_from)
        .collect()
    }

    /// Resources of one kind in every account, in id order: for controllers and background work,
    /// never for answering a tenant's request.
    /// Every resource of `kind` in `account_id`, in id order (read page by page).
    pub async fn all_resources(&self, account_id: &str, kind: &str) -> Result<Vec<Resource>, StoreError> {
        let mut out: Vec<Resource> = vec![];
        loop {
            let page = self.list_resources(account_id, kind, out.last().map(|r| r.id.as_str()), 500).await?;
            let done = page.len() < 500;
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }

    /// Every resource of `kind` of every account, in id order (background work).
    pub async fn all_resources_all_accounts(&self, kind: &str) -> Result<Vec<Resource>, StoreError> {
        let mut out: Vec<Resource> = vec![];
        loop {
            let page = self.list_resources_all_accounts(kind, out.last().map(|r| r.id.as_str()), 500).await?;
            let done = page.len() < 500;
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }

    pub async fn list_resources_all_accounts(
        &self,
        kind: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Resource>, StoreError> {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM resources WHERE kind = $1 AND id > $2 ORDER BY id LIMIT $3"
        )))
        .bind(kind)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(resource_from)
        .collect()
    }

    /// Resources of one kind in one account whose id starts with `prefix`, in id order, after
    /// `after` (exclusive), at most `limit`. (`substr` rather than LIKE: ids may hold `_` and `%`.)
    pub async fn list_resources_prefixed(
        &self,
        account_id: &str,
        kind: &str,
        prefix: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Resource>, StoreError> {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM resources WHERE account_id = $1 AND kind = $2 AND substr(id, 1, CAST($3 AS INTEGER)) = $4 AND id > $5 \
             ORDER BY id LIMIT $6"
        )))
        .bind(account_id)
        .bind(kind)
        .bind(prefix.chars().count() as i64)
        .bind(prefix)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(resource_from)
        .collect()
    }

    /// Writes `r`'s spec, status and tags if its `version` is still the stored one; returns the row
    /// at its new version. `Conflict` if another write got there first, `NotFound` if it is gone.
    pub async fn update_resource(&self, r: &Resource) -> Result<Resource, StoreError> {
        let now = now_millis();
        let done = sqlx::query(
            "UPDATE resources SET spec = $1, status = $2, tags = $3, version = version + 1, updated_at = $4 \
             WHERE account_id = $5 AND id = $6 AND version = $7",
        )
        .bind(r.spec.to_string())
        .bind(r.status.to_string())
        .bind(r.tags.to_string())
        .bind(now)
        .bind(&r.account_id)
        .bind(&r.id)
        .bind(r.version)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Resource { version: r.version + 1, updated_at: now, ..r.clone() });
        }
        match self.get_resource(&r.account_id, &r.id).await {
            Ok(_) => Err(StoreError::Conflict),
            Err(e) => Err(e),
        }
    }

    /// Deletes `id` if its version is still `version`.
    pub async fn delete_resource(&self, account_id: &str, id: &str, version: i64) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM resources WHERE account_id = $1 AND id = $2 AND version = $3")
            .bind(account_id)
            .bind(id)
            .bind(version)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        match self.get_resource(account_id, id).await {
            Ok(_) => Err(StoreError::Conflict),
            Err(e) => Err(e),
        }
    }

    /// Claims `token` for (`account_id`, `principal`, `action`) with the hash of the request's
    /// parameters. Records are the principal's own: another principal of the same account using
    /// the same token claims a record of its own and never sees this one's response.
    pub async fn claim_idempotency(
        &self,
        account_id: &str,
        principal: &str,
        action: &str,
        token: &str,
        request_hash: &str,
    ) -> Result<Claim, StoreError> {
        let done = sqlx::query(
            "INSERT INTO idempotency (account_id, principal, action, token, request_hash, response, created_at) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6) ON CONFLICT DO NOTHING",
        )
        .bind(account_id)
        .bind(principal)
        .bind(action)
        .bind(token)
        .bind(request_hash)
        .bind(now_millis())
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Claim::New);
        }
        let row = sqlx::query(
            "SELECT request_hash, response FROM idempotency \
             WHERE account_id = $1 AND principal = $2 AND action = $3 AND token = $4",
        )
        .bind(account_id)
        .bind(principal)
        .bind(action)
        .bind(token)
        .fetch_one(self.pool())
        .await?;
        let stored_hash: String = row.try_get("request_hash")?;
        let response: Option<String> = row.try_get("response")?;
        Ok(match (stored_hash == request_hash, response) {
            (false, _) => Claim::Mismatch,
            (true, None) => Claim::InFlight,
            (true, Some(r)) => Claim::Replay(serde_json::from_str(&r)?),
        })
    }

    /// Records the response of a claimed call so retries get it back.
    pub async fn complete_idempotency(
        &self,
        account_id: &str,
        principal: &str,
        action: &str,
        token: &str,
        response: &Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE idempotency SET response = $1 \
             WHERE account_id = $2 AND principal = $3 AND action = $4 AND token = $5",
        )
        .bind(response.to_string())
        .bind(account_id)
        .bind(principal)
        .bind(action)
        .bind(token)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Releases a claim whose call failed, so a retry with the same token runs again.
    pub async fn abandon_idempotency(
        &self,
        account_id: &str,
        principal: &str,
        action: &str,
        token: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency \
             WHERE account_id = $1 AND principal = $2 AND action = $3 AND token = $4 AND response IS NULL",
        )
        .bind(account_id)
        .bind(principal)
        .bind(action)
        .bind(token)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
