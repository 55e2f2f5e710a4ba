//! The store's behaviour, run against both backends: SQLite (always) and PostgreSQL (the database at
//! `NIMBUS_TEST_PG_URL`, which `scripts/test-all` starts; without it the PostgreSQL half says it
//! is skipped, and under CI it fails instead).

use nimbus_store::{AccessKeyRecord, Claim, JobState, NewJob, Resource, Store, StoreError};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

/// A fresh store: a new SQLite file, or a new PostgreSQL database. Returns its URL too (to reopen).
async fn fresh(backend: &str) -> Option<(Store, String, Option<tempfile::TempDir>)> {
    match backend {
        "sqlite" => {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!("sqlite://{}", dir.path().join("state.db").display());
            Some((Store::open(&url).await.expect("open sqlite"), url, Some(dir)))
        }
        _ => {
            let url = nimbus_store::testing::fresh_postgres_database().await?;
            Some((Store::open(&url).await.expect("open postgres"), url, None))
        }
    }
}

/// Defines `<name>_sqlite` and `<name>_postgres`, each running `body(store, url)`.
macro_rules! on_both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (s, url, _dir) = super::fresh("sqlite").await.expect("sqlite always runs");
                super::$body(s, url).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some((s, url, _dir)) = super::fresh("postgres").await {
                    super::$body(s, url).await;
                }
            }
        }
    };
}

on_both!(accounts_and_keys, accounts_and_keys_body);
async fn accounts_and_keys_body(s: Store, _url: String) {
    s.create_account("1000000000000001", "alice").await.expect("create");
    assert!(matches!(s.create_account("1000000000000001", "other").await, Err(StoreError::AlreadyExists)));
    assert!(
        matches!(s.create_account("1000000000000002", "alice").await, Err(StoreError::AlreadyExists)),
        "names are unique"
    );
    let k = AccessKeyRecord {
        id: "LTAIkey1".into(),
        account_id: "1000000000000001".into(),
        principal_type: "root".into(),
        principal_id: "1000000000000001".into(),
        secret_wrapped: "01abcdef".into(),
        status: "Active".into(),
        created_at: 1,
    };
    s.insert_access_key(&k).await.expect("insert key");
    assert!(matches!(s.insert_access_key(&k).await, Err(StoreError::AlreadyExists)));
    assert_eq!(s.get_access_key("LTAIkey1").await.expect("get"), k);
    assert!(matches!(s.get_access_key("LTAInope").await, Err(StoreError::NotFound)));
    assert_eq!(s.list_accounts().await.expect("list").len(), 1);
}

on_both!(optimistic_resources, optimistic_resources_body);
async fn optimistic_resources_body(s: Store, url: String) {
    let r = s
        .create_resource(&Resource::new("i-1", "acct-a", "ecs.instance", "local-1", json!({"Name": "web"})))
        .await
        .expect("create");
    assert_eq!(r.version, 1);
    assert!(matches!(
        s.create_resource(&Resource::new("i-1", "acct-a", "ecs.instance", "local-1", json!({}))).await,
        Err(StoreError::AlreadyExists)
    ));
    // Another account cannot see it: indistinguishable from absent.
    assert!(matches!(s.get_resource("acct-b", "i-1").await, Err(StoreError::NotFound)));

    let mut v1 = s.get_resource("acct-a", "i-1").await.expect("get");
    v1.spec = json!({"Name": "web-2"});
    let v2 = s.update_resource(&v1).await.expect("update at the version read");
    assert_eq!(v2.version, 2);
    assert!(matches!(s.update_resource(&v1).await, Err(StoreError::Conflict)), "stale version loses");
    let mut foreign = v2.clone();
    foreign.account_id = "acct-b".into();
    assert!(matches!(s.update_resource(&foreign).await, Err(StoreError::NotFound)), "no cross-account writes");

    // Eight writers race from the same version: exactly one wins.
    let s2 = Arc::new(s.clone());
    let mut tasks = vec![];
    for i in 0..8 {
        let (s, mut r) = (s2.clone(), v2.clone());
        tasks.push(tokio::spawn(async move {
            r.spec = json!({"Name": format!("w{i}")});
            s.update_resource(&r).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(wins, 1);
    let now = s.get_resource("acct-a", "i-1").await.expect("get");
    assert_eq!(now.version, 3);

    assert!(matches!(s.delete_resource("acct-a", "i-1", 2).await, Err(StoreError::Conflict)));
    // State survives closing and reopening the store.
    s.close().await;
    let s = Store::open(&url).await.expect("reopen");
    assert_eq!(s.get_resource("acct-a", "i-1").await.expect("still there").version, 3);
    s.delete_resource("acct-a", "i-1", 3).await.expect("delete");
    assert!(matches!(s.delete_resource("acct-a", "i-1", 3).await, Err(StoreError::NotFound)));

    for i in 0..25 {
        s.create_resource(&Resource::new(&format!("sg-{i:03}"), "acct-a", "ecs.sg", "local-1", json!({})))
            .await
            .expect("create");
    }
    s.create_resource(&Resource::new("sg-zzz", "acct-b", "ecs.sg", "local-1", json!({}))).await.expect("create");
    let mut seen = vec![];
    let mut after: Option<String> = None;
    loop {
        let page = s.list_resources("acct-a", "ecs.sg", after.as_deref(), 10).await.expect("list");
        if page.is_empty() {
            break;
        }
        after = page.last().map(|r| r.id.clone());
        seen.extend(page.into_iter().map(|r| r.id));
    }
    assert_eq!(seen.len(), 25, "paging sees every row of the account once and none of another's");
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
}

on_both!(typed_repo, typed_repo_body);
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CounterSpec {
    name: String,
    count: i64,
}

struct Counter;
impl nimbus_store::Kind for Counter {
    const KIND: &'static str = "test.counter";
    const ID_PREFIX: &'static str = "ctr-";
    type Spec = CounterSpec;
    type Status = nimbus_store::NoStatus;
}

/// `Repo`: create, typed get, filtered paging, `update_with` retrying lost races (20 concurrent
/// increments all land), refusals that write nothing, delete at the current version.
async fn typed_repo_body(s: Store, _url: String) {
    use nimbus_store::{Page, Record};
    let repo = s.repo::<Counter>();
    for i in 0..5 {
        let r = Record::<Counter>::new(
            format!("ctr-{i}"),
            "acct-r",
            "local-1",
            CounterSpec { name: format!("n{i}"), count: 0 },
        );
        assert_eq!(repo.create(&r).await.expect("create").version, 1);
    }
    assert!(matches!(
        repo.create(&Record::new("ctr-0", "acct-r", "local-1", CounterSpec { name: "x".into(), count: 0 })).await,
        Err(StoreError::AlreadyExists)
    ));
    // Rows of another kind are not found through the repo.
    s.create_resource(&Resource::new("other-1", "acct-r", "test.other", "local-1", json!({}))).await.expect("other");
    assert!(matches!(repo.get("acct-r", "other-1").await, Err(StoreError::NotFound)));
    assert!(repo.find("acct-other", "ctr-0").await.expect("find").is_none());

    let listed = repo.list("acct-r", |r| r.spec.name != "n1", Page { number: 2, size: 3 }).await.expect("list");
    assert_eq!(listed.total, 4);
    assert_eq!(listed.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["ctr-4"]);

    let s = Arc::new(s);
    let mut tasks = vec![];
    for _ in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let r = s
                    .repo::<Counter>()
                    .update_with("acct-r", "ctr-0", |r| {
                        r.spec.count += 1;
                        Ok::<_, StoreError>(())
                    })
                    .await;
                match r {
                    Ok(_) => return,
                    // Five lost races in a row: the caller would answer OperationConflict; retry.
                    Err(StoreError::Conflict) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let repo = s.repo::<Counter>();
    let r = repo.get("acct-r", "ctr-0").await.expect("get");
    assert_eq!(r.spec.count, 20);
    let refused: Result<(Record<Counter>, ()), StoreError> = repo
        .update_with("acct-r", "ctr-0", |r| {
            r.spec.count = 0;
            Err(StoreError::Corrupt("refused".into()))
        })
        .await;
    assert!(refused.is_err());
    let (same, ()) = repo.update_with("acct-r", "ctr-0", |_| Ok::<_, StoreError>(())).await.expect("no-op");
    assert_eq!((same.spec.count, same.version), (20, r.version), "an unchanged record is not written");
    let gone = repo.delete("acct-r", "ctr-0").await.expect("delete");
    assert_eq!(gone.spec.count, 20);
    assert!(matches!(repo.delete("acct-r", "ctr-0").await, Err(StoreError::NotFound)));
}

on_both!(client_token_idempotency, idempotency_body);
async fn idempotency_body(s: Store, _url: String) {
    assert_eq!(s.claim_idempotency("a", "u1", "RunInstances", "tok", "h1").await.expect("claim"), Claim::New);
    assert_eq!(s.claim_idempotency("a", "u1", "RunInstances", "tok", "h1").await.expect("claim"), Claim::InFlight);
    assert_eq!(s.claim_idempotency("a", "u1", "RunInstances", "tok", "h2").await.expect("claim"), Claim::Mismatch);
    assert_eq!(
        s.claim_idempotency("b", "u1", "RunInstances", "tok", "h2").await.expect("claim"),
        Claim::New,
        "tokens are per account"
    );
    s.complete_idempotency("a", "u1", "RunInstances", "tok", &json!({"InstanceId": "i-1"})).await.expect("complete");
    assert_eq!(
        s.claim_idempotency("a", "u1", "RunInstances", "tok", "h1").await.expect("claim"),
        Claim::Replay(json!({"InstanceId": "i-1"}))
    );
    assert_eq!(
        s.claim_idempotency("a", "u2", "RunInstances", "tok", "h1").await.expect("claim"),
        Claim::New,
        "and per principal: another principal of the account never gets u1's answer"
    );
    // A failed call releases its claim so the retry runs.
    assert_eq!(s.claim_idempotency("a", "u1", "CreateVpc", "t2", "h").await.expect("claim"), Claim::New);
    s.abandon_idempotency("a", "u1", "CreateVpc", "t2").await.expect("abandon");
    assert_eq!(s.claim_idempotency("a", "u1", "CreateVpc", "t2", "h").await.expect("claim"), Claim::New);
}

fn job(kind: &str, max_attempts: i64) -> NewJob {
    NewJob { kind: kind.into(), account_id: "a".into(), payload: json!({"n": 1}), max_attempts }
}

on_both!(job_leases, job_leases_body);
async fn job_leases_body(s: Store, _url: String) {
    let j = s.enqueue_job(&job("k", 3)).await.expect("enqueue");
    assert_eq!(j.state, JobState::Queued);
    assert!(s.lease_job("w1", &["other"], 60_000).await.expect("lease").is_none(), "kinds filter");
    let l = s.lease_job("w1", &["k"], 60_000).await.expect("lease").expect("a job");
    assert_eq!((l.id.as_str(), l.attempts, l.state), (j.id.as_str(), 1, JobState::Running));
    assert!(s.lease_job("w2", &["k"], 60_000).await.expect("lease").is_none(), "held under lease");
    assert!(!s.heartbeat_job(&j.id, "w2", 10, None, 60_000).await.expect("hb"), "not the owner");
    assert!(s.heartbeat_job(&j.id, "w1", 40, Some(&json!({"step": 4})), 60_000).await.expect("hb"));
    let g = s.get_job(&j.id).await.expect("get");
    assert_eq!((g.progress, g.checkpoint.clone()), (40, Some(json!({"step": 4}))));

    // The owner dies: its lease runs out and another worker takes the job, checkpoint intact.
    assert!(s.heartbeat_job(&j.id, "w1", 40, None, -1).await.expect("expire the lease"));
    let l2 = s.lease_job("w2", &["k"], 60_000).await.expect("lease").expect("taken over");
    assert_eq!((l2.attempts, l2.checkpoint.clone()), (2, Some(json!({"step": 4}))));
    assert!(!s.complete_job(&j.id, "w1", &json!({})).await.expect("complete"), "the old owner cannot complete it");

    // A failed attempt goes back to the queue after the backoff; the last one fails the job.
    assert!(s.fail_job(&j.id, "w2", "boom", 60_000, false).await.expect("fail"));
    let g = s.get_job(&j.id).await.expect("get");
    assert_eq!((g.state, g.last_error.as_deref()), (JobState::Queued, Some("boom")));
    assert!(s.lease_job("w2", &["k"], 60_000).await.expect("lease").is_none(), "not due yet");

    let k = s.enqueue_job(&job("k2", 1)).await.expect("enqueue");
    s.lease_job("w3", &["k2"], 60_000).await.expect("lease").expect("job");
    assert!(s.fail_job(&k.id, "w3", "fatal", 0, false).await.expect("fail"));
    assert_eq!(s.get_job(&k.id).await.expect("get").state, JobState::Failed, "attempts exhausted");

    // A node restarting reclaims what it held at once.
    let m = s.enqueue_job(&job("k3", 3)).await.expect("enqueue");
    s.lease_job("node-a", &["k3"], 60_000).await.expect("lease").expect("job");
    assert_eq!(s.reclaim_jobs("node-a").await.expect("reclaim"), 1);
    let again = s.lease_job("node-a", &["k3"], 60_000).await.expect("lease").expect("job");
    assert_eq!(again.id, m.id);
    assert!(s.complete_job(&m.id, "node-a", &json!({"ok": true})).await.expect("complete"));
    let done = s.get_job(&m.id).await.expect("get");
    assert_eq!((done.state, done.progress, done.result), (JobState::Succeeded, 100, Some(json!({"ok": true}))));
}

on_both!(racing_workers, racing_workers_body);
async fn racing_workers_body(s: Store, _url: String) {
    for _ in 0..30 {
        s.enqueue_job(&job("race", 1)).await.expect("enqueue");
    }
    let s = Arc::new(s);
    let mut tasks = vec![];
    for w in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = vec![];
            while let Some(j) = s.lease_job(&format!("w{w}"), &["race"], 60_000).await.expect("lease") {
                assert!(s.complete_job(&j.id, &format!("w{w}"), &json!({})).await.expect("complete"));
                got.push(j.id);
            }
            got
        }));
    }
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!((all.len(), unique.len()), (30, 30), "every job ran exactly once");
}

on_both!(export_pages, export_pages_body);
async fn export_pages_body(s: Store, _url: String) {
    for i in 0..250 {
        s.create_resource(&Resource::new(&format!("r-{i:04}"), "a", "k", "local-1", json!({"i": i})))
            .await
            .expect("create");
    }
    assert_eq!(s.count_rows("resources").await.expect("count"), 250);
    let mut after: Option<String> = None;
    let mut rows = 0;
    let mut pages = 0;
    loop {
        let p = s.export_page("resources", after.as_deref(), 100).await.expect("page");
        if p.rows.is_empty() {
            break;
        }
        pages += 1;
        rows += p.rows.len();
        assert!(p.rows[0]["spec"].as_str().expect("spec is text").contains("\"i\""));
        after = p.last_key;
    }
    assert_eq!((rows, pages), (250, 3));
    assert!(s.export_page("nope", None, 1).await.is_err(), "only known tables");
}

on_both!(prefixed_listing_and_key_lifecycle, prefixed_body);
async fn prefixed_body(s: Store, _url: String) {
    for name in ["alice", "al_ice", "al%ice", "bob"] {
        s.create_resource(&Resource::new(&format!("ram-user:a:{name}"), "a", "ram.user", "", json!({})))
            .await
            .expect("create");
    }
    s.create_resource(&Resource::new("ram-user:b:alice", "b", "ram.user", "", json!({}))).await.expect("create");
    let ids = |v: Vec<Resource>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let al = s.list_resources_prefixed("a", "ram.user", "ram-user:a:al", None, 10).await.expect("list");
    assert_eq!(ids(al), ["ram-user:a:al%ice", "ram-user:a:al_ice", "ram-user:a:alice"], "no LIKE wildcards");
    let none = s.list_resources_prefixed("a", "ram.user", "ram-user:b:", None, 10).await.expect("list");
    assert!(none.is_empty(), "scoped by account even when the prefix names another");
    let page =
        s.list_resources_prefixed("a", "ram.user", "ram-user:a:", Some("ram-user:a:al_ice"), 10).await.expect("list");
    assert_eq!(ids(page), ["ram-user:a:alice", "ram-user:a:bob"]);

    s.create_account("a", "tenant-a").await.expect("account");
    for (i, id) in ["LTAIk1", "LTAIk2"].iter().enumerate() {
        s.insert_access_key(&AccessKeyRecord {
            id: id.to_string(),
            account_id: "a".into(),
            principal_type: "user".into(),
            principal_id: "alice".into(),
            secret_wrapped: "00".into(),
            status: "Active".into(),
            created_at: i as i64,
        })
        .await
        .expect("key");
    }
    let keys = s.list_access_keys("a", "user", "alice").await.expect("list");
    assert_eq!(keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(), ["LTAIk1", "LTAIk2"]);
    assert!(
        matches!(s.set_access_key_status("b", "LTAIk1", "Inactive").await, Err(StoreError::NotFound)),
        "not across accounts"
    );
    s.set_access_key_status("a", "LTAIk1", "Inactive").await.expect("disable");
    assert_eq!(s.get_access_key("LTAIk1").await.expect("get").status, "Inactive");
    s.set_account_status("a", "Disabled").await.expect("disable account");
    assert_eq!(
        s.get_access_key("LTAIk2").await.expect("get").status,
        "Inactive",
        "a disabled account's keys are inactive"
    );
    assert!(matches!(s.delete_access_key("b", "LTAIk2").await, Err(StoreError::NotFound)));
    s.delete_access_key("a", "LTAIk2").await.expect("delete");
    assert_eq!(s.list_access_keys("a", "user", "alice").await.expect("list").len(), 1);
}

fn obj(key: &str) -> nimbus_store::objects::ObjectRow {
    nimbus_store::objects::ObjectRow {
        bucket: "b".into(),
        key: key.into(),
        size: key.len() as i64,
        etag: "e".into(),
        last_modified: 1,
        meta: json!({}),
        version_id: "null".into(),
        seq: 0,
    }
}

on_both!(object_listing, object_listing_body);
async fn object_listing_body(s: Store, _url: String) {
    let keys = ["a.txt", "dir/x", "dir/y", "dir/sub/z", "dir/sub/zz", "dis", "e/1", "é/x", "z"];
    s.put_object_rows(&keys.iter().map(|k| obj(k)).collect::<Vec<_>>()).await.expect("put");
    let replaced = s.put_object_row(&obj("z")).await.expect("upsert");
    assert!(replaced.is_some(), "a second put replaces and returns the old row");
    assert_eq!(s.count_objects("b").await.expect("count"), keys.len() as i64);
    let names = |l: &nimbus_store::objects::Listing| {
        (l.objects.iter().map(|o| o.key.clone()).collect::<Vec<_>>(), l.common_prefixes.clone())
    };

    let all = s.list_objects("b", "", "", "", 100).await.expect("list");
    let mut sorted: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    sorted.sort(); // Rust orders strings by bytes: the order both databases must use
    assert_eq!(names(&all).0, sorted, "byte order on both backends");
    let root = s.list_objects("b", "", "", "/", 100).await.expect("list");
    assert_eq!(
        names(&root),
        (vec!["a.txt".into(), "dis".into(), "z".into()], vec!["dir/".into(), "e/".into(), "é/".into()])
    );
    let dir = s.list_objects("b", "dir/", "", "/", 100).await.expect("list");
    assert_eq!(names(&dir), (vec!["dir/x".into(), "dir/y".into()], vec!["dir/sub/".into()]));
    // Paging two entries at a time visits every entry once, common prefixes included.
    let mut seen = vec![];
    let mut marker = String::new();
    loop {
        let page = s.list_objects("b", "", &marker, "/", 2).await.expect("page");
        let (o, p) = names(&page);
        seen.extend(o.into_iter().chain(p));
        match page.next_marker {
            Some(m) => marker = m,
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["a.txt", "dir/", "dis", "e/", "z", "é/"]);
    assert!(s.delete_object_row("b", "dis").await.expect("delete").is_some());
    assert!(s.delete_object_row("b", "dis").await.expect("delete").is_none());
    assert!(s.list_objects("other", "", "", "", 10).await.expect("list").objects.is_empty());
}

fn version(key: &str, vid: &str, seq: i64) -> nimbus_store::objects::ObjectRow {
    nimbus_store::objects::ObjectRow { version_id: vid.into(), seq, ..obj(key) }
}

on_both!(object_versions, object_versions_body);
async fn object_versions_body(s: Store, _url: String) {
    use nimbus_store::versions::Versioning::{Enabled, Off, Suspended};
    // Not versioned: a put replaces and hands back the old row to free.
    assert!(s.put_object_versioned(&version("k", "null", 1), Off).await.expect("put").is_empty());
    assert_eq!(s.put_object_versioned(&version("k", "null", 2), Off).await.expect("put").len(), 1);
    // Enabled: the old current version is kept, nothing freed.
    assert!(
        s.put_object_versioned(&version("k", "v3", 3), Enabled)
            .await
            .expect("put")
            .iter()
            .all(|r| r.version_id != "v3")
    );
    assert!(s.put_object_versioned(&version("k", "v4", 4), Enabled).await.expect("put").is_empty());
    assert_eq!(s.get_object_row("b", "k").await.expect("get").expect("current").version_id, "v4");
    let (freed, marker) = s.delete_object_versioned(&version("k", "m5", 5), Enabled).await.expect("delete");
    assert!(freed.is_empty() && marker);
    assert!(s.get_object_row("b", "k").await.expect("get").is_none(), "a delete marker hides the key");
    assert_eq!(s.latest_delete_marker("b", "k").await.expect("marker").as_deref(), Some("m5"));
    let l = s.list_object_versions("b", "", "", "", "", 100).await.expect("list");
    let got: Vec<(String, bool, bool)> =
        l.entries.iter().map(|e| (e.row.version_id.clone(), e.delete_marker, e.is_latest)).collect();
    assert_eq!(
        got,
        [
            ("m5".into(), true, true),
            ("v4".into(), false, false),
            ("v3".into(), false, false),
            ("null".into(), false, false)
        ]
    );
    // Paging by (key, version) markers resumes exactly after the marker.
    let p1 = s.list_object_versions("b", "", "", "", "", 2).await.expect("page");
    assert_eq!(p1.next, Some(("k".into(), Some("v4".into()))));
    let p2 = s.list_object_versions("b", "", "k", "v4", "", 2).await.expect("page");
    assert_eq!(p2.entries.iter().map(|e| e.row.version_id.as_str()).collect::<Vec<_>>(), ["v3", "null"]);
    // Removing the marker brings the newest version back as current.
    let (_, was_marker) = s.delete_object_version("b", "k", "m5").await.expect("del").expect("existed");
    assert!(was_marker);
    assert_eq!(s.get_object_row("b", "k").await.expect("get").expect("current").version_id, "v4");
    // Deleting the current version promotes the next one.
    s.delete_object_version("b", "k", "v4").await.expect("del").expect("existed");
    assert_eq!(s.get_object_row("b", "k").await.expect("get").expect("current").version_id, "v3");
    assert_eq!(s.get_object_version("b", "k", "null").await.expect("get").map(|(r, m)| (r.seq, m)), Some((2, false)));
    // Suspended: new writes take the null version, replacing (and freeing) the old null one.
    let freed = s.put_object_versioned(&version("k", "null", 6), Suspended).await.expect("put");
    assert_eq!(freed.iter().map(|r| r.seq).collect::<Vec<_>>(), [2], "the old null version is freed");
    assert_eq!(s.count_versions("b").await.expect("count"), 1, "v3 kept as noncurrent");
    assert!(s.delete_bucket("b").await.is_err(), "a bucket with versions is not empty");
    // Delimiters roll versions up too.
    s.put_object_versioned(&version("d/1", "a", 7), Enabled).await.expect("put");
    s.put_object_versioned(&version("d/2", "b", 8), Enabled).await.expect("put");
    let l = s.list_object_versions("b", "", "", "", "/", 100).await.expect("list");
    assert_eq!(l.common_prefixes, ["d/"]);
    assert_eq!(l.entries.iter().map(|e| e.row.key.as_str()).collect::<Vec<_>>(), ["k", "k"]);
}
