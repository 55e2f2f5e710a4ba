//! Nimbus state store. The only crate that knows SQL.
//!
//! One [`Store`] type serves two backends through sqlx's `Any` driver: SQLite (the embedded default,
//! WAL, `synchronous=FULL`) and PostgreSQL (for a multi-node control plane). Every statement is
//! written once in the SQL both accept (`$N` placeholders, `ON CONFLICT DO NOTHING`, TEXT and
//! BIGINT columns only), so the same test suite proves both.
//!
//! What it keeps:
//! - accounts and their AccessKeys (secrets arrive already wrapped by the root key);
//! - resources: one row per cloud resource, scoped by account, with an optimistic `version`,
//!   read and written typed through [`repo::Repo`] (a kind's schema as Rust structs);
//! - idempotency records for `ClientToken`, per calling principal;
//! - a durable job queue with leases, heartbeats, retries and progress ([`jobs`]).

mod accounts;
pub mod buckets;
mod error;
pub mod export;
pub mod jobs;
mod migrations;
pub mod objects;
pub mod repo;
mod resources;
pub mod testing;
pub mod trail;
pub mod versions;

pub use accounts::{AccessKeyRecord, Account};
pub use error::StoreError;
pub use jobs::{Job, JobState, NewJob};
pub use migrations::latest as schema_version;
pub use repo::{Kind, Listed, NoStatus, Page, Record, Repo, Tags};
pub use resources::{Claim, Resource};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish()
    }
}

impl Store {
    /// Opens (and migrates) the store at `url`: `sqlite:///abs/path/state.db` or
    /// `postgres://user@host:port/db`. A SQLite file is created if missing.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Config(format!(
                "unsupported store URL {url:?}: use sqlite:///path or postgres://…"
            )));
        };
        if backend == Backend::Sqlite {
            restrict_sqlite_file(url)?;
        }
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let opts = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL so readers never block the writer; FULL so an acknowledged write
                        // survives power loss, not just a process crash.
                        conn.execute("PRAGMA journal_mode=WAL").await?;
                        conn.execute("PRAGMA synchronous=FULL").await?;
                        conn.execute("PRAGMA busy_timeout=10000").await?;
                    }
                    Ok(())
                })
            });
        let pool = opts.connect(&url).await?;
        let store = Store { pool, backend };
        migrations::run(&store).await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction that reads and then writes. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that upgrades from reading to writing fails
    /// with SQLITE_BUSY_SNAPSHOT when another writer committed meanwhile, and no busy timeout
    /// helps it; taking the lock first makes writers queue instead.
    pub(crate) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Closes every pooled connection (checkpointing SQLite's WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// The state file holds wrapped secrets and every tenant's rows: owner-only (0600), created so
/// before SQLite first opens it (its `-wal`/`-shm` files take the same mode) and tightened if an
/// older start left it wider. `:memory:` and URLs without a file path are left alone.
fn restrict_sqlite_file(url: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(':') {
        return Ok(());
    }
    let io = |e: std::io::Error| StoreError::Config(format!("restricting the state file {path}: {e}"));
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(io)?;
    for suffix in ["", "-wal", "-shm"] {
        let f = format!("{path}{suffix}");
        if std::path::Path::new(&f).exists() {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod file_mode_tests {
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn the_sqlite_state_file_is_owner_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("state.db");
        // An older start's file, world-readable: tightened on open.
        std::fs::write(&path, b"").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let _store = super::Store::open(&format!("sqlite://{}", path.display())).await.expect("open");
        assert_eq!(std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777, 0o600);
        let fresh = dir.path().join("fresh.db");
        let _store = super::Store::open(&format!("sqlite://{}", fresh.display())).await.expect("open");
        for f in [fresh.clone(), dir.path().join("fresh.db-wal")] {
            if f.exists() {
                assert_eq!(std::fs::metadata(&f).expect("stat").permissions().mode() & 0o777, 0o600, "{}", f.display());
            }
        }
    }
}
