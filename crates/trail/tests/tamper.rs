//! Every kind of tampering with the stored trail is found by `verify`, at the right record; an
//! untouched trail verifies. Tampering is done with raw SQL, as an intruder with database access
//! (but not the root key) would.

use nimbus_api::{AuditEvent, Auditor};
use nimbus_core::secret::FileKeyProvider;
use nimbus_store::Store;
use nimbus_trail::{Trail, TrailConfig, TrailKey, event_hash, verify};
use sqlx::AssertSqlSafe;
use std::time::Duration;

const EVENTS: i64 = 12;

fn event(i: i64) -> AuditEvent {
    AuditEvent {
        event_id: format!("ev-{i}"),
        event_time: "2026-11-28T12:00:00Z".into(),
        event_name: if i % 2 == 0 { "DescribeRegions".into() } else { "CreateUser".into() },
        event_source: "ecs.local-1.nimbus.internal".into(),
        service_name: "Ecs".into(),
        api_version: "2014-05-26".into(),
        event_rw: "Read".into(),
        acs_region: "local-1".into(),
        request_id: format!("REQ-{i}"),
        source_ip_address: "127.0.0.1".into(),
        user_agent: None,
        account_id: Some("1000000000000001".into()),
        principal_type: Some("root-account".into()),
        principal_id: Some("1000000000000001".into()),
        principal_name: Some("1000000000000001".into()),
        access_key_id: Some("LTAIkey".into()),
        request_parameters: Default::default(),
        resources: vec!["acs:ecs:local-1:1000000000000001:*".into()],
        http_status: 200,
        error_code: None,
        error_message: None,
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    url: String,
    public: String,
}

/// A trail of `EVENTS` events with a digest after every 4.
async fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = Store::open(&url).await.expect("store");
    let keys = FileKeyProvider::load_or_create(&dir.path().join("root.key")).expect("root key");
    let key = TrailKey::load_or_create(dir.path(), &keys).expect("trail key");
    let public = key.public_hex();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let (trail, task) = Trail::start(
        store.clone(),
        key,
        TrailConfig { digest_interval: Duration::from_secs(3600), delivery_dir: None },
        stop,
    )
    .await
    .expect("trail");
    for i in 1..=EVENTS {
        trail.record(event(i)).await;
        if i % 4 == 0 {
            trail.digest_now().await;
        }
    }
    let _ = stop_tx.send(true);
    task.await.expect("writer");
    store.close().await;
    Setup { _dir: dir, url, public }
}

async fn tamper(s: &Setup, sql: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s.url).await.expect("connect");
    sqlx::query(AssertSqlSafe(sql.to_string())).execute(&pool).await.expect(sql);
    pool.close().await;
}

async fn problem(s: &Setup) -> Option<String> {
    let store = Store::open(&s.url).await.expect("store");
    let r = verify(&store, &s.public).await.expect("verify");
    store.close().await;
    r.problem.map(|p| p.to_string())
}

#[tokio::test]
async fn an_untouched_trail_verifies() {
    let s = setup().await;
    let store = Store::open(&s.url).await.expect("store");
    let r = verify(&store, &s.public).await.expect("verify");
    assert_eq!((r.events, r.digests, r.problem), (EVENTS, 3, None));
}

#[tokio::test]
async fn editing_any_event_is_found_at_that_event() {
    for k in 1..=EVENTS {
        let s = setup().await;
        tamper(&s, &format!("UPDATE trail_events SET body = replace(body, 'REQ-{k}', 'REQ-X') WHERE seq = {k}")).await;
        assert_eq!(
            problem(&s).await.as_deref(),
            Some(format!("event {k}: was altered (its hash does not match its contents)").as_str())
        );
    }
}

#[tokio::test]
async fn deleting_any_event_is_found_at_that_event() {
    for k in 1..EVENTS {
        let s = setup().await;
        tamper(&s, &format!("DELETE FROM trail_events WHERE seq = {k}")).await;
        assert_eq!(problem(&s).await.as_deref(), Some(format!("event {k}: is missing (deleted)").as_str()));
    }
}

#[tokio::test]
async fn reordering_events_is_found() {
    for k in [1, 5, 10] {
        let s = setup().await;
        // Swap the contents (and hashes) of two neighbours, keeping the sequence numbers.
        tamper(&s, &format!(
            "UPDATE trail_events SET body = (SELECT body FROM trail_events t WHERE t.seq = {n}), hash = (SELECT hash FROM trail_events t WHERE t.seq = {n}), \
             prev_hash = (SELECT prev_hash FROM trail_events t WHERE t.seq = {n}) WHERE seq = {k}",
            n = k + 1
        ))
        .await;
        let p = problem(&s).await.expect("found");
        assert!(p.starts_with(&format!("event {k}:")), "{p}");
    }
}

#[tokio::test]
async fn truncating_the_trail_is_found() {
    let s = setup().await;
    tamper(&s, "DELETE FROM trail_events WHERE seq > 9").await;
    assert_eq!(
        problem(&s).await.as_deref(),
        Some("event 10: and later are gone: digest covers events up to 12 (truncated)")
    );
}

#[tokio::test]
async fn editing_lookup_columns_is_found() {
    let s = setup().await;
    tamper(&s, "UPDATE trail_events SET account_id = '2000000000000002' WHERE seq = 3").await;
    assert_eq!(problem(&s).await.as_deref(), Some("event 3: has lookup columns that disagree with its contents"));
}

#[tokio::test]
async fn a_rewritten_chain_disagrees_with_the_signed_digest() {
    let s = setup().await;
    // Alter event 6 and recompute every hash after it, as an intruder without the trail key could.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s.url).await.expect("connect");
    sqlx::query("UPDATE trail_events SET body = replace(body, 'REQ-6', 'REQ-X') WHERE seq = 6")
        .execute(&pool)
        .await
        .expect("edit");
    let mut prev: String = sqlx::Row::get(
        &sqlx::query("SELECT hash FROM trail_events WHERE seq = 5").fetch_one(&pool).await.expect("row"),
        "hash",
    );
    for seq in 6..=EVENTS {
        let body: String = sqlx::Row::get(
            &sqlx::query(AssertSqlSafe(format!("SELECT body FROM trail_events WHERE seq = {seq}")))
                .fetch_one(&pool)
                .await
                .expect("row"),
            "body",
        );
        let h = event_hash(&prev, seq, &body);
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE trail_events SET prev_hash = '{prev}', hash = '{h}' WHERE seq = {seq}"
        )))
        .execute(&pool)
        .await
        .expect("rehash");
        prev = h;
    }
    pool.close().await;
    assert_eq!(
        problem(&s).await.as_deref(),
        Some("event 8: differs from what digest 2 signed (the chain was rewritten)")
    );
}

#[tokio::test]
async fn forged_or_removed_digests_are_found() {
    let s = setup().await;
    tamper(&s, "UPDATE trail_digests SET body = replace(body, '\"endSeq\":8', '\"endSeq\":7') WHERE seq = 2").await;
    assert_eq!(problem(&s).await.as_deref(), Some("digest 2: has an invalid signature (forged or edited)"));
    let s = setup().await;
    tamper(&s, "DELETE FROM trail_digests WHERE seq = 2").await;
    assert_eq!(problem(&s).await.as_deref(), Some("digest 2: is missing"));
}
