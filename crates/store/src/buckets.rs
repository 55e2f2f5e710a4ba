//! OSS buckets and multipart uploads.
//!
//! A bucket row holds its owner and its configuration (ACL, encryption, CORS, policy, …) as one
//! JSON document written with an optimistic version. An upload's parts are rows of their own;
//! completing an upload replaces the object row and removes the upload in one transaction, so a
//! crash leaves either the upload or the object, never a half-assembled object.

use crate::objects::ObjectRow;
use crate::{Store, StoreError};
use nimbus_core::clock::now_millis;
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Clone, Debug, PartialEq)]
pub struct BucketRow {
    pub name: String,
    pub account_id: String,
    pub created_at: i64,
    pub config: serde_json::Value,
    pub version: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UploadRow {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub initiated: i64,
    pub meta: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PartRow {
    pub upload_id: String,
    pub part_number: i64,
    pub size: i64,
    pub etag: String,
    pub last_modified: i64,
    pub meta: serde_json::Value,
}

fn bucket_from(r: &AnyRow) -> Result<BucketRow, StoreError> {
    let config: String = r.try_get("config")?;
    Ok(BucketRow {
        name: r.try_get("name")?,
        account_id: r.try_get("account_id")?,
        created_at: r.try_get("created_at")?,
        config: serde_json::from_str(&config)?,
        version: r.try_get("version")?,
    })
}

fn upload_from(r: &AnyRow) -> Result<UploadRow, StoreError> {
    let meta: String = r.try_get("meta")?;
    Ok(UploadRow {
        upload_id: r.try_get("upload_id")?,
        bucket: r.try_get("bucket")?,
        key: r.try_get("object_key")?,
        initiated: r.try_get("initiated")?,
        meta: serde_json::from_str(&meta)?,
    })
}

fn part_from(r: &AnyRow) -> Result<PartRow, StoreError> {
    let meta: String = r.try_get("meta")?;
    Ok(PartRow {
        upload_id: r.try_get("upload_id")?,
        part_number: r.try_get("part_number")?,
        size: r.try_get("size")?,
        etag: r.try_get("etag")?,
        last_modified: r.try_get("last_modified")?,
        meta: serde_json::from_str(&meta)?,
    })
}

const BUCKET_COLUMNS: &str = "name, account_id, created_at, config, version";
const UPLOAD_COLUMNS: &str = "upload_id, bucket, object_key, initiated, meta";
const PART_COLUMNS: &str = "upload_id, part_number, size, etag, last_modified, meta";

impl Store {
    /// Creates the bucket; `AlreadyExists` if any account holds the name.
    pub async fn create_bucket(
        &self,
        name: &str,
        account_id: &str,
        config: &serde_json::Value,
    ) -> Result<BucketRow, StoreError> {
        let now = now_millis();
        let done = sqlx::query(
            "INSERT INTO oss_buckets (name, account_id, created_at, config, version) VALUES ($1, $2, $3, $4, 1) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(account_id)
        .bind(now)
        .bind(config.to_string())
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::AlreadyExists);
        }
        Ok(BucketRow {
            name: name.into(),
            account_id: account_id.into(),
            created_at: now,
            config: config.clone(),
            version: 1,
        })
    }

    pub async fn get_bucket(&self, name: &str) -> Result<Option<BucketRow>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {BUCKET_COLUMNS} FROM oss_buckets WHERE name = $1")))
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .map(|r| bucket_from(&r))
            .transpose()
    }

    /// The account's buckets in name order, starting after `marker`, at most `max`.
    pub async fn list_buckets(
        &self,
        account_id: &str,
        prefix: &str,
        marker: &str,
        max: i64,
    ) -> Result<Vec<BucketRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BUCKET_COLUMNS} FROM oss_buckets WHERE account_id = $1 AND name > $2 AND substr(name, 1, $3) = $4 ORDER BY name LIMIT $5"
        )))
        .bind(account_id)
        .bind(marker)
        .bind(prefix.chars().count() as i64)
        .bind(prefix)
        .bind(max)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(bucket_from).collect()
    }

    /// Every bucket of every account in name order after `marker` (background tasks).
    pub async fn list_buckets_all(&self, marker: &str, max: i64) -> Result<Vec<BucketRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BUCKET_COLUMNS} FROM oss_buckets WHERE name > $1 ORDER BY name LIMIT $2"
        )))
        .bind(marker)
        .bind(max)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(bucket_from).collect()
    }

    /// Replaces the configuration if the row is still at `b.version`; `Conflict` otherwise.
    pub async fn update_bucket(&self, b: &BucketRow) -> Result<BucketRow, StoreError> {
        let done =
            sqlx::query("UPDATE oss_buckets SET config = $1, version = version + 1 WHERE name = $2 AND version = $3")
                .bind(b.config.to_string())
                .bind(&b.name)
                .bind(b.version)
                .execute(self.pool())
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(BucketRow { version: b.version + 1, ..b.clone() })
    }

    /// Deletes an empty bucket (no objects, no old versions or delete markers, no uploads in
    /// progress). `Conflict` when not empty,
    /// `NotFound` when absent.
    pub async fn delete_bucket(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let busy = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM oss_objects WHERE bucket = $1 LIMIT 1) o) + \
             (SELECT COUNT(*) FROM (SELECT 1 FROM oss_uploads WHERE bucket = $1 LIMIT 1) u) + \
             (SELECT COUNT(*) FROM (SELECT 1 FROM oss_versions WHERE bucket = $1 LIMIT 1) v) AS n",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await?
        .try_get::<i64, _>("n")?;
        if busy > 0 {
            return Err(StoreError::Conflict);
        }
        let done = sqlx::query("DELETE FROM oss_buckets WHERE name = $1").bind(name).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_upload(&self, u: &UploadRow) -> Result<(), StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO oss_uploads ({UPLOAD_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
        )))
        .bind(&u.upload_id)
        .bind(&u.bucket)
        .bind(&u.key)
        .bind(u.initiated)
        .bind(u.meta.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn get_upload(&self, upload_id: &str) -> Result<Option<UploadRow>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {UPLOAD_COLUMNS} FROM oss_uploads WHERE upload_id = $1")))
            .bind(upload_id)
            .fetch_optional(self.pool())
            .await?
            .map(|r| upload_from(&r))
            .transpose()
    }

    /// Uploads of `bucket` under `prefix`, ordered by (key, upload id), after the markers.
    pub async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: &str,
        upload_marker: &str,
        max: i64,
    ) -> Result<Vec<UploadRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {UPLOAD_COLUMNS} FROM oss_uploads WHERE bucket = $1 AND substr(object_key, 1, $2) = $3 \
             AND (object_key > $4 OR (object_key = $4 AND upload_id > $5)) ORDER BY object_key, upload_id LIMIT $6"
        )))
        .bind(bucket)
        .bind(prefix.chars().count() as i64)
        .bind(prefix)
        .bind(key_marker)
        .bind(upload_marker)
        .bind(max)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(upload_from).collect()
    }

    /// Records a part, replacing one with the same number; returns the replaced part. `NotFound`
    /// if the upload is gone (aborted or completed meanwhile).
    pub async fn put_part(&self, p: &PartRow) -> Result<Option<PartRow>, StoreError> {
        let mut tx = self.write_tx().await?;
        if sqlx::query("SELECT upload_id FROM oss_uploads WHERE upload_id = $1")
            .bind(&p.upload_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound);
        }
        let old = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PART_COLUMNS} FROM oss_parts WHERE upload_id = $1 AND part_number = $2"
        )))
        .bind(&p.upload_id)
        .bind(p.part_number)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| part_from(&r))
        .transpose()?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO oss_parts ({PART_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (upload_id, part_number) \
             DO UPDATE SET size = excluded.size, etag = excluded.etag, last_modified = excluded.last_modified, meta = excluded.meta"
        )))
        .bind(&p.upload_id)
        .bind(p.part_number)
        .bind(p.size)
        .bind(&p.etag)
        .bind(p.last_modified)
        .bind(p.meta.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(old)
    }

    /// Parts in number order after `marker`, at most `max`.
    pub async fn list_parts(&self, upload_id: &str, marker: i64, max: i64) -> Result<Vec<PartRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PART_COLUMNS} FROM oss_parts WHERE upload_id = $1 AND part_number > $2 ORDER BY part_number LIMIT $3"
        )))
        .bind(upload_id)
        .bind(marker)
        .bind(max)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(part_from).collect()
    }

    /// Removes the upload and its parts; returns the parts (whose data the caller frees).
    pub async fn delete_upload(&self, upload_id: &str) -> Result<Vec<PartRow>, StoreError> {
        let mut tx = self.write_tx().await?;
        let parts =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PART_COLUMNS} FROM oss_parts WHERE upload_id = $1")))
                .bind(upload_id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(part_from)
                .collect::<Result<Vec<_>, _>>()?;
        let done =
            sqlx::query("DELETE FROM oss_uploads WHERE upload_id = $1").bind(upload_id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM oss_parts WHERE upload_id = $1").bind(upload_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(parts)
    }

    /// Completes an upload atomically: the object row becomes the key's current version and the
    /// upload disappears with its part rows. Returns the rows whose data is no longer referenced.
    /// `NotFound` if the upload was completed or aborted meanwhile.
    pub async fn complete_upload(
        &self,
        upload_id: &str,
        row: &ObjectRow,
        mode: crate::versions::Versioning,
    ) -> Result<Vec<ObjectRow>, StoreError> {
        let mut tx = self.write_tx().await?;
        let done =
            sqlx::query("DELETE FROM oss_uploads WHERE upload_id = $1").bind(upload_id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM oss_parts WHERE upload_id = $1").bind(upload_id).execute(&mut *tx).await?;
        let free = crate::versions::put_in(&mut tx, row, mode).await?;
        tx.commit().await?;
        Ok(free)
    }
}
