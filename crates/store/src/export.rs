//! Paged, resumable export of every table as JSON objects: the basis of store backups.
//!
//! Paging is by each table's key in key order, so an export interrupted anywhere resumes from the
//! last key it wrote. Secrets stay as stored (wrapped by the root key): a backup is useless without
//! the root key, by design.

use crate::{Store, StoreError};
use serde_json::{Map, Value};
use sqlx::{AssertSqlSafe, Row};

#[derive(Clone, Copy)]
enum Col {
    Text,
    Int,
}

struct Table {
    name: &'static str,
    /// SQL expression of the paging key (unique, text).
    key: &'static str,
    columns: &'static [(&'static str, Col)],
}

use Col::{Int, Text};

const TABLES: &[Table] = &[
    Table {
        name: "accounts",
        key: "id",
        columns: &[("id", Text), ("name", Text), ("status", Text), ("created_at", Int)],
    },
    Table {
        name: "access_keys",
        key: "id",
        columns: &[
            ("id", Text),
            ("account_id", Text),
            ("principal_type", Text),
            ("principal_id", Text),
            ("secret_wrapped", Text),
            ("status", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "resources",
        key: "id",
        columns: &[
            ("id", Text),
            ("account_id", Text),
            ("kind", Text),
            ("region", Text),
            ("spec", Text),
            ("status", Text),
            ("tags", Text),
            ("version", Int),
            ("created_at", Int),
            ("updated_at", Int),
        ],
    },
    Table {
        name: "idempotency",
        key: "account_id || '/' || principal || '/' || action || '/' || token",
        columns: &[
            ("account_id", Text),
            ("principal", Text),
            ("action", Text),
            ("token", Text),
            ("request_hash", Text),
            ("response", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "jobs",
        key: "id",
        columns: &[
            ("id", Text),
            ("kind", Text),
            ("account_id", Text),
            ("payload", Text),
            ("state", Text),
            ("attempts", Int),
            ("max_attempts", Int),
            ("run_after", Int),
            ("lease_owner", Text),
            ("lease_until", Int),
            ("progress", Int),
            ("checkpoint", Text),
            ("result", Text),
            ("last_error", Text),
            ("created_at", Int),
            ("updated_at", Int),
        ],
    },
    Table {
        name: "trail_events",
        key: "CAST(seq AS TEXT)",
        columns: &[
            ("seq", Int),
            ("event_id", Text),
            ("event_time", Int),
            ("account_id", Text),
            ("event_name", Text),
            ("service_name", Text),
            ("event_rw", Text),
            ("access_key_id", Text),
            ("user_name", Text),
            ("resource_name", Text),
            ("error_code", Text),
            ("body", Text),
            ("prev_hash", Text),
            ("hash", Text),
        ],
    },
    Table {
        name: "trail_digests",
        key: "CAST(seq AS TEXT)",
        columns: &[("seq", Int), ("body", Text), ("signature", Text)],
    },
];

/// The tables an export covers, in export order.
pub fn tables() -> Vec<&'static str> {
    TABLES.iter().map(|t| t.name).collect()
}

fn table(name: &str) -> Result<&'static Table, StoreError> {
    TABLES.iter().find(|t| t.name == name).ok_or_else(|| StoreError::Config(format!("no table {name:?}")))
}

/// One page of an export: rows, and the key to resume after.
pub struct Page {
    pub rows: Vec<Map<String, Value>>,
    pub last_key: Option<String>,
}

impl Store {
    pub async fn count_rows(&self, table_name: &str) -> Result<i64, StoreError> {
        let t = table(table_name)?;
        let row =
            sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {}", t.name))).fetch_one(self.pool()).await?;
        Ok(row.try_get("n")?)
    }

    /// Up to `limit` rows of `table_name` whose key sorts after `after` (all rows when `None`).
    pub async fn export_page(&self, table_name: &str, after: Option<&str>, limit: i64) -> Result<Page, StoreError> {
        let t = table(table_name)?;
        let cols: Vec<&str> = t.columns.iter().map(|(c, _)| *c).collect();
        let sql = format!(
            "SELECT {}, {} AS page_key FROM {} WHERE {} > $1 ORDER BY {} LIMIT $2",
            cols.join(", "),
            t.key,
            t.name,
            t.key,
            t.key
        );
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(after.unwrap_or("")).bind(limit).fetch_all(self.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        let mut last_key = None;
        for row in &rows {
            let mut obj = Map::new();
            for (c, ty) in t.columns {
                let v = match ty {
                    Text => row.try_get::<Option<String>, _>(*c)?.map(Value::from),
                    Int => row.try_get::<Option<i64>, _>(*c)?.map(Value::from),
                };
                obj.insert((*c).to_string(), v.unwrap_or(Value::Null));
            }
            last_key = Some(row.try_get::<String, _>("page_key")?);
            out.push(obj);
        }
        Ok(Page { rows: out, last_key })
    }
}
