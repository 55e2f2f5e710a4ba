//! Accounts (tenants) and their AccessKeys.

use crate::{Store, StoreError};
use nimbus_core::clock::now_millis;
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub status: String,
    pub created_at: i64,
}

/// An AccessKey as stored: the secret is wrapped by the region root key, never plaintext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKeyRecord {
    pub id: String,
    pub account_id: String,
    /// `root` for an account's root identity; `user` for RAM users (RAM issue).
    pub principal_type: String,
    pub principal_id: String,
    pub secret_wrapped: String,
    /// `Active` or `Inactive`.
    pub status: String,
    pub created_at: i64,
}

fn account_from(row: &AnyRow) -> Result<Account, StoreError> {
    Ok(Account {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
    })
}

fn key_from(row: &AnyRow) -> Result<AccessKeyRecord, StoreError> {
    Ok(AccessKeyRecord {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        principal_type: row.try_get("principal_type")?,
        principal_id: row.try_get("principal_id")?,
        secret_wrapped: row.try_get("secret_wrapped")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    pub async fn create_account(&self, id: &str, name: &str) -> Result<Account, StoreError> {
        let now = now_millis();
        let done = sqlx::query(
            "INSERT INTO accounts (id, name, status, created_at) VALUES ($1, $2, 'Enabled', $3) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(now)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::AlreadyExists);
        }
        Ok(Account { id: id.into(), name: name.into(), status: "Enabled".into(), created_at: now })
    }

    pub async fn get_account(&self, id: &str) -> Result<Account, StoreError> {
        let row = sqlx::query("SELECT id, name, status, created_at FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound)?;
        account_from(&row)
    }

    pub async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        sqlx::query("SELECT id, name, status, created_at FROM accounts ORDER BY created_at, id")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(account_from)
            .collect()
    }

    pub async fn insert_access_key(&self, k: &AccessKeyRecord) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO access_keys (id, account_id, principal_type, principal_id, secret_wrapped, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&k.id)
        .bind(&k.account_id)
        .bind(&k.principal_type)
        .bind(&k.principal_id)
        .bind(&k.secret_wrapped)
        .bind(&k.status)
        .bind(k.created_at)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::AlreadyExists);
        }
        Ok(())
    }

    /// Sets an account's status (`Enabled` or `Disabled`). A disabled account's keys stop working.
    pub async fn set_account_status(&self, id: &str, status: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE accounts SET status = $1 WHERE id = $2")
            .bind(status)
            .bind(id)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// The AccessKeys of one principal, oldest first.
    pub async fn list_access_keys(
        &self,
        account_id: &str,
        principal_type: &str,
        principal_id: &str,
    ) -> Result<Vec<AccessKeyRecord>, StoreError> {
        sqlx::query(
            "SELECT id, account_id, principal_type, principal_id, secret_wrapped, status, created_at FROM access_keys \
             WHERE account_id = $1 AND principal_type = $2 AND principal_id = $3 ORDER BY created_at, id",
        )
        .bind(account_id)
        .bind(principal_type)
        .bind(principal_id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(key_from)
        .collect()
    }

    /// Sets a key's status (`Active`/`Inactive`), within its account.
    pub async fn set_access_key_status(&self, account_id: &str, id: &str, status: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE access_keys SET status = $1 WHERE account_id = $2 AND id = $3")
            .bind(status)
            .bind(account_id)
            .bind(id)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    pub async fn delete_access_key(&self, account_id: &str, id: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM access_keys WHERE account_id = $1 AND id = $2")
            .bind(account_id)
            .bind(id)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Every AccessKey of every account (for root key rotation, never for a tenant's request).
    pub async fn all_access_keys(&self) -> Result<Vec<AccessKeyRecord>, StoreError> {
        sqlx::query("SELECT id, account_id, principal_type, principal_id, secret_wrapped, status, created_at FROM access_keys ORDER BY id")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(key_from)
            .collect()
    }

    /// Replaces a key's wrapped secret (after re-wrapping it under a new root-key generation).
    pub async fn set_access_key_wrapped(&self, id: &str, secret_wrapped: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE access_keys SET secret_wrapped = $1 WHERE id = $2")
            .bind(secret_wrapped)
            .bind(id)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// The AccessKey `id` with its account's status folded in: a key of a disabled account is
    /// reported `Inactive`.
    pub async fn get_access_key(&self, id: &str) -> Result<AccessKeyRecord, StoreError> {
        let row = sqlx::query(
            "SELECT k.id, k.account_id, k.principal_type, k.principal_id, k.secret_wrapped, \
                    CASE WHEN a.status = 'Enabled' THEN k.status ELSE 'Inactive' END AS status, k.created_at \
             FROM access_keys k JOIN accounts a ON a.id = k.account_id WHERE k.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound)?;
        key_from(&row)
    }
}
