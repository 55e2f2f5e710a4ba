//! Black-box tests of `nimbus up`: the real binary, real sockets, signed requests.

mod common;

use common::{ECS, Region, bin, now_iso, p};
use nimbus_gateway::signature::{v1, v3};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

fn raw_agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

#[test]
fn signed_calls_succeed_over_https_and_http() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    assert!(r.stdout.iter().any(|l| l.contains("AccessKeySecret")), "first start shows the secret once");
    for client in [r.client_https(), r.client_http()] {
        let reply = client.call(ECS, "DescribeRegions", &[]).expect("call");
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(reply.body["Regions"]["Region"][0]["RegionId"], "local-1");
        assert!(reply.body["RequestId"].as_str().is_some_and(|s| s.len() == 36));
        let zones = client.call(ECS, "DescribeZones", &[p("RegionId", "local-1")]).expect("call");
        let ids: Vec<&str> = zones.body["Zones"]["Zone"]
            .as_array()
            .expect("zones")
            .iter()
            .filter_map(|z| z["ZoneId"].as_str())
            .collect();
        assert_eq!(ids, ["local-1a", "local-1b", "local-1c"]);
    }
    // GET works like POST; XML on request.
    let c = r.client_http();
    let q = c.signed_query("GET", ECS, "DescribeRegions", &[p("Format", "XML")], "nonce-xml", &now_iso());
    let resp = raw_agent().get(format!("{}/?{q}", r.http)).call().expect("get");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-acs-request-id").is_some());
    let body = resp.into_body().read_to_string().expect("body");
    assert!(
        body.starts_with("<?xml")
            && body.contains("<DescribeRegionsResponse><RequestId>")
            && body.contains("<RegionId>local-1</RegionId>"),
        "{body}"
    );
    // An https client that does not trust the region's CA is refused.
    let untrusting = nimbus::client::RpcClient::new(&r.https, "x", "y", None).expect("client");
    assert!(untrusting.call(ECS, "DescribeRegions", &[]).is_err(), "TLS must verify against the CA");
}

#[test]
fn bad_input_gets_a_clear_alibaba_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let creds = r.creds();
    let ok = r.client_http();
    let expect = |reply: nimbus::client::Reply, status: u16, code: &str| {
        assert_eq!((reply.status, reply.code()), (status, Some(code)), "{:?}", reply.body);
        assert!(
            reply.body["RequestId"].is_string()
                && reply.body["HostId"].is_string()
                && reply.body["Message"].is_string()
        );
        reply
    };

    // Wrong secret: the message ends with our string to sign, which the SDK compares with its own.
    let wrong = r.client_with(&creds.access_key_id, "not-the-secret");
    let ts = now_iso();
    let q = wrong.signed_query("POST", ECS, "DescribeRegions", &[], "n-wrong", &ts);
    let reply = expect(wrong.send("POST", &q).expect("send"), 400, "SignatureDoesNotMatch");
    let msg = reply.body["Message"].as_str().expect("message");
    let ours = v1::string_to_sign("POST", url_pairs(&q).iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert!(msg.ends_with(&format!("server string to sign is:{ours}")), "{msg}");
    assert_eq!(msg.split(':').nth(1), Some(ours.as_str()), "the v1 SDK reads index 1 after splitting on ':'");

    expect(
        r.client_with("LTAInosuchkey0000000000", "x").call(ECS, "DescribeRegions", &[]).expect("call"),
        404,
        "InvalidAccessKeyId.NotFound",
    );

    let stale = (chrono::Utc::now() - chrono::Duration::minutes(20)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    expect(
        ok.send("POST", &ok.signed_query("POST", ECS, "DescribeRegions", &[], "n-stale", &stale)).expect("send"),
        400,
        "InvalidTimeStamp.Expired",
    );
    expect(
        ok.send("POST", &ok.signed_query("POST", ECS, "DescribeRegions", &[], "n-fmt", "yesterday")).expect("send"),
        400,
        "InvalidTimeStamp.Format",
    );

    let q = ok.signed_query("POST", ECS, "DescribeRegions", &[], "n-replay", &now_iso());
    assert_eq!(ok.send("POST", &q).expect("send").status, 200);
    expect(ok.send("POST", &q).expect("send"), 400, "SignatureNonceUsed");

    expect(ok.call(ECS, "DescribeNothing", &[]).expect("call"), 404, "InvalidAction.NotFound");
    expect(ok.call("1999-01-01", "DescribeRegions", &[]).expect("call"), 400, "InvalidVersion");
    expect(ok.call(ECS, "DescribeZones", &[]).expect("call"), 400, "MissingRegionId");
    expect(
        ok.call(ECS, "DescribeZones", &[p("RegionId", "cn-hangzhou")]).expect("call"),
        404,
        "InvalidRegionId.NotFound",
    );

    let unsigned = raw_agent().get(format!("{}/?Action=DescribeRegions&Version={ECS}", r.http)).call().expect("get");
    assert_eq!(unsigned.status(), 400);
    assert!(unsigned.into_body().read_to_string().expect("body").contains("\"IncompleteSignature\""));
    let no_ts = "Action=DescribeRegions&Version=2014-05-26&AccessKeyId=x&SignatureMethod=HMAC-SHA1&SignatureNonce=1&Signature=abc";
    expect(ok.send("POST", no_ts).expect("send"), 400, "MissingTimestamp");
    let put = raw_agent().put(format!("{}/?{no_ts}", r.http)).send_empty().expect("put");
    assert_eq!(put.status(), 400);

    // Oversized body: refused before it is read in full.
    let big = "A=".to_string() + &"x".repeat(2 << 20);
    let resp = raw_agent()
        .post(format!("{}/?{}", r.http, ok.signed_query("POST", ECS, "DescribeRegions", &[], "n-big", &now_iso())))
        .header("content-type", "application/x-www-form-urlencoded")
        .send(big.as_bytes())
        .expect("post");
    assert_eq!(resp.status(), 413);
    assert!(resp.into_body().read_to_string().expect("body").contains("EntityTooLarge"));

    // V3 with a wrong secret: same code, string to sign in the message.
    let (headers, query) = v3_request(&r, &creds.access_key_id, "wrong", "DescribeRegions");
    let mut req = raw_agent().post(format!("{}/?{query}", r.http));
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    let resp = req.send_empty().expect("v3");
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value =
        serde_json::from_str(&resp.into_body().read_to_string().expect("body")).expect("json");
    assert_eq!(body["Code"], "SignatureDoesNotMatch");
    assert!(body["Message"].as_str().expect("msg").contains("server string to sign is:ACS3-HMAC-SHA256\n"));

    // Garbage bytes on the socket: the connection is answered or closed, the region lives on.
    let addr = r.http.trim_start_matches("http://").to_string();
    for junk in [
        &b"\x00\x01\x02garbage\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        &[0xffu8; 4096][..],
    ] {
        let mut s = TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        s.write_all(junk).expect("write");
        let mut buf = vec![];
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        assert!(buf.is_empty() || text.starts_with("HTTP/1.1 4"), "{text}");
    }
    assert_eq!(ok.call(ECS, "DescribeRegions", &[]).expect("still serving").status, 200);
}

#[test]
fn v3_signed_calls_succeed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let c = r.creds();
    let (headers, query) = v3_request(&r, &c.access_key_id, &c.access_key_secret, "DescribeZones");
    let mut req = raw_agent().post(format!("{}/?{query}", r.http));
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    let resp = req.send_empty().expect("v3");
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value =
        serde_json::from_str(&resp.into_body().read_to_string().expect("body")).expect("json");
    assert_eq!(body["Zones"]["Zone"].as_array().map(Vec::len), Some(3));
}

#[test]
fn throttling_per_access_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &["--throttle-rps", "1", "--throttle-burst", "2"]);
    let c = r.client_http();
    let statuses: Vec<u16> = (0..4).map(|_| c.call(ECS, "DescribeRegions", &[]).expect("call").status).collect();
    assert_eq!(&statuses[..2], &[200, 200]);
    let reply = c.call(ECS, "DescribeRegions", &[]).expect("call");
    assert_eq!((reply.status, reply.code()), (400, Some("Throttling.User")));
}

#[test]
fn state_survives_graceful_restart_and_kill_9() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("d");
    let r = Region::start(&dir, &[]);
    let creds = r.creds();
    let ca = r.ca();
    assert_eq!(r.client_http().call(ECS, "DescribeRegions", &[]).expect("call").status, 200);
    assert!(r.stop().success(), "SIGTERM is a clean exit");

    let r = Region::start(&dir, &[]);
    assert!(!r.stdout.iter().any(|l| l.contains(&creds.access_key_secret)), "the secret is shown only at first start");
    assert!(r.stdout.iter().any(|l| l.contains(&creds.access_key_id)));
    assert_eq!(r.creds().access_key_id, creds.access_key_id);
    assert_eq!(r.ca(), ca, "the CA is kept");
    assert_eq!(r.client_https().call(ECS, "DescribeRegions", &[]).expect("call").status, 200);
    r.kill9();

    let r = Region::start(&dir, &[]);
    assert_eq!(r.client_https().call(ECS, "DescribeRegions", &[]).expect("call").status, 200);
    // Secrets: never in the logs, never in plaintext in the data directory (but for the one file
    // whose purpose is to hand the secret to its owner).
    let secret = creds.access_key_secret.as_bytes();
    assert!(!r.stderr().contains(&creds.access_key_secret), "secret in the logs");
    for entry in std::fs::read_dir(&dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n == "root-credentials") || path.is_dir() {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        assert!(!bytes.windows(secret.len()).any(|w| w == secret), "plaintext secret in {}", path.display());
    }
}

#[test]
fn refuses_plain_http_off_loopback_and_explains_flags() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = Command::new(bin())
        .args(["up", "--data-dir"])
        .arg(tmp.path())
        .args(["--api-http-addr", "0.0.0.0:0"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
    let help = Command::new(bin()).args(["up", "--help"]).output().expect("help");
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--data-dir",
        "--api-addr",
        "--api-http-addr",
        "--oss-addr",
        "--oss-http-addr",
        "--store-url",
        "NIMBUS_DATA_DIR",
        "--config",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn cli_configures_a_profile_and_calls() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let cfg = tmp.path().join("cli.toml");
    let run = |args: &[&str]| Command::new(bin()).args(args).env("NIMBUS_CLI_CONFIG", &cfg).output().expect("run");
    let out = run(&["configure", "--from-data-dir", r.dir.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["ecs", "DescribeRegions", "--output", "table"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("RegionId") && table.contains("local-1   "), "{table}");
    let out = run(&["ecs", "DescribeZones", "--RegionId", "nowhere-9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Error: InvalidRegionId.NotFound"));
    let out = run(&["nosuchproduct", "DoIt"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("unknown product"));
}

/// A V3 (ACS3-HMAC-SHA256) request as alibabacloud-tea-openapi builds it: (headers, query).
fn v3_request(r: &Region, ak: &str, secret: &str, action: &str) -> (Vec<(String, String)>, String) {
    let host = r.http.trim_start_matches("http://").to_string();
    let query = [("RegionId", "local-1")];
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), host),
        ("x-acs-action".into(), action.into()),
        ("x-acs-version".into(), ECS.into()),
        ("x-acs-date".into(), now_iso()),
        ("x-acs-signature-nonce".into(), uuid::Uuid::new_v4().simple().to_string()),
        ("x-acs-content-sha256".into(), v3::payload_hash(b"")),
    ];
    let signed: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
    let cq = v3::canonical_query(query);
    let cr = v3::canonical_request(
        "POST",
        "/",
        &cq,
        &signed,
        |n| headers.iter().filter(|(k, _)| k == n).map(|(_, v)| v.as_str()).collect(),
        &v3::payload_hash(b""),
    );
    let sig = v3::sign(secret, &v3::string_to_sign(v3::ALGORITHM, &cr));
    headers.push((
        "authorization".into(),
        format!("ACS3-HMAC-SHA256 Credential={ak},SignedHeaders={},Signature={sig}", signed.join(";")),
    ));
    headers.retain(|(k, _)| k != "host");
    (headers, cq)
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    let dec = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8().expect("utf8").into_owned();
    q.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (dec(k), dec(v))).collect()
}

/// `--accel auto` boots a probe VM and logs the accelerator it chose, with the reason when it is
/// not KVM (or why virtual machines are unavailable at all).
#[test]
fn the_accelerator_is_chosen_by_a_probe_and_logged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start_with_env(&tmp.path().join("d"), &[], &[("NIMBUS_ACCEL", "auto")]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let line = loop {
        let log = r.stderr();
        if let Some(l) = log
            .lines()
            .find(|l| l.contains("VM accelerator chosen by probe") || l.contains("virtual machines unavailable"))
        {
            break l.to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no accelerator line in the log:\n{log}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    if std::env::var_os("CI").is_some() {
        assert!(line.contains("chosen by probe"), "CI installs QEMU, a kernel and busybox: {line}");
    }
    if line.contains("chosen by probe") {
        assert!(line.contains("accelerator=\"tcg\"") || line.contains("accelerator=\"kvm\""), "{line}");
    }
    if line.contains("accelerator=\"tcg\"") {
        assert!(line.contains("kvm_unusable="), "TCG is chosen only with a reason: {line}");
    }
    r.stop();
}
