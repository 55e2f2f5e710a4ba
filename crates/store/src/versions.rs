//! OSS object versions. The current version of a key is its `oss_objects` row (so plain listing
//! and reads are untouched by versioning); noncurrent versions and delete markers are
//! `oss_versions` rows. `seq` orders a key's versions (larger is newer) and the current row always
//! holds the largest. Every change is one transaction; the caller frees the data of the rows it
//! gets back, after the commit.

use crate::objects::{OBJECT_COLUMNS, ObjectRow, after_prefix, row_from, upsert};
use crate::{Store, StoreError};
use sqlx::Row;

/// A bucket's versioning state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Versioning {
    /// Never enabled: one version per key, overwritten in place.
    Off,
    Enabled,
    /// Was enabled: old versions are kept, new writes take the version id `null`.
    Suspended,
}

pub const NULL_VERSION: &str = "null";

/// One entry of a versions listing.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionEntry {
    pub row: ObjectRow,
    pub delete_marker: bool,
    pub is_latest: bool,
}

#[derive(Debug, Default, PartialEq)]
pub struct VersionListing {
    pub entries: Vec<VersionEntry>,
    pub common_prefixes: Vec<String>,
    /// Where the next page starts, when truncated: key marker and version-id marker.
    pub next: Option<(String, Option<String>)>,
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

async fn current(tx: &mut Tx, bucket: &str, key: &str) -> Result<Option<ObjectRow>, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {OBJECT_COLUMNS} FROM oss_objects WHERE bucket = $1 AND object_key = $2"
    )))
    .bind(bucket)
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?
    .map(|r| row_from(&r))
    .transpose()
}

async fn remove_current(tx: &mut Tx, bucket: &str, key: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM oss_objects WHERE bucket = $1 AND object_key = $2")
        .bind(bucket)
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn insert_version(tx: &mut Tx, o: &ObjectRow, delete_marker: bool) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO oss_versions (bucket, object_key, version_id, seq, delete_marker, size, etag, last_modified, meta) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&o.bucket)
    .bind(&o.key)
    .bind(&o.version_id)
    .bind(o.seq)
    .bind(i64::from(delete_marker))
    .bind(o.size)
    .bind(&o.etag)
    .bind(o.last_modified)
    .bind(o.meta.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn version_from(r: &sqlx::any::AnyRow) -> Result<(ObjectRow, bool), StoreError> {
    let dm: i64 = r.try_get("delete_marker")?;
    Ok((row_from(r)?, dm != 0))
}

/// Removes and returns one noncurrent version (or marker).
async fn take_version(
    tx: &mut Tx,
    bucket: &str,
    key: &str,
    vid: &str,
) -> Result<Option<(ObjectRow, bool)>, StoreError> {
    let found = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {OBJECT_COLUMNS}, delete_marker FROM oss_versions WHERE bucket = $1 AND object_key = $2 AND version_id = $3"
    )))
    .bind(bucket)
    .bind(key)
    .bind(vid)
    .fetch_optional(&mut **tx)
    .await?
    .map(|r| version_from(&r))
    .transpose()?;
    if found.is_some() {
        sqlx::query("DELETE FROM oss_versions WHERE bucket = $1 AND object_key = $2 AND version_id = $3")
            .bind(bucket)
            .bind(key)
            .bind(vid)
            .execute(&mut **tx)
            .await?;
    }
    Ok(found)
}

async fn newest_version(tx: &mut Tx, bucket: &str, key: &str) -> Result<Option<(ObjectRow, bool)>, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {OBJECT_COLUMNS}, delete_marker FROM oss_versions WHERE bucket = $1 AND object_key = $2 ORDER BY seq DESC LIMIT 1"
    )))
    .bind(bucket)
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?
    .map(|r| version_from(&r))
    .transpose()
}

/// Moves the old current row aside as `mode` says; returns it when its data is to be freed.
async fn retire_current(tx: &mut Tx, old: Option<ObjectRow>, mode: Versioning) -> Result<Vec<ObjectRow>, StoreError> {
    let mut free = vec![];
    if let Some(old) = old {
        match mode {
            Versioning::Off => free.push(old),
            Versioning::Suspended if old.version_id == NULL_VERSION => free.push(old),
            _ => insert_version(tx, &old, false).await?,
        }
    }
    Ok(free)
}

/// Makes `o` the current version of its key inside `tx`; returns the rows whose data is no
/// longer referenced (the replaced version when not versioning; the `null` version when suspended).
pub(crate) async fn put_in(tx: &mut Tx, o: &ObjectRow, mode: Versioning) -> Result<Vec<ObjectRow>, StoreError> {
    let old = current(tx, &o.bucket, &o.key).await?;
    let mut free = retire_current(tx, old, mode).await?;
    if mode == Versioning::Suspended
        && let Some((row, marker)) = take_version(tx, &o.bucket, &o.key, NULL_VERSION).await?
        && !marker
    {
        free.push(row);
    }
    upsert(tx, o).await?;
    Ok(free)
}

impl Store {
    /// Makes `o` the current version of its key (see [`put_in`]).
    pub async fn put_object_versioned(&self, o: &ObjectRow, mode: Versioning) -> Result<Vec<ObjectRow>, StoreError> {
        let mut tx = self.write_tx().await?;
        let free = put_in(&mut tx, o, mode).await?;
        tx.commit().await?;
        Ok(free)
    }

    /// Deletes the current version of a key. When versioning is on (or suspended), `marker` (its
    /// key, version id, seq, time) is recorded as a delete marker and the old version kept.
    /// Returns the rows to free and whether a marker was written.
    pub async fn delete_object_versioned(
        &self,
        marker: &ObjectRow,
        mode: Versioning,
    ) -> Result<(Vec<ObjectRow>, bool), StoreError> {
        let mut tx = self.write_tx().await?;
        let old = current(&mut tx, &marker.bucket, &marker.key).await?;
        if old.is_some() {
            remove_current(&mut tx, &marker.bucket, &marker.key).await?;
        }
        let mut free = retire_current(&mut tx, old, mode).await?;
        let wrote_marker = mode != Versioning::Off;
        if wrote_marker {
            if mode == Versioning::Suspended
                && let Some((row, was_marker)) =
                    take_version(&mut tx, &marker.bucket, &marker.key, NULL_VERSION).await?
                && !was_marker
            {
                free.push(row);
            }
            insert_version(&mut tx, marker, true).await?;
        }
        tx.commit().await?;
        Ok((free, wrote_marker))
    }

    /// Permanently deletes one version (or delete marker). If the key is left without a current
    /// version and its newest remaining version is not a delete marker, that version becomes
    /// current. Returns the removed row and whether it was a marker; `None` if there was no such
    /// version.
    pub async fn delete_object_version(
        &self,
        bucket: &str,
        key: &str,
        vid: &str,
    ) -> Result<Option<(ObjectRow, bool)>, StoreError> {
        let mut tx = self.write_tx().await?;
        let removed = match current(&mut tx, bucket, key).await? {
            Some(c) if c.version_id == vid => {
                remove_current(&mut tx, bucket, key).await?;
                Some((c, false))
            }
            _ => take_version(&mut tx, bucket, key, vid).await?,
        };
        if removed.is_some()
            && current(&mut tx, bucket, key).await?.is_none()
            && let Some((newest, false)) = newest_version(&mut tx, bucket, key).await?
        {
            take_version(&mut tx, bucket, key, &newest.version_id).await?;
            upsert(&mut tx, &newest).await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// One version of a key (current or not), and whether it is a delete marker.
    pub async fn get_object_version(
        &self,
        bucket: &str,
        key: &str,
        vid: &str,
    ) -> Result<Option<(ObjectRow, bool)>, StoreError> {
        if let Some(c) = self.get_object_row(bucket, key).await?
            && c.version_id == vid
        {
            return Ok(Some((c, false)));
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OBJECT_COLUMNS}, delete_marker FROM oss_versions WHERE bucket = $1 AND object_key = $2 AND version_id = $3"
        )))
        .bind(bucket)
        .bind(key)
        .bind(vid)
        .fetch_optional(self.pool())
        .await?
        .map(|r| version_from(&r))
        .transpose()
    }

    /// The newest noncurrent entry of a key when it has no current version: a delete marker
    /// (`true`) means the key reads as deleted.
    pub async fn latest_delete_marker(&self, bucket: &str, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT version_id, delete_marker FROM oss_versions WHERE bucket = $1 AND object_key = $2 ORDER BY seq DESC LIMIT 1",
        )
        .bind(bucket)
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(r) if r.try_get::<i64, _>("delete_marker")? != 0 => Some(r.try_get("version_id")?),
            _ => None,
        })
    }

    pub async fn count_versions(&self, bucket: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM oss_versions WHERE bucket = $1")
            .bind(bucket)
            .fetch_one(self.pool())
            .await?
            .try_get("n")?)
    }

    /// Every version of every key under `prefix`, keys in order and each key's versions newest
    /// first, after (`key_marker`, `version_marker`), at most `max` entries plus common prefixes.
    pub async fn list_object_versions(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: &str,
        version_marker: &str,
        delimiter: &str,
        max: usize,
    ) -> Result<VersionListing, StoreError> {
        let mut out = VersionListing::default();
        let rolled_up = |key: &str| -> Option<String> {
            let rest = key.strip_prefix(prefix)?;
            (!delimiter.is_empty())
                .then(|| rest.find(delimiter))
                .flatten()
                .map(|i| format!("{prefix}{}", &rest[..i + delimiter.len()]))
        };
        // Cursor (key, seq): rows after it are `key > k`, or `key = k` with a smaller seq.
        let (mut ck, mut cs, mut skipping) = if key_marker.is_empty() || key_marker < prefix {
            (prefix.to_string(), i64::MAX, false)
        } else if version_marker.is_empty() {
            (key_marker.to_string(), i64::MIN, false)
        } else {
            (key_marker.to_string(), i64::MAX, true)
        };
        let mut prev_key: Option<String> = None;
        let mut last: Option<(String, Option<String>)> = None;
        let sql = format!(
            "SELECT {OBJECT_COLUMNS}, 0 AS delete_marker FROM oss_objects WHERE bucket = $1 AND (object_key > $2 OR (object_key = $2 AND seq < $3)) \
             UNION ALL SELECT {OBJECT_COLUMNS}, delete_marker FROM oss_versions WHERE bucket = $1 AND (object_key > $2 OR (object_key = $2 AND seq < $3)) \
             ORDER BY object_key, seq DESC LIMIT $4"
        );
        'scan: loop {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(bucket)
                .bind(&ck)
                .bind(cs)
                .bind(1000i64)
                .fetch_all(self.pool())
                .await?;
            let n = rows.len();
            for r in &rows {
                let (row, marker) = version_from(r)?;
                (ck, cs) = (row.key.clone(), row.seq);
                if !row.key.starts_with(prefix) {
                    if row.key.as_str() > prefix {
                        break 'scan;
                    }
                    continue;
                }
                let is_latest = prev_key.as_deref() != Some(row.key.as_str());
                prev_key = Some(row.key.clone());
                // Resuming after (key_marker, version_marker): skip up to and including the marker
                // (or to the next key, should the marker version be gone).
                if skipping {
                    if row.key.as_str() > key_marker {
                        skipping = false;
                    } else {
                        skipping = row.version_id != version_marker;
                        continue;
                    }
                }
                if out.entries.len() + out.common_prefixes.len() == max {
                    out.next = last.clone();
                    break 'scan;
                }
                if let Some(cp) = rolled_up(&row.key) {
                    if out.common_prefixes.last() != Some(&cp) {
                        out.common_prefixes.push(cp.clone());
                        last = Some((cp.clone(), None));
                    }
                    match after_prefix(&cp) {
                        Some(next) => {
                            (ck, cs) = (next, i64::MAX);
                            continue 'scan;
                        }
                        None => break 'scan,
                    }
                }
                last = Some((row.key.clone(), Some(row.version_id.clone())));
                out.entries.push(VersionEntry { row, delete_marker: marker, is_latest });
            }
            if n < 1000 {
                break;
            }
        }
        Ok(out)
    }
}
