//! Root key rotation while the region runs: every stored secret is re-wrapped under the new
//! generation, and nothing stops working — not during, not after a restart.

mod common;

use common::{ECS, Region, bin, p};
use nimbus_core::secret::RootKey;
use nimbus_store::Store;
use serde_json::Value;
use std::process::Command;

const KMS: &str = "2016-01-20";
const RAM: &str = "2015-05-01";

fn generations(r: &Region) -> (Vec<Option<u32>>, Vec<Option<u32>>) {
    let url = format!("sqlite://{}", r.dir.join("state.db").display());
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt").block_on(async {
        let s = Store::open(&url).await.expect("open");
        let keys = s
            .all_access_keys()
            .await
            .expect("keys")
            .iter()
            .map(|k| RootKey::generation_of(&k.secret_wrapped))
            .collect();
        let material = s
            .list_resources_all_accounts("kms.key", None, 100)
            .await
            .expect("kms")
            .iter()
            .flat_map(|k| k.spec["Versions"].as_array().cloned().unwrap_or_default())
            .map(|v| RootKey::generation_of(v["MaterialWrapped"].as_str().unwrap_or_default()))
            .collect();
        s.close().await;
        (keys, material)
    })
}

#[test]
fn rotating_the_root_key_while_the_region_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("d");
    let r = Region::start(&dir, &[]);
    let root = r.client_http();
    assert_eq!(root.call(RAM, "CreateUser", &[p("UserName", "ops")]).expect("call").status, 200);
    let k = root.call(RAM, "CreateAccessKey", &[p("UserName", "ops")]).expect("call").body;
    let ops = r.client_with(
        k["AccessKey"]["AccessKeyId"].as_str().expect("id"),
        k["AccessKey"]["AccessKeySecret"].as_str().expect("s"),
    );
    assert_eq!(
        root.call(
            RAM,
            "AttachPolicyToUser",
            &[p("UserName", "ops"), p("PolicyType", "System"), p("PolicyName", "AliyunECSReadOnlyAccess")]
        )
        .expect("call")
        .status,
        200
    );
    let key =
        root.call(KMS, "CreateKey", &[]).expect("call").body["KeyMetadata"]["KeyId"].as_str().expect("id").to_string();
    let blob = root
        .call(KMS, "Encrypt", &[p("KeyId", &key), p("Plaintext", "kept across rotations")])
        .expect("call")
        .body["CiphertextBlob"]
        .as_str()
        .expect("b")
        .to_string();
    assert!(generations(&r).0.iter().all(|g| *g == Some(1)));

    let out = Command::new(bin()).args(["admin", "rotate-root-key", "--data-dir"]).arg(&dir).output().expect("rotate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.starts_with("root key generation 2 is current; re-wrapped 2 AccessKey secrets, 1 KMS key versions"),
        "{report}"
    );
    let (keys, material) = generations(&r);
    assert!(keys.iter().chain(&material).all(|g| *g == Some(2)), "{keys:?} {material:?}");

    // The running region: old blobs, re-wrapped material, user keys, new keys.
    let dec = root.call(KMS, "Decrypt", &[p("CiphertextBlob", &blob)]).expect("call");
    assert_eq!(dec.body["Plaintext"], "kept across rotations", "{}", dec.body);
    r.advance_clock(11.0); // past the credential cache, so secrets are unwrapped again
    assert_eq!(ops.call(ECS, "DescribeRegions", &[]).expect("call").status, 200);
    let key2 =
        root.call(KMS, "CreateKey", &[]).expect("call").body["KeyMetadata"]["KeyId"].as_str().expect("id").to_string();
    let blob2 =
        root.call(KMS, "Encrypt", &[p("KeyId", &key2), p("Plaintext", "after")]).expect("call").body["CiphertextBlob"]
            .as_str()
            .expect("b")
            .to_string();
    let (_, material) = generations(&r);
    assert!(material.iter().all(|g| *g == Some(2)), "the region now wraps with the new generation: {material:?}");
    assert!(r.stop().success());

    // After a restart everything still opens (CA and trail key were re-wrapped too).
    let r = Region::start(&dir, &[]);
    let root = r.client_https();
    for (b, text) in [(&blob, "kept across rotations"), (&blob2, "after")] {
        let v: Value = root.call(KMS, "Decrypt", &[p("CiphertextBlob", b)]).expect("call").body;
        assert_eq!(v["Plaintext"], text);
    }
    let verify = Command::new(bin()).args(["trail", "verify", "--data-dir"]).arg(&dir).output().expect("verify");
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}
