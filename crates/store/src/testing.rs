//! Test support shared by every crate's tests: a fresh PostgreSQL database per test.

/// The URL of a new, empty database on the PostgreSQL server at `NIMBUS_TEST_PG_URL` (which
/// `scripts/test-all` starts). Without that variable: `None` after printing that the PostgreSQL case
/// is skipped, or a panic when running under CI, where skipping would hide a missing backend.
pub async fn fresh_postgres_database() -> Option<String> {
    let Ok(admin) = std::env::var("NIMBUS_TEST_PG_URL") else {
        assert!(std::env::var_os("CI").is_none(), "CI must provide PostgreSQL: NIMBUS_TEST_PG_URL is not set");
        eprintln!("SKIPPED: PostgreSQL backend (set NIMBUS_TEST_PG_URL; scripts/test-all does)");
        return None;
    };
    sqlx::any::install_default_drivers();
    let name = format!("nimbus_test_{}", nimbus_core::ids::resource_id("").replace('-', ""));
    let pool = sqlx::AnyPool::connect(&admin).await.expect("connect to PostgreSQL at NIMBUS_TEST_PG_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await.expect("create database");
    pool.close().await;
    let base = admin.rsplit_once('/').map(|(b, _)| b).expect("NIMBUS_TEST_PG_URL names a database");
    Some(format!("{base}/{name}"))
}
