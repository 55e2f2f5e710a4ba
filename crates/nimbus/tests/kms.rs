//! KMS through the real binary: the key lifecycle, envelope operations bound to their context,
//! rotation, and states that refuse use.

mod common;

use common::{Region, bin, p};
use nimbus::client::{Reply, RpcClient};
use serde_json::Value;
use std::process::Command;

const KMS: &str = "2016-01-20";

fn kms(c: &RpcClient, action: &str, params: &[(&str, &str)]) -> Reply {
    c.call(KMS, action, &params.iter().map(|(k, v)| p(k, v)).collect::<Vec<_>>()).expect("call")
}

fn ok(r: Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn err(r: Reply, status: u16, code: &str) {
    assert_eq!((r.status, r.code()), (status, Some(code)), "{}", r.body);
}

#[test]
fn key_lifecycle_and_envelope_operations() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    lifecycle(&r, &[], &[]);
}

/// The same KMS tests with the region root key in a SoftHSM2 token (PKCS#11). Debian's softhsm2 is
/// installed by scripts/test-all; without it the test says it is skipped (and fails under CI).
#[test]
fn the_same_kms_tests_with_the_root_key_in_softhsm2() {
    let module = "/usr/lib/softhsm/libsofthsm2.so";
    if !std::path::Path::new(module).exists() {
        assert!(std::env::var_os("CI").is_none(), "CI must install softhsm2");
        eprintln!("SKIPPED: SoftHSM2 is not installed (scripts/install-deps installs it)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(tmp.path().join("tokens")).expect("mkdir");
    let conf = tmp.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\n", tmp.path().join("tokens").display()),
    )
    .expect("conf");
    let conf_s = conf.to_str().expect("utf8").to_string();
    let init = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", "nimbus", "--pin", "246810", "--so-pin", "13579135"])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("softhsm2-util");
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let pin = tmp.path().join("pin");
    std::fs::write(&pin, "246810").expect("pin");
    let dir = tmp.path().join("d");
    let args =
        ["--root-key-provider", "pkcs11", "--pkcs11-module", module, "--pkcs11-pin-file", pin.to_str().expect("utf8")];
    let r = Region::start_with_env(&dir, &args, &[("SOFTHSM2_CONF", conf_s.as_str())]);
    lifecycle(&r, &["--pkcs11-pin-file", pin.to_str().expect("utf8")], &[("SOFTHSM2_CONF", conf_s.as_str())]);
    let key = ok(kms(&r.client_http(), "CreateKey", &[]))["KeyMetadata"]["KeyId"].as_str().expect("id").to_string();
    let blob =
        ok(kms(&r.client_http(), "Encrypt", &[("KeyId", &key), ("Plaintext", "in the token")]))["CiphertextBlob"]
            .as_str()
            .expect("b")
            .to_string();
    assert!(r.stop().success());
    assert!(!dir.join("root.key").exists() && !dir.join("root.key.sealed").exists(), "no root key on disk");
    // The key lives in the token: a restart reads what was written before.
    let r = Region::start_with_env(
        &dir,
        &["--pkcs11-module", module, "--pkcs11-pin-file", pin.to_str().expect("utf8")],
        &[("SOFTHSM2_CONF", conf_s.as_str())],
    );
    assert_eq!(ok(kms(&r.client_http(), "Decrypt", &[("CiphertextBlob", &blob)]))["Plaintext"], "in the token");
}

/// The KMS tests; `admin_args` and `env` are what operator commands need to open the root key.
fn lifecycle(r: &Region, admin_args: &[&str], env: &[(&str, &str)]) {
    let c = r.client_https();
    let meta = ok(kms(&c, "CreateKey", &[("Description", "orders")]))["KeyMetadata"].clone();
    let key = meta["KeyId"].as_str().expect("id").to_string();
    assert!(key.starts_with("key-") && meta["KeyState"] == "Enabled" && meta["KeySpec"] == "Aliyun_AES_256");
    assert!(meta.get("Versions").is_none(), "no key material leaves KMS");
    let described = ok(kms(&c, "DescribeKey", &[("KeyId", &key)]));
    assert_eq!(described["KeyMetadata"]["Description"], "orders");
    let listed = ok(kms(&c, "ListKeys", &[]));
    assert_eq!(listed["TotalCount"], 1);

    // Tags.
    ok(kms(
        &c,
        "TagResource",
        &[("KeyId", &key), ("Tags", r#"[{"TagKey":"team","TagValue":"billing"},{"TagKey":"env","TagValue":"prod"}]"#)],
    ));
    err(
        kms(&c, "TagResource", &[("KeyId", &key), ("Tags", r#"[{"TagKey":"acs:x","TagValue":"y"}]"#)]),
        400,
        "InvalidParameter.Tags",
    );
    ok(kms(&c, "UntagResource", &[("KeyId", &key), ("TagKeys", r#"["env"]"#)]));
    let tags = ok(kms(&c, "ListResourceTags", &[("KeyId", &key)]));
    assert_eq!(tags["Tags"]["Tag"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        (tags["Tags"]["Tag"][0]["TagKey"].as_str(), tags["Tags"]["Tag"][0]["TagValue"].as_str()),
        (Some("team"), Some("billing"))
    );

    // Aliases name keys.
    ok(kms(&c, "CreateAlias", &[("AliasName", "alias/orders"), ("KeyId", &key)]));
    err(kms(&c, "CreateAlias", &[("AliasName", "alias/orders"), ("KeyId", &key)]), 400, "AliasAlreadyExists");
    err(
        kms(&c, "CreateAlias", &[("AliasName", "alias/acs-reserved"), ("KeyId", &key)]),
        400,
        "InvalidAliasName.Malformed",
    );

    // Encrypt binds the EncryptionContext; Decrypt needs no KeyId.
    let ctx = r#"{"order":"42"}"#;
    let enc =
        ok(kms(&c, "Encrypt", &[("KeyId", "alias/orders"), ("Plaintext", "card 4111"), ("EncryptionContext", ctx)]));
    let blob = enc["CiphertextBlob"].as_str().expect("blob").to_string();
    let dec = ok(kms(&c, "Decrypt", &[("CiphertextBlob", &blob), ("EncryptionContext", r#"{ "order": "42" }"#)]));
    assert_eq!((dec["Plaintext"].as_str(), dec["KeyId"].as_str()), (Some("card 4111"), Some(key.as_str())));
    err(
        kms(&c, "Decrypt", &[("CiphertextBlob", &blob), ("EncryptionContext", r#"{"order":"43"}"#)]),
        400,
        "InvalidCiphertext",
    );
    err(kms(&c, "Decrypt", &[("CiphertextBlob", &blob)]), 400, "InvalidCiphertext");

    // Data keys: the blob decrypts to the same plaintext key.
    let dk = ok(kms(&c, "GenerateDataKey", &[("KeyId", &key), ("EncryptionContext", ctx)]));
    let plain = dk["Plaintext"].as_str().expect("plaintext").to_string();
    assert_eq!(base64_len(&plain), 32);
    let back = ok(kms(
        &c,
        "Decrypt",
        &[("CiphertextBlob", dk["CiphertextBlob"].as_str().expect("blob")), ("EncryptionContext", ctx)],
    ));
    assert_eq!(back["Plaintext"].as_str(), Some(plain.as_str()));
    let nop = ok(kms(&c, "GenerateDataKeyWithoutPlaintext", &[("KeyId", &key), ("NumberOfBytes", "16")]));
    assert!(nop.get("Plaintext").is_none());

    // Rotation: new encryptions use the new version; old blobs still decrypt.
    let v1 = enc["KeyVersionId"].as_str().expect("v").to_string();
    let v2 = ok(kms(&c, "CreateKeyVersion", &[("KeyId", &key)]))["KeyVersion"]["KeyVersionId"]
        .as_str()
        .expect("v2")
        .to_string();
    assert_ne!(v1, v2);
    let enc2 = ok(kms(&c, "Encrypt", &[("KeyId", &key), ("Plaintext", "x")]));
    assert_eq!(enc2["KeyVersionId"].as_str(), Some(v2.as_str()));
    assert_eq!(
        ok(kms(&c, "Decrypt", &[("CiphertextBlob", &blob), ("EncryptionContext", ctx)]))["KeyVersionId"].as_str(),
        Some(v1.as_str())
    );
    assert_eq!(ok(kms(&c, "ListKeyVersions", &[("KeyId", &key)]))["TotalCount"], 2);

    // ReEncrypt moves a blob to another key without showing the plaintext.
    let other = ok(kms(&c, "CreateKey", &[]))["KeyMetadata"]["KeyId"].as_str().expect("id").to_string();
    let moved = ok(kms(
        &c,
        "ReEncrypt",
        &[("CiphertextBlob", &blob), ("SourceEncryptionContext", ctx), ("DestinationKeyId", &other)],
    ));
    assert_eq!(moved["KeyId"].as_str(), Some(other.as_str()));
    assert_eq!(
        ok(kms(&c, "Decrypt", &[("CiphertextBlob", moved["CiphertextBlob"].as_str().expect("b"))]))["Plaintext"],
        "card 4111"
    );

    // Disabled and pending-deletion keys refuse use; deletion protection refuses deletion.
    ok(kms(&c, "DisableKey", &[("KeyId", &key)]));
    err(kms(&c, "Encrypt", &[("KeyId", &key), ("Plaintext", "x")]), 409, "Rejected.Disabled");
    err(kms(&c, "Decrypt", &[("CiphertextBlob", &blob), ("EncryptionContext", ctx)]), 409, "Rejected.Disabled");
    ok(kms(&c, "EnableKey", &[("KeyId", &key)]));
    ok(kms(&c, "SetDeletionProtection", &[("KeyId", &key), ("EnableDeletionProtection", "true")]));
    err(
        kms(&c, "ScheduleKeyDeletion", &[("KeyId", &key), ("PendingWindowInDays", "7")]),
        403,
        "Forbidden.ResourceProtected",
    );
    ok(kms(&c, "SetDeletionProtection", &[("KeyId", &key), ("EnableDeletionProtection", "false")]));
    err(
        kms(&c, "ScheduleKeyDeletion", &[("KeyId", &key), ("PendingWindowInDays", "3")]),
        400,
        "InvalidPendingWindowInDays.Malformed",
    );
    ok(kms(&c, "ScheduleKeyDeletion", &[("KeyId", &key), ("PendingWindowInDays", "7")]));
    assert_eq!(ok(kms(&c, "DescribeKey", &[("KeyId", &key)]))["KeyMetadata"]["KeyState"], "PendingDeletion");
    err(kms(&c, "Decrypt", &[("CiphertextBlob", &blob), ("EncryptionContext", ctx)]), 409, "Rejected.PendingDeletion");
    err(kms(&c, "EnableKey", &[("KeyId", &key)]), 409, "Rejected.PendingDeletion");
    ok(kms(&c, "CancelKeyDeletion", &[("KeyId", &key)]));
    ok(kms(&c, "Decrypt", &[("CiphertextBlob", &blob), ("EncryptionContext", ctx)]));

    // Another tenant can use neither the key nor its blobs, nor tell they exist.
    let other_creds: Value = serde_json::from_slice(
        &Command::new(bin())
            .args(["admin", "account", "create", "--name", "t2", "--data-dir"])
            .arg(&r.dir)
            .args(admin_args)
            .envs(env.iter().copied())
            .output()
            .expect("admin")
            .stdout,
    )
    .expect("json");
    let t2 = r.client_with(
        other_creds["AccessKeyId"].as_str().expect("id"),
        other_creds["AccessKeySecret"].as_str().expect("s"),
    );
    err(kms(&t2, "Decrypt", &[("CiphertextBlob", &blob), ("EncryptionContext", ctx)]), 404, "Forbidden.KeyNotFound");
    err(kms(&t2, "DescribeKey", &[("KeyId", &key)]), 404, "Forbidden.KeyNotFound");
    err(kms(&t2, "DescribeKey", &[("KeyId", "key-doesnotexist000000")]), 404, "Forbidden.KeyNotFound");
    err(kms(&t2, "Encrypt", &[("KeyId", "alias/orders"), ("Plaintext", "x")]), 404, "Forbidden.AliasNotFound");
    assert_eq!(ok(kms(&t2, "ListKeys", &[]))["TotalCount"], 0);

    // The plaintext never reaches the trail or the logs.
    assert!(!r.stderr().contains("card 4111"));
    let db = std::fs::read(r.dir.join("state.db")).expect("db");
    let wal = std::fs::read(r.dir.join("state.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!bytes.windows(9).any(|w| w == b"card 4111"), "plaintext in the store");
        assert!(!bytes.windows(plain.len()).any(|w| w == plain.as_bytes()), "data key in the store");
    }
}

fn base64_len(s: &str) -> usize {
    s.trim_end_matches('=').len() * 3 / 4
}
