//! OSS against the real binary: crashes (`kill -9` during PUT, multipart completion and delete,
//! repeatedly), a lost replica directory, a flipped byte, and the `nimbus oss` CLI.

mod common;

use common::{Region, bin};
use md5::{Digest, Md5};
use nimbus::oss_client::OssClient;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn client(r: &Region) -> OssClient {
    let c = r.creds();
    OssClient::new(&r.oss_http, &c.access_key_id, &c.access_key_secret, None).expect("client")
}

/// A small deterministic generator (no need for cryptographic randomness here).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The engine's temporary files (`<id>.tmp`: a write not yet renamed into place) under `dir/oss`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    files_under(&dir.join("oss")).into_iter().filter(|p| p.extension().is_some_and(|e| e == "tmp")).collect()
}

/// Waits (polling, at most 10 s) until the region has a write of its own in flight in OSS — a
/// temporary file that was not there before it started — or its system image is no longer being
/// built (Available, or failed where the host has no QEMU). True if such a write was seen.
fn wait_for_own_write(r: &Region, dir: &Path, before: &[PathBuf]) -> bool {
    let rpc = r.client_http();
    let building = || {
        rpc.call(
            common::ECS,
            "DescribeImages",
            &[common::p("ImageOwnerAlias", "system"), common::p("RegionId", "local-1")],
        )
        .map(|v| v.body["Images"]["Image"].as_array().into_iter().flatten().any(|i| i["Status"] == "Creating"))
        .unwrap_or(true)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut polls = 0u32;
    while std::time::Instant::now() < deadline {
        if temp_files(dir).iter().any(|p| !before.contains(p)) {
            return true;
        }
        polls += 1;
        if polls.is_multiple_of(10) && !building() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[derive(Clone, Debug)]
enum Op {
    Put { key: String, md5: String },
    Delete { key: String },
}

/// PUTs, multipart uploads and deletes until the region dies; records each operation before it
/// is sent and whether it was acknowledged.
fn load(c: OssClient, bucket: String, round: u32, log: Arc<Mutex<Vec<(Op, bool)>>>, stop: Arc<AtomicBool>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ u64::from(round + 1));
    for i in 0.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let acked_keys: Vec<String> = log
            .lock()
            .expect("log")
            .iter()
            .filter_map(|(op, ok)| match op {
                Op::Put { key, .. } if *ok => Some(key.clone()),
                _ => None,
            })
            .collect();
        let choice = rng.below(4);
        let (op, result) = if choice == 3 && !acked_keys.is_empty() {
            let key = acked_keys[rng.below(acked_keys.len() as u64) as usize].clone();
            let op = Op::Delete { key: key.clone() };
            log.lock().expect("log").push((op.clone(), false));
            (op, c.request("DELETE", Some(&bucket), Some(&key), &[], &[], &[]).and_then(|r| r.ok()))
        } else if choice == 2 {
            let key = format!("mp-{round}-{i}");
            let n = 200_000 + rng.below(600_000) as usize;
            let data = rng.bytes(n);
            let op = Op::Put { key: key.clone(), md5: md5_hex(&data) };
            log.lock().expect("log").push((op.clone(), false));
            (op, c.multipart_upload(&bucket, &key, &data[..], 128 << 10, |_| {}))
        } else {
            let key = format!("put-{round}-{i}");
            let n = 1 + rng.below(2 << 20) as usize;
            let data = rng.bytes(n);
            let op = Op::Put { key: key.clone(), md5: md5_hex(&data) };
            log.lock().expect("log").push((op.clone(), false));
            (op, c.put_object(&bucket, &key, &data).and_then(|r| r.ok()))
        };
        if result.is_err() {
            return; // the region is gone
        }
        let mut l = log.lock().expect("log");
        if let Some(entry) = l.iter_mut().rev().find(|(o, _)| format!("{o:?}") == format!("{op:?}")) {
            entry.1 = true;
        }
    }
}

#[test]
fn kill_9_during_puts_multipart_completion_and_deletes_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let bucket = "crash-test".to_string();
    let log: Arc<Mutex<Vec<(Op, bool)>>> = Arc::new(Mutex::new(vec![]));
    let mut rng = Rng(42);
    {
        let r = Region::start(&dir, &[]);
        client(&r).request("PUT", Some(&bucket), None, &[], &[], &[]).expect("mb").ok().expect("mb ok");
        r.stop();
    }
    for round in 0..4 {
        let r = Region::start(&dir, &[]);
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (c, b, l, s) = (client(&r), bucket.clone(), log.clone(), stop.clone());
            std::thread::spawn(move || load(c, b, round, l, s))
        };
        // Kill once this round has had a few operations acknowledged, at a random point after:
        // the pace of the load (a busy CI host, the region's own image build) sets the timing,
        // not a fixed sleep that a slow host fills with nothing.
        let acked = || log.lock().expect("log").iter().filter(|(_, ok)| *ok).count();
        let (from, deadline) = (acked(), std::time::Instant::now() + Duration::from_secs(60));
        while acked() < from + 3 {
            assert!(std::time::Instant::now() < deadline, "round {round}: no progress in 60 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(rng.below(600)));
        r.kill9();
        stop.store(true, Ordering::Relaxed);
        worker.join().expect("worker");
    }
    // What the crashes left behind, before the restart that must remove it, plus one planted
    // leftover in each replica so the check below never passes for want of a crash mid-write.
    for i in 0..3 {
        let shard = dir.join("oss").join(format!("replica-{i}")).join("objects").join("ab");
        std::fs::create_dir_all(&shard).expect("shard");
        std::fs::write(shard.join(format!("ab{}.tmp", "0".repeat(32))), b"half an object").expect("leftover");
    }
    let leftovers = temp_files(&dir);
    let r = Region::start(&dir, &[]);
    // The region writes into OSS by itself from now on (its first-start system image build: kernel,
    // initrd, disk). Check while such a write is in flight when there is one, as on a slow CI host:
    // its temporary files are not crash leftovers.
    let own_write = wait_for_own_write(&r, &dir, &leftovers);
    eprintln!("checking for leftovers while the region's own OSS write is in flight: {own_write}");
    let still: Vec<&PathBuf> = leftovers.iter().filter(|p| p.exists()).collect();
    assert!(still.is_empty(), "crash leftovers from before the restart are removed on start: {still:?}");
    let c = client(&r);
    let log = log.lock().expect("log").clone();
    assert!(log.iter().filter(|(_, ok)| *ok).count() > 8, "the load made progress: {}", log.len());
    // The final expected state of each key, from the log.
    let mut expect: std::collections::BTreeMap<String, (Option<String>, bool)> = Default::default();
    for (op, acked) in &log {
        match op {
            Op::Put { key, md5 } => {
                expect.insert(key.clone(), (Some(md5.clone()), *acked));
            }
            Op::Delete { key } => {
                let md5 = expect.get(key).and_then(|e| e.0.clone());
                // An unacknowledged delete may or may not have happened.
                expect.insert(key.clone(), (if *acked { None } else { md5 }, *acked));
            }
        }
    }
    let deleted_unsure: std::collections::BTreeSet<String> = log
        .iter()
        .filter_map(|(op, ok)| match op {
            Op::Delete { key } if !ok => Some(key.clone()),
            _ => None,
        })
        .collect();
    for (key, (md5, acked)) in &expect {
        let got = c.get_object(&bucket, key).expect("get");
        match (md5, acked) {
            (Some(m), true) if !deleted_unsure.contains(key) => {
                assert_eq!(got.status, 200, "acknowledged {key} lost: {}", got.text());
                assert_eq!(&md5_hex(&got.body), m, "acknowledged {key} changed");
            }
            (None, true) => assert_eq!(got.status, 404, "deleted {key} came back"),
            (Some(m), _) => assert!(
                got.status == 404 || (got.status == 200 && &md5_hex(&got.body) == m),
                "{key}: a partial or wrong object is visible (status {}, {} bytes)",
                got.status,
                got.body.len()
            ),
            (None, false) => {}
        }
    }
    // Nothing is listed that was never written whole.
    let list =
        c.request("GET", Some(&bucket), None, &[("max-keys", "1000")], &[], &[]).expect("list").ok().expect("ok");
    for key in list.text().split("<Key>").skip(1).filter_map(|s| s.split("</Key>").next()) {
        assert!(expect.contains_key(key), "listed {key} was never attempted");
    }
    let state = |c: &OssClient, key: &str| {
        let r = c.get_object(&bucket, key).expect("get");
        (r.status, if r.status == 200 { md5_hex(&r.body) } else { String::new() })
    };
    let before: Vec<(String, (u16, String))> = expect.keys().map(|k| (k.clone(), state(&c, k))).collect();
    r.stop();
    // With the region stopped, fsck reclaims what crashes leaked and touches nothing referenced.
    let out = nimbus(&["oss", "fsck", "--data-dir", dir.to_str().expect("utf8"), "--remove-orphans-older-than", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["Lost"], serde_json::json!([]), "{report}");
    // Counted with the region stopped: once it runs it may write again (an interrupted image build).
    let referenced = report["Objects"].as_u64().expect("objects") as usize;
    let files = files_under(&dir.join("oss").join("replica-0")).len();
    assert_eq!(files, referenced, "after the sweep replica-0 holds exactly the referenced data");
    let r = Region::start(&dir, &[]);
    let c = client(&r);
    for (key, seen) in before {
        assert_eq!(state(&c, &key), seen, "{key} unchanged by the orphan sweep");
    }
    eprintln!("fsck after the crashes: {report}");
    r.stop();
}

fn nimbus(args: &[&str]) -> std::process::Output {
    Command::new(bin()).args(args).output().expect("run nimbus")
}

#[test]
fn a_lost_replica_directory_and_a_flipped_byte_are_healed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let r = Region::start(&dir, &[]);
    // The region stores its own system image in OSS shortly after start (where the host has
    // QEMU): let that finish, and count only what this test adds.
    let images = r.system_images_settled(120);
    let replica = |i: u32| dir.join("oss").join(format!("replica-{i}"));
    let fsck = || {
        let out = nimbus(&["oss", "fsck", "--data-dir", dir.to_str().expect("utf8")]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json report")
    };
    let base = fsck();
    let count = |r: &serde_json::Value, k: &str| r[k].as_u64().expect("count");
    let region_files = files_under(&replica(0));
    eprintln!("system images {images:?}; the region's own objects: {base}");
    let c = client(&r);
    c.request("PUT", Some("heal"), None, &[], &[], &[]).expect("mb").ok().expect("ok");
    let mut rng = Rng(7);
    let big = rng.bytes(3 << 20);
    let small = rng.bytes(10_000);
    c.put_object("heal", "big", &big).expect("put").ok().expect("ok");
    c.put_object("heal", "small", &small).expect("put").ok().expect("ok");

    // A whole replica directory (a disk) is lost: every read still succeeds.
    std::fs::remove_dir_all(replica(1)).expect("lose replica 1");
    assert_eq!(c.get_object("heal", "big").expect("get").body, big);
    assert_eq!(c.get_object("heal", "small").expect("get").body, small);
    let report = fsck();
    assert_eq!(report["Lost"], serde_json::json!([]));
    assert!(
        count(&report, "Objects") == count(&base, "Objects") + 2
            && count(&report, "BlocksChecked") == count(&base, "BlocksChecked") + 4,
        "{report} (before the test's objects: {base})"
    );
    let names = |i: u32| -> Vec<PathBuf> {
        files_under(&replica(i)).iter().map(|p| p.strip_prefix(replica(i)).expect("prefix").to_path_buf()).collect()
    };
    assert_eq!(names(1), names(0), "fsck restored every replica file");
    for n in names(0) {
        assert_eq!(std::fs::read(replica(0).join(&n)).expect("r0"), std::fs::read(replica(1).join(&n)).expect("r1"));
    }

    // One byte flipped in the replica read first: detected, the right bytes served, repaired.
    let victim = files_under(&replica(0))
        .into_iter()
        .filter(|p| !region_files.contains(p))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a file");
    let mut bytes = std::fs::read(&victim).expect("read");
    bytes[1_500_000] ^= 0x40;
    std::fs::write(&victim, &bytes).expect("rot");
    let got = c.get_object("heal", "big").expect("get");
    assert_eq!(got.status, 200);
    assert!(got.body == big, "the correct bytes are served despite the flipped byte");
    let twin = replica(2).join(victim.strip_prefix(replica(0)).expect("prefix"));
    assert_eq!(
        std::fs::read(&victim).expect("read"),
        std::fs::read(&twin).expect("read"),
        "the bad replica was repaired"
    );
    r.stop();
}

#[test]
fn the_cli_makes_buckets_copies_lists_presigns_and_removes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let r = Region::start(&dir, &[]);
    let cfg = tmp.path().join("cli.toml");
    let run = |args: &[&str]| {
        let out = Command::new(bin()).args(args).env("NIMBUS_CLI_CONFIG", &cfg).output().expect("run");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["configure", "--from-data-dir", dir.to_str().expect("utf8")]);
    run(&["oss", "mb", "oss://cli-bucket"]);
    assert!(run(&["oss", "ls"]).contains("oss://cli-bucket"));
    let src = tmp.path().join("file.bin");
    let data = Rng(3).bytes(5 << 20);
    std::fs::write(&src, &data).expect("write");
    // Over HTTPS (the profile's endpoint), in 1 MiB parts.
    run(&[
        "oss",
        "cp",
        src.to_str().expect("utf8"),
        "oss://cli-bucket/dir/",
        "--multipart-threshold-mib",
        "1",
        "--part-size-mib",
        "1",
    ]);
    let listing = run(&["oss", "ls", "oss://cli-bucket/dir/"]);
    assert!(
        listing.contains("oss://cli-bucket/dir/file.bin") && listing.contains(&(5u64 << 20).to_string()),
        "{listing}"
    );
    let back = tmp.path().join("back.bin");
    run(&["oss", "cp", "oss://cli-bucket/dir/file.bin", back.to_str().expect("utf8"), "--part-size-mib", "2"]);
    assert!(std::fs::read(&back).expect("read") == data, "downloaded bytes equal the upload");
    let url = run(&["oss", "presign", "oss://cli-bucket/dir/file.bin", "--expires", "60"]);
    assert!(url.contains("Signature="), "{url}");
    run(&["oss", "cp", "oss://cli-bucket/dir/file.bin", "oss://cli-bucket/copy.bin"]);
    assert!(run(&["oss", "ls", "oss://cli-bucket", "--dir"]).contains("oss://cli-bucket/dir/"));
    run(&["oss", "rm", "oss://cli-bucket/", "--recursive", "--bucket"]);
    assert!(!run(&["oss", "ls"]).contains("oss://cli-bucket"));
    r.stop();
}

/// One HTTP/1.1 request on the object door at `addr` (`http://host:port`): (status, whole answer).
fn raw(addr: &str, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let host = addr.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).and_then(|_| s.write_all(body)).expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    let status = answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status line");
    (status, answer)
}

/// What an S3 client signs: `host` (plus `extra` signed headers), over `method path`, at `at`.
struct S3Signer<'a> {
    r: &'a Region,
    at: chrono::DateTime<chrono::Utc>,
}

impl S3Signer<'_> {
    fn host(&self) -> &str {
        self.r.oss_http.trim_start_matches("http://")
    }

    fn scope(&self) -> (String, String) {
        let amz_date = self.at.format("%Y%m%dT%H%M%SZ").to_string();
        let scope = format!("{}/local-1/s3/aws4_request", &amz_date[..8]);
        (amz_date, scope)
    }

    fn signature(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        signed: &[(&str, &str)],
        payload: &str,
    ) -> String {
        use nimbus_gateway::signature::s3;
        let (amz_date, scope) = self.scope();
        let names: Vec<String> = signed.iter().map(|(k, _)| k.to_string()).collect();
        let cr = s3::canonical_request(
            method,
            path,
            query,
            &names,
            |n| signed.iter().filter(|(k, _)| *k == n).map(|(_, v)| *v).collect(),
            payload,
        );
        let key = s3::signing_key(&self.r.creds().access_key_secret, &amz_date[..8], "local-1", "s3");
        s3::sign(&key, &s3::string_to_sign(&amz_date, &scope, &cr))
    }

    /// A presigned URL's path and query, valid `expires` seconds from `at`.
    fn presign(&self, method: &str, path: &str, expires: i64) -> String {
        use nimbus_gateway::signature::pct;
        let (amz_date, scope) = self.scope();
        let query: Vec<(String, String)> = [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_string()),
            ("X-Amz-Credential", format!("{}/{scope}", self.r.creds().access_key_id)),
            ("X-Amz-Date", amz_date),
            ("X-Amz-Expires", expires.to_string()),
            ("X-Amz-SignedHeaders", "host".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let sig = self.signature(method, path, &query, &[("host", self.host())], "UNSIGNED-PAYLOAD");
        let qs = query.iter().map(|(k, v)| format!("{}={}", pct(k), pct(v))).collect::<Vec<_>>().join("&");
        format!("{path}?{qs}&X-Amz-Signature={sig}")
    }

    /// Header-signed: the headers botocore signs for a PUT with an unsigned payload.
    fn header_signed(&self, path: &str) -> Vec<(String, String)> {
        let (amz_date, scope) = self.scope();
        let host = self.host().to_string();
        let signed = [("host", host.as_str()), ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"), ("x-amz-date", &amz_date)];
        let sig = self.signature("PUT", path, &[], &signed, "UNSIGNED-PAYLOAD");
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}",
            self.r.creds().access_key_id
        );
        vec![
            ("authorization".into(), auth),
            ("x-amz-content-sha256".into(), "UNSIGNED-PAYLOAD".into()),
            ("x-amz-date".into(), amz_date.clone()),
        ]
    }
}

/// Issue 13, findings 1 and 5, with hand-made SigV4 against the real binary: a presigned PUT
/// sent with unsigned `x-amz-copy-source` + `x-amz-acl` used to copy the signer's private object
/// to a public key; header-signed SigV4 honoured headers outside `SignedHeaders`; links of ten
/// years, or dated a year ahead, were accepted.
#[test]
fn s3_signatures_cover_every_amz_header_and_presigned_links_are_bounded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("data"), &[]);
    let c = client(&r);
    c.request("PUT", Some("sigs"), None, &[], &[], &[]).expect("call").ok().expect("bucket");
    c.put_object("sigs", "secret.txt", b"private bytes").expect("call").ok().expect("put");
    let now = S3Signer { r: &r, at: chrono::Utc::now() };
    let addr = r.oss_http.clone();

    let put = now.presign("PUT", "/sigs/public.txt", 300);
    let attack = [("x-amz-copy-source", "/sigs/secret.txt"), ("x-amz-acl", "public-read")];
    let (status, answer) = raw(&addr, "PUT", &put, &attack, b"");
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("<Code>AccessDenied</Code>") && answer.contains("which were not signed"), "{answer}");
    assert!(answer.contains("<HeadersNotSigned>x-amz-acl, x-amz-copy-source</HeadersNotSigned>"), "{answer}");
    let (status, answer) = raw(&addr, "PUT", &put, &[("x-oss-copy-source", "/sigs/secret.txt")], b"");
    assert_eq!(status, 403, "{answer}");
    assert_eq!(c.get_object("sigs", "public.txt").expect("call").status, 404, "nothing was copied");

    let mut headers = now.header_signed("/sigs/public.txt");
    headers.push(("x-amz-acl".into(), "public-read".into()));
    let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, answer) = raw(&addr, "PUT", "/sigs/public.txt", &hs, b"x");
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("<HeadersNotSigned>x-amz-acl</HeadersNotSigned>"), "{answer}");
    assert_eq!(c.get_object("sigs", "public.txt").expect("call").status, 404);
    // Signed properly, both forms work.
    let (status, answer) = raw(&addr, "PUT", "/sigs/public.txt", &hs[..3], b"signed");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(raw(&addr, "PUT", &put, &[], b"via link").0, 200);
    assert_eq!(c.get_object("sigs", "public.txt").expect("call").body, b"via link");

    let get = |at: S3Signer, expires: i64| raw(&addr, "GET", &at.presign("GET", "/sigs/secret.txt", expires), &[], b"");
    let (status, answer) = get(S3Signer { r: &r, at: now.at }, 10 * 365 * 86400);
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("<Code>AuthorizationQueryParametersError</Code>"), "{answer}");
    assert!(answer.contains("X-Amz-Expires must be less than a week (in seconds) that is; 604800"), "{answer}");
    assert_eq!(get(S3Signer { r: &r, at: now.at }, 604_800).0, 200);
    assert_eq!(get(S3Signer { r: &r, at: now.at + chrono::Duration::minutes(10) }, 300).0, 200, "within the skew");
    let (status, answer) = get(S3Signer { r: &r, at: now.at + chrono::Duration::days(365) }, 3600);
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("<Code>AccessDenied</Code>") && answer.contains("Request is not valid yet"), "{answer}");
    r.stop();
}
