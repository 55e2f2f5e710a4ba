//! The job queue across a crash: `kill -9` in the middle of a store backup, restart, and the job
//! finishes from its checkpoint with every row exactly once. On SQLite and on PostgreSQL.

mod common;

use common::{Region, bin};
use nimbus_store::{JobState, Resource, Store};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

const ROWS: usize = 1500;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn job_of(rt: &tokio::runtime::Runtime, url: &str, id: &str) -> nimbus_store::Job {
    rt.block_on(async {
        let s = Store::open(url).await.expect("open");
        let j = s.get_job(id).await.expect("job");
        s.close().await;
        j
    })
}

fn backup_resumes_after_kill_9(url: Option<String>) {
    let rt = rt();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("d");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.join("state.db").display()));
    rt.block_on(async {
        let s = Store::open(&url).await.expect("open");
        for i in 0..ROWS {
            s.create_resource(&Resource::new(&format!("r-{i:05}"), "acct", "test.item", "local-1", json!({"i": i})))
                .await
                .expect("seed");
        }
        s.close().await;
    });

    let region = Region::start(&dir, &["--store-url", &url]);
    let out = Command::new(bin())
        .args(["admin", "backup", "--data-dir"])
        .arg(&dir)
        .args(["--store-url", &url, "--rows-per-second", "500"])
        .output()
        .expect("admin backup");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let job_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(job_id.starts_with("job-"), "{job_id}");

    // Let it get part of the way, then crash the region.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let j = job_of(&rt, &url, &job_id);
        if j.progress >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "backup made no progress: {j:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    region.kill9();
    let crashed = job_of(&rt, &url, &job_id);
    assert_eq!(crashed.state, JobState::Running, "killed mid-job");
    assert!(crashed.progress < 100 && crashed.checkpoint.is_some(), "{crashed:?}");

    let _region = Region::start(&dir, &["--store-url", &url]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let j = job_of(&rt, &url, &job_id);
        if j.state == JobState::Succeeded {
            break j;
        }
        assert!(j.state != JobState::Failed, "{j:?}");
        assert!(Instant::now() < deadline, "backup did not finish after restart: {j:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(done.attempts, 2, "one attempt before the crash, one after");

    // The backup is whole: every seeded row exactly once, digests as the manifest says.
    let dest = dir.join("backups").join(&job_id);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dest.join("manifest.json")).expect("manifest")).expect("json");
    for t in manifest["tables"].as_array().expect("tables") {
        let bytes = std::fs::read(dest.join(t["file"].as_str().expect("file"))).expect("table file");
        assert_eq!(t["sha256"], hex::encode(Sha256::digest(&bytes)), "{}", t["name"]);
    }
    let lines = std::fs::read_to_string(dest.join("resources.jsonl")).expect("resources");
    let rows: Vec<Value> = lines.lines().map(|l| serde_json::from_str::<Value>(l).expect("row")).collect();
    // The region's own rows (its system image record) are backed up too.
    let own = rows.iter().filter(|r| r["kind"] == "ecs.image").count();
    let ids: Vec<String> =
        rows.iter().filter(|r| r["kind"] != "ecs.image").map(|r| r["id"].as_str().expect("id").to_string()).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), unique.len()), (ROWS, ROWS), "no row lost, none written twice");
    let resources =
        manifest["tables"].as_array().expect("tables").iter().find(|t| t["name"] == "resources").expect("resources");
    assert_eq!(resources["rows"], ROWS + own);
}

#[test]
fn backup_resumes_after_kill_9_on_sqlite() {
    backup_resumes_after_kill_9(None);
}

#[test]
fn backup_resumes_after_kill_9_on_postgres() {
    if let Some(url) = rt().block_on(nimbus_store::testing::fresh_postgres_database()) {
        backup_resumes_after_kill_9(Some(url));
    }
}
