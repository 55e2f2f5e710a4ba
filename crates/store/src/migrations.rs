//! Schema migrations: an ordered list, applied once each, recorded in `schema_migrations`.
//! Append new ones at the end; never edit one that has shipped.

use crate::{Store, StoreError};
use nimbus_core::clock::now_millis;
use sqlx::Row;

/// `(version, SQL for both backends, SQL for PostgreSQL only)`.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        r#"
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE access_keys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    secret_wrapped TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX access_keys_by_account ON access_keys (account_id);
CREATE TABLE resources (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    region TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    tags TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX resources_by_account_kind ON resources (account_id, kind, id);
CREATE TABLE idempotency (
    account_id TEXT NOT NULL,
    action TEXT NOT NULL,
    token TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, action, token)
);
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    account_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    run_after BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    progress BIGINT NOT NULL,
    checkpoint TEXT,
    result TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_ready ON jobs (state, run_after);
"#,
        "",
    ),
    // Byte order for keys on PostgreSQL too (SQLite compares bytes already), so lists and pages come
    // out in the same order whatever collation the database was created with.
    (
        2,
        "",
        r#"
ALTER TABLE accounts ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE access_keys ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE resources ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE jobs ALTER COLUMN id TYPE TEXT COLLATE "C";
"#,
    ),
    // ActionTrail: an append-only hash chain of events, and signed digests over it.
    (
        3,
        r#"
CREATE TABLE trail_events (
    seq BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL,
    event_time BIGINT NOT NULL,
    account_id TEXT NOT NULL,
    event_name TEXT NOT NULL,
    service_name TEXT NOT NULL,
    event_rw TEXT NOT NULL,
    access_key_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    resource_name TEXT NOT NULL,
    error_code TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX trail_by_account_time ON trail_events (account_id, event_time, seq);
CREATE TABLE trail_digests (
    seq BIGINT PRIMARY KEY,
    body TEXT NOT NULL,
    signature TEXT NOT NULL
);
"#,
        "",
    ),
    // OSS object metadata: one row per (bucket, key), listed in key order by the primary key.
    (
        4,
        r#"
CREATE TABLE oss_objects (
    bucket TEXT NOT NULL,
    object_key TEXT NOT NULL,
    size BIGINT NOT NULL,
    etag TEXT NOT NULL,
    last_modified BIGINT NOT NULL,
    meta TEXT NOT NULL,
    PRIMARY KEY (bucket, object_key)
);
"#,
        r#"ALTER TABLE oss_objects ALTER COLUMN object_key TYPE TEXT COLLATE "C""#,
    ),
    // OSS buckets (names are unique in the region) and multipart uploads with their parts.
    (
        5,
        r#"
CREATE TABLE oss_buckets (
    name TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    config TEXT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX oss_buckets_by_account ON oss_buckets (account_id, name);
CREATE TABLE oss_uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    object_key TEXT NOT NULL,
    initiated BIGINT NOT NULL,
    meta TEXT NOT NULL
);
CREATE INDEX oss_uploads_by_key ON oss_uploads (bucket, object_key, upload_id);
CREATE TABLE oss_parts (
    upload_id TEXT NOT NULL,
    part_number BIGINT NOT NULL,
    size BIGINT NOT NULL,
    etag TEXT NOT NULL,
    last_modified BIGINT NOT NULL,
    meta TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
"#,
        r#"
ALTER TABLE oss_buckets ALTER COLUMN name TYPE TEXT COLLATE "C";
ALTER TABLE oss_uploads ALTER COLUMN object_key TYPE TEXT COLLATE "C";
ALTER TABLE oss_uploads ALTER COLUMN upload_id TYPE TEXT COLLATE "C"
"#,
    ),
    // OSS versioning: the current version stays in oss_objects (so listing is unchanged); older
    // versions and delete markers live in oss_versions, ordered by seq.
    (
        6,
        r#"
ALTER TABLE oss_objects ADD COLUMN version_id TEXT NOT NULL DEFAULT 'null';
ALTER TABLE oss_objects ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
CREATE TABLE oss_versions (
    bucket TEXT NOT NULL,
    object_key TEXT NOT NULL,
    version_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    delete_marker BIGINT NOT NULL,
    size BIGINT NOT NULL,
    etag TEXT NOT NULL,
    last_modified BIGINT NOT NULL,
    meta TEXT NOT NULL,
    PRIMARY KEY (bucket, object_key, version_id)
);
CREATE INDEX oss_versions_by_seq ON oss_versions (bucket, object_key, seq)
"#,
        r#"
ALTER TABLE oss_versions ALTER COLUMN object_key TYPE TEXT COLLATE "C";
ALTER TABLE oss_versions ALTER COLUMN version_id TYPE TEXT COLLATE "C"
"#,
    ),
    // ClientToken records belong to the principal that made the call, not to its whole account
    // (issue 13): another principal replaying a token must never get the first caller's answer.
    // The key changes, so the table is rebuilt. Records from before are not carried over, since
    // nothing says whose they were: a retry of a call made before the upgrade runs again.
    (
        7,
        r#"
CREATE TABLE idempotency_by_principal (
    account_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    action TEXT NOT NULL,
    token TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, principal, action, token)
);
DROP TABLE idempotency;
ALTER TABLE idempotency_by_principal RENAME TO idempotency
"#,
        "",
    ),
];

pub(crate) async fn run(store: &Store) -> Result<(), StoreError> {
    let pool = store.pool();
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(pool)
    .await?;
    let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        .fetch_one(pool)
        .await?
        .try_get("v")?;
    for (version, both, pg_only) in MIGRATIONS.iter().filter(|(v, _, _)| *v > current) {
        let mut tx = pool.begin().await?;
        let pg = if store.backend() == crate::Backend::Postgres { *pg_only } else { "" };
        for stmt in both.split(';').chain(pg.split(';')).map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(stmt).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied store migration");
    }
    Ok(())
}

/// The schema version this build expects.
pub fn latest() -> i64 {
    MIGRATIONS.last().map(|(v, _, _)| *v).unwrap_or(0)
}
