//! SSH key pairs (ECS 2014-05-26): CreateKeyPair makes a new key and returns its private half
//! once; ImportKeyPair takes an OpenSSH public key; only public keys are kept.
//!
//! Created keys are Ed25519 in OpenSSH's private key format (Alibaba creates RSA-2048 PEM; OpenSSH
//! clients use either as `ssh -i`). Written here on `ring` rather than with the `ssh-key` crate,
//! whose current release would bring a second RustCrypto line into the build; the format is small
//! and its output is checked against `ssh-keygen` in the tests.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use md5::{Digest, Md5};
use nimbus_api::conventions::Page;
use nimbus_api::{ApiError, CallContext, Params};
use nimbus_core::clock::{iso8601, now_millis};
use nimbus_store::{Resource, StoreError};
use rand::RngCore;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

pub const KIND: &str = "ecs.keypair";

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// The public key blob (`string "ssh-ed25519", string key`).
fn ed25519_blob(public: &[u8]) -> Vec<u8> {
    let mut b = vec![];
    put_string(&mut b, b"ssh-ed25519");
    put_string(&mut b, public);
    b
}

/// A new Ed25519 key: (OpenSSH private key text, `ssh-ed25519 …` public line).
pub fn generate(comment: &str) -> (String, String) {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let kp = Ed25519KeyPair::from_seed_unchecked(&seed).expect("any 32 bytes are an Ed25519 seed");
    let public = kp.public_key().as_ref().to_vec();
    let blob = ed25519_blob(&public);
    let mut check = [0u8; 4];
    rand::rng().fill_bytes(&mut check);
    let mut private = vec![];
    private.extend_from_slice(&check);
    private.extend_from_slice(&check);
    put_string(&mut private, b"ssh-ed25519");
    put_string(&mut private, &public);
    let mut secret = seed.to_vec();
    secret.extend_from_slice(&public);
    put_string(&mut private, &secret);
    put_string(&mut private, comment.as_bytes());
    let mut pad = 1u8;
    while !private.len().is_multiple_of(8) {
        private.push(pad);
        pad += 1;
    }
    let mut body = b"openssh-key-v1\0".to_vec();
    put_string(&mut body, b"none");
    put_string(&mut body, b"none");
    put_string(&mut body, b"");
    body.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut body, &blob);
    put_string(&mut body, &private);
    let b64 = B64.encode(&body);
    let mut pem = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(70) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    (pem, format!("ssh-ed25519 {} {comment}", B64.encode(&blob)))
}

/// Parses an OpenSSH public key line; returns (normalised `type base64`, blob).
pub fn parse_public(line: &str) -> Result<(String, Vec<u8>), ApiError> {
    let bad = || {
        ApiError::new(
            400,
            "InvalidKeyPair.FormatError",
            "PublicKeyBody is not an OpenSSH public key (ssh-rsa, ssh-ed25519 or ecdsa-sha2-*).",
        )
    };
    let mut parts = line.split_whitespace();
    let (kind, data) = (parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
    if !["ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"].contains(&kind)
    {
        return Err(bad());
    }
    let blob = B64.decode(data).map_err(|_| bad())?;
    // The blob starts with its own type name, which must agree.
    let inner = blob.get(4..).and_then(|rest| {
        let n = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
        rest.get(..n)
    });
    if inner != Some(kind.as_bytes()) {
        return Err(bad());
    }
    Ok((format!("{kind} {data}"), blob))
}

/// OpenSSH's legacy MD5 fingerprint (`aa:bb:…`), the form ECS reports.
pub fn fingerprint(blob: &[u8]) -> String {
    Md5::digest(blob).iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

pub fn id_of(account: &str, name: &str) -> String {
    format!("ecs-keypair:{account}:{name}")
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = (2..=128).contains(&name.chars().count())
        && name.chars().next().is_some_and(|c| c.is_alphabetic())
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'))
        && !name.starts_with("http");
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "KeyPairName",
            "2-128 characters: letters, digits, '.', '_', '-', ':', starting with a letter",
        ))
    }
}

async fn store_key(ctx: &CallContext, name: &str, public: &str, finger: &str) -> Result<(), ApiError> {
    let spec = json!({"KeyPairName": name, "PublicKeyBody": public, "KeyPairFingerPrint": finger, "CreationTime": iso8601(now_millis())});
    let r = Resource::new(&id_of(&ctx.caller.account_id, name), &ctx.caller.account_id, KIND, &ctx.region.id, spec);
    match ctx.store.create_resource(&r).await {
        Ok(_) => Ok(()),
        Err(StoreError::AlreadyExists) => {
            Err(ApiError::new(400, "KeyPair.AlreadyExist", format!("The key pair {name:?} already exists.")))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn create(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let name = p.require("KeyPairName")?;
    check_name(name)?;
    let (private, public) = generate(name);
    let (_, blob) = parse_public(&public)?;
    let finger = fingerprint(&blob);
    store_key(ctx, name, public.rsplit_once(' ').map(|(k, _)| k).unwrap_or(&public), &finger).await?;
    Ok(
        json!({"KeyPairName": name, "KeyPairFingerPrint": finger, "PrivateKeyBody": private, "KeyPairId": id_of(&ctx.caller.account_id, name)}),
    )
}

pub async fn import(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let name = p.require("KeyPairName")?;
    check_name(name)?;
    let (public, blob) = parse_public(p.require("PublicKeyBody")?)?;
    let finger = fingerprint(&blob);
    store_key(ctx, name, &public, &finger).await?;
    Ok(json!({"KeyPairName": name, "KeyPairFingerPrint": finger}))
}

pub async fn describe(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let page = Page::from_params(p, 10, 50)?;
    let name = p.get("KeyPairName").filter(|v| !v.is_empty());
    let finger = p.get("KeyPairFingerPrint").filter(|v| !v.is_empty());
    let keys: Vec<Resource> = ctx
        .store
        .all_resources(&ctx.caller.account_id, KIND)
        .await?
        .into_iter()
        .filter(|k| name.is_none_or(|n| k.spec["KeyPairName"] == n))
        .filter(|k| finger.is_none_or(|f| k.spec["KeyPairFingerPrint"] == f))
        .collect();
    let all: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({"KeyPairName": k.spec["KeyPairName"], "KeyPairFingerPrint": k.spec["KeyPairFingerPrint"],
                   "PublicKey": k.spec["PublicKeyBody"], "CreationTime": k.spec["CreationTime"], "ResourceGroupId": "", "Tags": {"Tag": []}})
        })
        .collect();
    Ok(page.answer(&all, "KeyPairs", "KeyPair"))
}

pub async fn delete(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let names: Vec<String> = serde_json::from_str(p.require("KeyPairNames")?)
        .map_err(|_| ApiError::invalid("KeyPairNames", "a JSON array of key pair names"))?;
    for n in &names {
        let id = id_of(&ctx.caller.account_id, n);
        match ctx.store.get_resource(&ctx.caller.account_id, &id).await {
            Ok(r) => ctx.store.delete_resource(&ctx.caller.account_id, &id, r.version).await?,
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_what_ssh_keygen_reads() {
        let (private, public) = generate("test-key");
        let (_, blob) = parse_public(&public).expect("our public line parses");
        assert_eq!(fingerprint(&blob).len(), 47);
        let Ok(out) = std::process::Command::new("ssh-keygen").arg("-V").output() else {
            eprintln!("SKIPPED the ssh-keygen cross-check: ssh-keygen is not installed");
            return;
        };
        let _ = out;
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("id");
        std::fs::write(&path, &private).expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let derived =
            std::process::Command::new("ssh-keygen").arg("-y").arg("-f").arg(&path).output().expect("ssh-keygen");
        assert!(derived.status.success(), "{}", String::from_utf8_lossy(&derived.stderr));
        let derived = String::from_utf8_lossy(&derived.stdout);
        assert_eq!(
            derived.split_whitespace().nth(1),
            public.split_whitespace().nth(1),
            "ssh-keygen derives the same public key"
        );
        let fp =
            std::process::Command::new("ssh-keygen").args(["-l", "-E", "md5", "-f"]).arg(&path).output().expect("fp");
        assert!(String::from_utf8_lossy(&fp.stdout).contains(&format!("MD5:{}", fingerprint(&blob))));
    }

    #[test]
    fn public_keys_are_checked() {
        assert!(
            parse_public("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ5Q8fV2aM2v2Lw9GxR0c2qg4z0o1A5Z2S0P4Xx6xkq1 me").is_ok()
        );
        for bad in [
            "",
            "ssh-dss AAAA",
            "ssh-rsa not-base64!",
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIJ5Q8fV2aM2v2Lw9GxR0c2qg4z0o1A5Z2S0P4Xx6xkq1",
        ] {
            assert!(parse_public(bad).is_err(), "{bad}");
        }
    }
}
