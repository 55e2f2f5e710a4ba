//! A region whose root key is sealed with a passphrase: it works with the passphrase, stays sealed
//! without it or with a wrong one, and its data directory holds no usable key material.

mod common;

use common::{ECS, Region, bin};
use std::process::Command;

const PASS: &str = "a long and winding passphrase";

fn up(dir: &std::path::Path, extra: &[&str], pass: Option<&str>) -> std::process::Output {
    let mut c = Command::new(bin());
    c.args(["up", "--data-dir"])
        .arg(dir)
        .args(["--api-addr", "127.0.0.1:0", "--api-http-addr", "127.0.0.1:0"])
        .args(["--oss-addr", "127.0.0.1:0", "--oss-http-addr", "127.0.0.1:0", "--accel", "tcg"])
        .args(extra);
    c.env_remove("NIMBUS_ROOT_PASSPHRASE");
    if let Some(p) = pass {
        c.env("NIMBUS_ROOT_PASSPHRASE", p);
    }
    c.stdin(std::process::Stdio::null()).output().expect("run")
}

#[test]
fn a_passphrase_sealed_region() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("d");
    let pass_file = tmp.path().join("pass");
    std::fs::write(&pass_file, PASS).expect("write");
    let r = Region::start(
        &dir,
        &["--root-key-provider", "passphrase", "--passphrase-file", pass_file.to_str().expect("utf8")],
    );
    let key = r.client_http().call("2016-01-20", "CreateKey", &[]).expect("call");
    assert_eq!(key.status, 200, "{}", key.body);
    let blob = r
        .client_http()
        .call(
            "2016-01-20",
            "Encrypt",
            &[
                common::p("KeyId", key.body["KeyMetadata"]["KeyId"].as_str().expect("id")),
                common::p("Plaintext", "sealed"),
            ],
        )
        .expect("call");
    assert_eq!(r.client_https().call(ECS, "DescribeRegions", &[]).expect("call").status, 200);
    assert!(r.stop().success());

    // No root key file; the sealed one does not contain the passphrase.
    assert!(!dir.join("root.key").exists());
    let sealed = std::fs::read_to_string(dir.join("root.key.sealed")).expect("sealed");
    assert!(sealed.contains("argon2id") && !sealed.contains(PASS));

    // Without the passphrase, or with a wrong one, or as a key-file region, it stays sealed.
    let out = up(&dir, &[], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stays sealed"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = up(&dir, &[], Some("not the passphrase at all"));
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));
    let out = up(&dir, &["--root-key-provider", "file"], None);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("sealed with a passphrase"));
    assert!(!dir.join("root.key").exists(), "a refused start creates no key");

    // With it, everything written before is readable again.
    let r = Region::start(&dir, &["--passphrase-file", pass_file.to_str().expect("utf8")]);
    let dec = r
        .client_http()
        .call("2016-01-20", "Decrypt", &[common::p("CiphertextBlob", blob.body["CiphertextBlob"].as_str().expect("b"))])
        .expect("call");
    assert_eq!(dec.body["Plaintext"], "sealed");
}
