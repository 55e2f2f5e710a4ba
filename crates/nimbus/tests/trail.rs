//! ActionTrail through the real binary: calls become events the caller's account can look up, and
//! `nimbus trail verify` passes an untouched trail and names the first tampered record.

mod common;

use common::{ECS, Region, bin, p};
use std::process::Command;

const TRAIL: &str = "2020-07-06";
const RAM: &str = "2015-05-01";

fn verify(r_dir: &std::path::Path) -> (i32, String) {
    let out = Command::new(bin()).args(["trail", "verify", "--data-dir"]).arg(r_dir).output().expect("verify");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn calls_are_looked_up_and_the_trail_verifies_until_tampered() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("d");
    let r = Region::start(&dir, &["--trail-digest-secs", "1"]);
    let root = r.client_http();
    assert_eq!(root.call(ECS, "DescribeRegions", &[]).expect("call").status, 200);
    assert_eq!(root.call(RAM, "CreateUser", &[p("UserName", "viewer")]).expect("call").status, 200);
    let k = root.call(RAM, "CreateAccessKey", &[p("UserName", "viewer")]).expect("call").body;
    let viewer = r.client_with(
        k["AccessKey"]["AccessKeyId"].as_str().expect("id"),
        k["AccessKey"]["AccessKeySecret"].as_str().expect("s"),
    );
    assert_eq!(viewer.call(ECS, "DescribeZones", &[p("RegionId", "local-1")]).expect("call").status, 403);

    // The account sees its calls, the denied one included, newest first, secrets redacted.
    let found = root
        .call(
            TRAIL,
            "LookupEvents",
            &[p("LookupAttribute.1.Key", "EventName"), p("LookupAttribute.1.Value", "DescribeZones")],
        )
        .expect("call");
    assert_eq!(found.status, 200, "{}", found.body);
    let events = found.body["Events"].as_array().expect("events");
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e["errorCode"].as_str(), e["userIdentity"]["type"].as_str(), e["userIdentity"]["userName"].as_str()),
        (Some("Forbidden.RAM"), Some("ram-user"), Some("viewer"))
    );
    assert_eq!(e["requestParameters"]["Signature"], "******");
    assert_eq!(e["eventRW"], "Read");
    let writes = root
        .call(
            TRAIL,
            "LookupEvents",
            &[p("LookupAttribute.1.Key", "EventRW"), p("LookupAttribute.1.Value", "Write"), p("MaxResults", "1")],
        )
        .expect("call");
    assert_eq!(writes.body["Events"].as_array().map(Vec::len), Some(1));
    let token = writes.body["NextToken"].as_str().expect("more pages").to_string();
    let page2 = root
        .call(
            TRAIL,
            "LookupEvents",
            &[
                p("LookupAttribute.1.Key", "EventRW"),
                p("LookupAttribute.1.Value", "Write"),
                p("MaxResults", "1"),
                p("NextToken", &token),
            ],
        )
        .expect("call");
    assert_ne!(page2.body["Events"][0]["eventId"], writes.body["Events"][0]["eventId"]);
    // Another tenant sees none of it.
    let other: serde_json::Value = serde_json::from_slice(
        &Command::new(bin())
            .args(["admin", "account", "create", "--name", "other", "--data-dir"])
            .arg(&dir)
            .output()
            .expect("admin")
            .stdout,
    )
    .expect("json");
    let b = r.client_with(other["AccessKeyId"].as_str().expect("id"), other["AccessKeySecret"].as_str().expect("s"));
    let theirs = b
        .call(
            TRAIL,
            "LookupEvents",
            &[p("LookupAttribute.1.Key", "EventName"), p("LookupAttribute.1.Value", "DescribeZones")],
        )
        .expect("call");
    assert_eq!(theirs.body["Events"].as_array().map(Vec::len), Some(0));
    let bad = root
        .call(TRAIL, "LookupEvents", &[p("LookupAttribute.1.Key", "Password"), p("LookupAttribute.1.Value", "x")])
        .expect("call");
    assert_eq!(bad.code(), Some("InvalidParameter.LookupAttribute"));

    assert!(r.stop().success());
    let (code, out) = verify(&dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("trail verified:"), "{out}");

    // Edit one event the way an intruder with database access would.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", dir.join("state.db").display())).await.expect("connect");
        sqlx::query("UPDATE trail_events SET body = replace(body, 'Forbidden.RAM', 'NoError') WHERE error_code = 'Forbidden.RAM'")
            .execute(&pool)
            .await
            .expect("tamper");
        pool.close().await;
    });
    let (code, out) = verify(&dir);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("trail verification FAILED at event") && out.contains("was altered"), "{out}");
}
