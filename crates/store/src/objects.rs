//! OSS object metadata: one row per (bucket, key) holding size, ETag, modification time and the
//! rest as JSON (storage location, checksums, content type, user metadata, ACL).
//!
//! Listing is by the primary key's order (bytes; `COLLATE "C"` on PostgreSQL). With a delimiter,
//! each common prefix is reported once and the listing *seeks past it* (to the first key after
//! `prefix + delimiter`'s range) instead of reading every key below it, so listing a directory of
//! a million objects costs about as many queries as it returns entries.

use crate::{Store, StoreError};
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Clone, Debug, PartialEq)]
pub struct ObjectRow {
    pub bucket: String,
    pub key: String,
    pub size: i64,
    pub etag: String,
    pub last_modified: i64,
    pub meta: serde_json::Value,
    /// `null` in buckets that never had versioning (and for versions written while suspended).
    pub version_id: String,
    /// Orders versions of a key: larger is newer.
    pub seq: i64,
}

/// The columns of an object row, in `row_from`'s order.
pub(crate) const OBJECT_COLUMNS: &str = "bucket, object_key, size, etag, last_modified, meta, version_id, seq";

/// One page of a listing.
#[derive(Debug, Default, PartialEq)]
pub struct Listing {
    pub objects: Vec<ObjectRow>,
    pub common_prefixes: Vec<String>,
    /// Where the next page starts (exclusive), when truncated.
    pub next_marker: Option<String>,
}

pub(crate) fn row_from(r: &AnyRow) -> Result<ObjectRow, StoreError> {
    let meta: String = r.try_get("meta")?;
    Ok(ObjectRow {
        bucket: r.try_get("bucket")?,
        key: r.try_get("object_key")?,
        size: r.try_get("size")?,
        etag: r.try_get("etag")?,
        last_modified: r.try_get("last_modified")?,
        meta: serde_json::from_str(&meta)?,
        version_id: r.try_get("version_id")?,
        seq: r.try_get("seq")?,
    })
}

/// The smallest string greater than every string that starts with `prefix`: the prefix with its
/// last character incremented (characters at the top of Unicode are carried off).
pub(crate) fn after_prefix(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(c) = chars.pop() {
        if let Some(next) = char::from_u32(c as u32 + 1).or_else(|| char::from_u32(c as u32 + 0x801)) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Creates or replaces one row, inside the caller's transaction.
pub(crate) async fn upsert(tx: &mut sqlx::Transaction<'_, sqlx::Any>, o: &ObjectRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO oss_objects (bucket, object_key, size, etag, last_modified, meta, version_id, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (bucket, object_key) DO UPDATE SET size = excluded.size, etag = excluded.etag, \
         last_modified = excluded.last_modified, meta = excluded.meta, version_id = excluded.version_id, seq = excluded.seq",
    )
    .bind(&o.bucket)
    .bind(&o.key)
    .bind(o.size)
    .bind(&o.etag)
    .bind(o.last_modified)
    .bind(o.meta.to_string())
    .bind(&o.version_id)
    .bind(o.seq)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Creates or replaces the row inside the caller's transaction; returns the row it replaced.
pub(crate) async fn replace_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    o: &ObjectRow,
) -> Result<Option<ObjectRow>, StoreError> {
    let old = sqlx::query("SELECT bucket, object_key, size, etag, last_modified, meta, version_id, seq FROM oss_objects WHERE bucket = $1 AND object_key = $2")
        .bind(&o.bucket)
        .bind(&o.key)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| row_from(&r))
        .transpose()?;
    upsert(tx, o).await?;
    Ok(old)
}

impl Store {
    /// Creates or replaces the row of (bucket, key); returns the row it replaced.
    pub async fn put_object_row(&self, o: &ObjectRow) -> Result<Option<ObjectRow>, StoreError> {
        let mut tx = self.write_tx().await?;
        let old = replace_in(&mut tx, o).await?;
        tx.commit().await?;
        Ok(old)
    }

    /// Creates or replaces the row only if the current row's ETag is `expected` (`None`: only if
    /// there is no row); `Conflict` otherwise. Returns the row it replaced.
    pub async fn put_object_row_if(
        &self,
        o: &ObjectRow,
        expected: Option<&str>,
    ) -> Result<Option<ObjectRow>, StoreError> {
        let mut tx = self.write_tx().await?;
        let old = replace_in(&mut tx, o).await?;
        if old.as_ref().map(|r| r.etag.as_str()) != expected {
            return Err(StoreError::Conflict);
        }
        tx.commit().await?;
        Ok(old)
    }

    /// Many rows in one transaction (bulk loads, tests, benchmarks).
    pub async fn put_object_rows(&self, rows: &[ObjectRow]) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        for o in rows {
            upsert(&mut tx, o).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_object_row(&self, bucket: &str, key: &str) -> Result<Option<ObjectRow>, StoreError> {
        sqlx::query("SELECT bucket, object_key, size, etag, last_modified, meta, version_id, seq FROM oss_objects WHERE bucket = $1 AND object_key = $2")
            .bind(bucket)
            .bind(key)
            .fetch_optional(self.pool())
            .await?
            .map(|r| row_from(&r))
            .transpose()
    }

    /// Deletes the row; returns it if there was one.
    pub async fn delete_object_row(&self, bucket: &str, key: &str) -> Result<Option<ObjectRow>, StoreError> {
        let old = self.get_object_row(bucket, key).await?;
        sqlx::query("DELETE FROM oss_objects WHERE bucket = $1 AND object_key = $2")
            .bind(bucket)
            .bind(key)
            .execute(self.pool())
            .await?;
        Ok(old)
    }

    pub async fn count_objects(&self, bucket: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM oss_objects WHERE bucket = $1")
            .bind(bucket)
            .fetch_one(self.pool())
            .await?
            .try_get("n")?)
    }

    /// Keys of `bucket` starting with `prefix`, after `marker`, at most `max` entries (objects plus
    /// common prefixes), rolled up at the first `delimiter` after the prefix. `next_marker` is the
    /// last entry returned when there is more; resuming from a common prefix skips all of it.
    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        marker: &str,
        delimiter: &str,
        max: usize,
    ) -> Result<Listing, StoreError> {
        let mut out = Listing::default();
        let rolled_up = |key: &str| -> Option<String> {
            let rest = key.strip_prefix(prefix)?;
            (!delimiter.is_empty())
                .then(|| rest.find(delimiter))
                .flatten()
                .map(|i| format!("{prefix}{}", &rest[..i + delimiter.len()]))
        };
        // Where to start: after the marker (past its whole common prefix, if it names one), or at the prefix.
        let (mut from, mut inclusive) = match rolled_up(marker).filter(|cp| cp.as_str() == marker) {
            Some(cp) => match after_prefix(&cp) {
                Some(next) => (next, true),
                None => return Ok(out),
            },
            None if marker >= prefix => (marker.to_string(), false),
            None => (prefix.to_string(), true),
        };
        let page = (max + 1).clamp(2, 1001) as i64;
        // After a seek past a common prefix, ask for a few rows (the next one may be another
        // prefix); grow the batch while plain objects keep coming.
        let mut limit = page;
        let mut last_entry = String::new();
        'scan: loop {
            let sql = if inclusive {
                "SELECT bucket, object_key, size, etag, last_modified, meta, version_id, seq FROM oss_objects WHERE bucket = $1 AND object_key >= $2 ORDER BY object_key LIMIT $3"
            } else {
                "SELECT bucket, object_key, size, etag, last_modified, meta, version_id, seq FROM oss_objects WHERE bucket = $1 AND object_key > $2 ORDER BY object_key LIMIT $3"
            };
            let rows = sqlx::query(sql).bind(bucket).bind(&from).bind(limit).fetch_all(self.pool()).await?;
            let n = rows.len();
            for r in &rows {
                let o = row_from(r)?;
                if !o.key.starts_with(prefix) {
                    break 'scan;
                }
                if out.objects.len() + out.common_prefixes.len() == max {
                    out.next_marker = Some(last_entry);
                    break 'scan;
                }
                match rolled_up(&o.key) {
                    Some(cp) => {
                        last_entry = cp.clone();
                        out.common_prefixes.push(cp.clone());
                        // Seek past everything under this common prefix.
                        match after_prefix(&cp) {
                            Some(next) => {
                                from = next;
                                inclusive = true;
                                limit = 4;
                                continue 'scan;
                            }
                            None => break 'scan,
                        }
                    }
                    None => {
                        last_entry = o.key.clone();
                        from = o.key.clone();
                        inclusive = false;
                        out.objects.push(o);
                    }
                }
            }
            if (n as i64) < limit {
                break;
            }
            limit = (limit * 4).min(page);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::after_prefix;

    #[test]
    fn after_prefix_bounds_every_extension() {
        assert_eq!(after_prefix("a/").as_deref(), Some("a0"));
        assert_eq!(after_prefix("").as_deref(), None);
        let p = "dir/é/";
        let next = after_prefix(p).expect("bound");
        for k in ["dir/é/", "dir/é/x", "dir/é/\u{10FFFF}"] {
            assert!(k < next.as_str());
        }
    }
}
