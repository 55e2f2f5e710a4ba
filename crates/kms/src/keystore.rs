//! Master keys and their versions; the only place key material is unwrapped.
//!
//! A key is a `kms.key` resource row. Each version's 256-bit material is stored wrapped by the
//! region root key under the purpose `kms:<key id>:<version id>`. States: `Enabled`, `Disabled`,
//! `PendingDeletion` (unusable; gone once its DeleteDate passes).

use crate::blob::{self, Header};
use nimbus_api::ApiError;
use nimbus_core::clock::{iso8601, now_millis};
use nimbus_core::secret::KeyProvider;
use nimbus_store::{Resource, Store, StoreError};
use rand::RngCore;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

pub const KIND: &str = "kms.key";

pub fn material_purpose(key_id: &str, version_id: &str) -> String {
    format!("kms:{key_id}:{version_id}")
}

pub fn key_not_found(id: &str) -> ApiError {
    ApiError::new(404, "Forbidden.KeyNotFound", format!("The specified key {id} does not exist."))
}

/// A fresh version: id, creation date, wrapped material.
pub fn new_version(keys: &dyn KeyProvider, key_id: &str) -> Value {
    let vid = uuid::Uuid::new_v4().to_string();
    let mut m = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(m.as_mut());
    json!({"KeyVersionId": vid, "CreationDate": iso8601(now_millis()), "MaterialWrapped": keys.root_key().wrap(&material_purpose(key_id, &vid), m.as_ref())})
}

fn material(keys: &dyn KeyProvider, key_id: &str, version: &Value) -> Result<Zeroizing<[u8; 32]>, ApiError> {
    let vid = version["KeyVersionId"].as_str().unwrap_or_default();
    let raw = keys
        .root_key()
        .unwrap(&material_purpose(key_id, vid), version["MaterialWrapped"].as_str().unwrap_or_default())
        .map_err(|_| ApiError::internal())?;
    let arr: [u8; 32] = raw.as_slice().try_into().map_err(|_| ApiError::internal())?;
    Ok(Zeroizing::new(arr))
}

/// Loads a key of `account`; one past its deletion date is gone.
pub async fn load(store: &Store, account: &str, key_id: &str) -> Result<Resource, ApiError> {
    match store.get_resource(account, key_id).await {
        Ok(r) if r.kind == KIND => {
            let gone = r.spec["KeyState"] == "PendingDeletion"
                && r.spec["DeleteDateMillis"].as_i64().is_some_and(|d| d <= now_millis());
            if gone { Err(key_not_found(key_id)) } else { Ok(r) }
        }
        Ok(_) | Err(StoreError::NotFound) => Err(key_not_found(key_id)),
        Err(e) => Err(e.into()),
    }
}

/// The key must be usable for cryptography.
pub fn check_usable(key: &Resource) -> Result<(), ApiError> {
    match key.spec["KeyState"].as_str() {
        Some("Enabled") => Ok(()),
        Some("Disabled") => Err(ApiError::new(409, "Rejected.Disabled", "The key is disabled.")),
        Some("PendingDeletion") => Err(ApiError::new(409, "Rejected.PendingDeletion", "The key is pending deletion.")),
        _ => Err(ApiError::new(409, "Rejected.StateModifiedFailed", "The key is not in a usable state.")),
    }
}

/// Rotates `key` if automatic rotation is due (checked at use, so no timer is needed); returns the
/// key as stored afterwards.
pub async fn rotate_if_due(store: &Store, keys: &dyn KeyProvider, mut key: Resource) -> Result<Resource, ApiError> {
    let due = key.spec["AutomaticRotation"] == "Enabled"
        && key.spec["NextRotationMillis"].as_i64().is_some_and(|t| t <= now_millis());
    if !due {
        return Ok(key);
    }
    add_version(keys, &mut key);
    match store.update_resource(&key).await {
        Ok(k) => Ok(k),
        // Someone else rotated it at the same moment: use theirs.
        Err(StoreError::Conflict) => Ok(store.get_resource(&key.account_id, &key.id).await?),
        Err(e) => Err(e.into()),
    }
}

/// Appends a new primary version (the caller stores the key).
pub fn add_version(keys: &dyn KeyProvider, key: &mut Resource) {
    let v = new_version(keys, &key.id);
    let vid = v["KeyVersionId"].clone();
    let now = now_millis();
    if let Some(vs) = key.spec["Versions"].as_array_mut() {
        vs.push(v);
    }
    key.spec["PrimaryKeyVersion"] = vid;
    key.spec["LastRotationDate"] = Value::from(iso8601(now));
    if let Some(secs) = key.spec["RotationIntervalSecs"].as_i64() {
        key.spec["NextRotationMillis"] = Value::from(now + secs * 1000);
        key.spec["NextRotationDate"] = Value::from(iso8601(now + secs * 1000));
    }
}

/// Encrypts under the key's primary version.
pub fn encrypt(
    keys: &dyn KeyProvider,
    key: &Resource,
    context: &Map<String, Value>,
    plaintext: &[u8],
) -> Result<(String, String), ApiError> {
    let primary = key.spec["PrimaryKeyVersion"].as_str().unwrap_or_default().to_string();
    let version = key.spec["Versions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["KeyVersionId"] == primary.as_str())
        .ok_or_else(ApiError::internal)?;
    let m = material(keys, &key.id, version)?;
    let h = Header { key_id: key.id.clone(), version_id: primary.clone() };
    Ok((blob::seal(&m, &h, &blob::canonical_context(context), plaintext), primary))
}

/// Decrypts a blob of a key in `account`: (key, version id, plaintext).
pub async fn decrypt(
    store: &Store,
    keys: &dyn KeyProvider,
    account: &str,
    blob_b64: &str,
    context: &Map<String, Value>,
) -> Result<(Resource, String, Zeroizing<Vec<u8>>), ApiError> {
    let invalid = || {
        ApiError::new(
            400,
            "InvalidCiphertext",
            "The CiphertextBlob is not valid, or the EncryptionContext does not match the one it was made with.",
        )
    };
    let (h, body) = blob::header(blob_b64).ok_or_else(invalid)?;
    let key = load(store, account, &h.key_id).await?;
    check_usable(&key)?;
    let version = key.spec["Versions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["KeyVersionId"] == h.version_id.as_str())
        .ok_or_else(invalid)?;
    let m = material(keys, &key.id, version)?;
    let pt = blob::open(&m, &h, &blob::canonical_context(context), &body).ok_or_else(invalid)?;
    Ok((key, h.version_id, Zeroizing::new(pt)))
}

/// A new `Aliyun_AES_256` master key of `account` in `region`, with its first version.
pub fn new_key(keys: &dyn KeyProvider, account: &str, region: &str, description: &str) -> Resource {
    let id = nimbus_core::ids::resource_id("key-");
    let now = iso8601(now_millis());
    let v = new_version(keys, &id);
    Resource::new(
        &id,
        account,
        KIND,
        region,
        json!({
            "KeyId": id, "Arn": format!("acs:kms:{region}:{account}:key/{id}"), "KeyState": "Enabled", "KeySpec": "Aliyun_AES_256",
            "KeyUsage": "ENCRYPT/DECRYPT", "Origin": "Aliyun_KMS", "ProtectionLevel": "SOFTWARE",
            "Description": description, "CreationDate": now, "Creator": account,
            "AutomaticRotation": "Disabled", "RotationInterval": "", "LastRotationDate": now, "NextRotationDate": "",
            "PrimaryKeyVersion": v["KeyVersionId"], "DeleteDate": "", "DeletionProtection": "Disabled", "Versions": [v],
        }),
    )
}
