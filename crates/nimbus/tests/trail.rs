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

#[test]
fn trails_deliver_signed_files_and_tampering_with_them_is_found() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("d");
    let r = Region::start(&dir, &["--trail-digest-secs", "0.3"]);
    let root = r.client_http();
    let acct = r.creds().account_id;
    let created = root.call(TRAIL, "CreateTrail", &[p("Name", "audit-all")]).expect("call");
    assert_eq!(created.status, 200, "{}", created.body);
    let keys = |v: &serde_json::Value| {
        v.as_object().map(|m| m.keys().filter(|k| *k != "RequestId").cloned().collect::<Vec<_>>()).unwrap_or_default()
    };
    let settings = ["Name", "HomeRegion", "TrailRegion", "EventRW", "OssBucketName", "OssKeyPrefix", "SlsProjectArn"];
    let settings = [&settings[..], &["SlsWriteRoleArn", "OssWriteRoleArn"]].concat();
    assert_eq!(keys(&created.body), settings, "CreateTrail answers with the settings, in this order");
    assert_eq!((created.body["Name"].as_str(), created.body["EventRW"].as_str()), (Some("audit-all"), Some("All")));
    assert_eq!(
        root.call(TRAIL, "CreateTrail", &[p("Name", "audit-all")]).expect("call").code(),
        Some("TrailAlreadyExistsException")
    );
    assert_eq!(
        root.call(TRAIL, "CreateTrail", &[p("Name", "Bad")]).expect("call").code(),
        Some("InvalidTrailNameException")
    );
    assert_eq!(root.call(TRAIL, "StartLogging", &[p("Name", "audit-all")]).expect("call").status, 200);
    // Calls spread over a few delivery intervals, so several files are delivered.
    for _ in 0..3 {
        for _ in 0..3 {
            assert_eq!(root.call(ECS, "DescribeRegions", &[]).expect("call").status, 200);
        }
        std::thread::sleep(std::time::Duration::from_millis(400));
    }
    let status = root.call(TRAIL, "GetTrailStatus", &[p("Name", "audit-all")]).expect("call");
    assert_eq!(status.body["IsLogging"], true);
    assert!(status.body["LatestDeliveryTime"].as_str().is_some_and(|t| !t.is_empty()), "{}", status.body);
    let trails = root.call(TRAIL, "DescribeTrails", &[]).expect("call");
    assert_eq!(trails.body["TrailList"][0]["Status"], "Enable");
    let logging = ["Status", "CreateTime", "UpdateTime", "StartLoggingTime", "StopLoggingTime", "TrailArn"];
    let logging = [&logging[..], &["IsOrganizationTrail", "LatestDeliveryTime", "LatestDeliveryError"]].concat();
    let listed = &trails.body["TrailList"][0];
    assert_eq!(keys(listed), [settings.clone(), logging].concat(), "DescribeTrails: no delivery cursor, in order");
    assert_eq!(listed["IsOrganizationTrail"], false);
    assert!(r.stop().success());

    let folder = dir.join("trails").join(&acct).join("audit-all");
    let check = || {
        let out = Command::new(bin())
            .args(["trail", "verify", "--data-dir"])
            .arg(&dir)
            .arg("--delivered")
            .arg(&folder)
            .output()
            .expect("verify");
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = check();
    assert_eq!(code, 0, "{out}");
    let files = |prefix: &str| {
        let mut v: Vec<std::path::PathBuf> = std::fs::read_dir(&folder)
            .expect("dir")
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
            .collect();
        v.sort();
        v
    };
    let events = files("events-");
    let digests = files("digest-");
    assert!(events.len() >= 2, "several deliveries: {events:?}");
    let lines = std::fs::read_to_string(&events[0]).expect("read");
    assert!(lines.lines().all(|l| {
        serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v["userIdentity"]["accountId"] == acct.as_str())
    }));

    // Tamper with a delivery that holds the calls made above (an early one may hold only the
    // trail's own management calls), with at least two lines so reordering shows.
    let target = events
        .iter()
        .find(|e| {
            let t = std::fs::read_to_string(e).unwrap_or_default();
            t.contains("DescribeRegions") && t.lines().count() >= 2
        })
        .expect("a delivery with the DescribeRegions calls")
        .clone();
    let backup = |p: &std::path::Path| std::fs::read(p).expect("read");
    let restore = |p: &std::path::Path, b: &[u8]| std::fs::write(p, b).expect("write");

    // An edited line.
    let original = backup(&target);
    restore(&target, String::from_utf8_lossy(&original).replacen("DescribeRegions", "DescribeRegionz", 1).as_bytes());
    let (code, out) = check();
    assert!(code == 1 && out.contains("altered"), "{out}");
    // Reordered lines.
    let mut ls: Vec<&str> = std::str::from_utf8(&original).expect("utf8").lines().collect();
    ls.reverse();
    restore(&target, (ls.join("\n") + "\n").as_bytes());
    let (code, out) = check();
    assert!(code == 1 && out.contains("altered"), "{out}");
    restore(&target, &original);
    assert_eq!(check().0, 0);
    // A deleted events file.
    std::fs::remove_file(&events[1]).expect("rm");
    let (code, out) = check();
    assert!(code == 1 && out.contains("missing"), "{out}");
    // A removed digest (its events file is then unsigned, or the chain breaks).
    let d0 = backup(&digests[0]);
    std::fs::remove_file(&digests[0]).expect("rm");
    let (code, out) = check();
    assert!(code == 1 && (out.contains("does not follow") || out.contains("no signed digest")), "{out}");
    // A forged digest.
    restore(&digests[0], String::from_utf8_lossy(&d0).replacen("\\\"count\\\":", "\\\"count\\\":9", 1).as_bytes());
    let (code, out) = check();
    assert!(code == 1 && out.contains("invalid signature"), "{out}");
}

/// Every file under `dir`, read whole (the state store, its WAL, trail files, …).
fn all_bytes_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = vec![];
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                todo.push(path);
            } else if let Ok(b) = std::fs::read(&path) {
                out.push((path, b));
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// A plain HTTP GET on the object door (`addr` is `http://host:port`); the answer's bytes.
fn object_get(addr: &str, path_and_query: &str) -> String {
    use std::io::{Read, Write};
    let host = addr.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(s, "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    answer
}

/// Issue 13: `SignatureDoesNotMatch` quotes the server's string to sign, which holds every
/// parameter of the call. The caller gets it; the state store, the trail and the log keep it only
/// with the secrets masked (KMS plaintexts, passwords, STS security tokens).
#[test]
fn secrets_a_bad_signature_quotes_are_neither_stored_nor_logged() {
    const SECRETS: [&str; 4] =
        ["SUPERSECRETPLAINTEXT", "Hunter2SecretPassword", "CAISsecretSECURITYtoken", "OSSsecretSECURITYtoken"];
    for sink in ["trail", "log"] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("d");
        let r = Region::start(&dir, &["--audit-sink", sink]);
        let ak = r.creds().access_key_id;
        let wrong = r.client_with(&ak, "not-the-secret");
        let kms =
            wrong.call("2016-01-20", "Encrypt", &[p("KeyId", "alias/x"), p("Plaintext", SECRETS[0])]).expect("call");
        assert_eq!(kms.code(), Some("SignatureDoesNotMatch"), "{}", kms.body);
        assert!(kms.body["Message"].as_str().is_some_and(|m| m.contains(SECRETS[0])), "the caller's own");
        let ram = wrong
            .call(RAM, "CreateLoginProfile", &[p("UserName", "u"), p("Password", &format!("{}!9", SECRETS[1]))])
            .expect("call");
        assert_eq!(ram.code(), Some("SignatureDoesNotMatch"), "{}", ram.body);
        let sts = wrong.with_security_token(SECRETS[2]).call(ECS, "DescribeRegions", &[]).expect("call");
        assert_eq!(sts.code(), Some("SignatureDoesNotMatch"), "{}", sts.body);
        let until = chrono::Utc::now().timestamp() + 300;
        let oss = object_get(
            &r.oss_http,
            &format!("/b/k?OSSAccessKeyId={ak}&Expires={until}&Signature=bad&security-token={}", SECRETS[3]),
        );
        assert!(oss.contains("SignatureDoesNotMatch"), "{oss}");
        let stderr_path = r.stderr_path.clone();
        assert!(r.stop().success());

        let mut files = all_bytes_under(&dir);
        files.retain(|(p, _)| !p.ends_with("root-credentials"));
        files.push((stderr_path.clone(), std::fs::read(&stderr_path).expect("log")));
        for (path, bytes) in &files {
            for s in SECRETS {
                assert!(!contains(bytes, s), "{s} reached {}", path.display());
            }
        }
        // Not vacuous: the failures were recorded, with the strings to sign masked.
        let masked = files.iter().any(|(_, b)| contains(b, "Plaintext%3D******"));
        assert!(masked, "the {sink} sink holds the Encrypt failure's masked string to sign");
        let _ = std::fs::remove_file(&stderr_path);
    }
}
