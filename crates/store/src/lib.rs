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
