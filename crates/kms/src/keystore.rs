//! Master keys and their versions; the only place key material is unwrapped.
//!
//! A key is a `kms.key` resource row. Each version's 256-bit material is stored wrapped by the
//! region root key under the purpose `kms:<key id>:<version id>`. States: `Enabled`, `Disabled`,
//! `PendingDeletion` (unusable; gone once its DeleteDate passes).

use crate::blob::{self, Header};
use crate::model::{Key, KeyRecord, KeySpec, KeyState, KeyVersion, Toggle};
use nimbus_api::ApiError;
use nimbus_core::clock::{iso8601, now_millis};
use nimbus_core::secret::KeyProvider;
use nimbus_store::{Kind, Record, Store, StoreError};
use rand::RngCore;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

pub const KIND: &str = Key::KIND;

pub fn material_purpose(key_id: &str, version_id: &str) -> String {
    format!("kms:{key_id}:{version_id}")
}

pub fn key_not_found(id: &str) -> ApiError {
    ApiError::new(404, "Forbidden.KeyNotFound", format!("The specified key {id} does not exist."))
}

/// A fresh version: id, creation date, wrapped material.
pub fn new_version(keys: &dyn KeyProvider, key_id: &str) -> KeyVersion {
    let vid = uuid::Uuid::new_v4().to_string();
    let mut m = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(m.as_mut());
    KeyVersion {
        material_wrapped: keys.root_key().wrap(&material_purpose(key_id, &vid), m.as_ref()),
        key_version_id: vid,
        creation_date: iso8601(now_millis()),
    }
}

fn material(keys: &dyn KeyProvider, key_id: &str, version: &KeyVersion) -> Result<Zeroizing<[u8; 32]>, ApiError> {
    let raw = keys
        .root_key()
        .unwrap(&material_purpose(key_id, &version.key_version_id), &version.material_wrapped)
        .map_err(|_| ApiError::internal())?;
    let arr: [u8; 32] = raw.as_slice().try_into().map_err(|_| ApiError::internal())?;
    Ok(Zeroizing::new(arr))
}

/// Loads a key of `account`; one past its deletion date is gone.
pub async fn load(store: &Store, account: &str, key_id: &str) -> Result<KeyRecord, ApiError> {
    match store.repo::<Key>().get(account, key_id).await {
        Ok(k) if k.spec.is_deleted(now_millis()) => Err(key_not_found(key_id)),
        Ok(k) => Ok(k),
        Err(StoreError::NotFound) => Err(key_not_found(key_id)),
        Err(e) => Err(e.into()),
    }
}

/// The key must be usable for cryptography.
pub fn check_usable(key: &KeyRecord) -> Result<(), ApiError> {
    match key.spec.key_state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(ApiError::new(409, "Rejected.Disabled", "The key is disabled.")),
        KeyState::PendingDeletion => {
            Err(ApiError::new(409, "Rejected.PendingDeletion", "The key is pending deletion."))
        }
    }
}

fn rotation_due(spec: &KeySpec) -> bool {
    spec.automatic_rotation == Toggle::Enabled && spec.next_rotation_millis.is_some_and(|t| t <= now_millis())
}

/// Rotates `key` if automatic rotation is due (checked at use, so no timer is needed); returns the
/// key as stored afterwards.
pub async fn rotate_if_due(store: &Store, keys: &dyn KeyProvider, key: KeyRecord) -> Result<KeyRecord, ApiError> {
    if !rotation_due(&key.spec) {
        return Ok(key);
    }
    // Re-checked on the row as read: when someone else rotated it at the same moment, use theirs.
    let (k, ()) = store
        .repo::<Key>()
        .update_with(&key.account_id, &key.id, |k| {
            if rotation_due(&k.spec) {
                add_version(keys, k);
            }
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(k)
}

/// Appends a new primary version (the caller stores the key).
pub fn add_version(keys: &dyn KeyProvider, key: &mut KeyRecord) {
    let v = new_version(keys, &key.id);
    let now = now_millis();
    let s = &mut key.spec;
    s.primary_key_version = v.key_version_id.clone();
    s.versions.push(v);
    s.last_rotation_date = iso8601(now);
    if let Some(secs) = s.rotation_interval_secs {
        s.next_rotation_millis = Some(now + secs * 1000);
        s.next_rotation_date = iso8601(now + secs * 1000);
    }
}

/// Encrypts under the key's primary version.
pub fn encrypt(
    keys: &dyn KeyProvider,
    key: &KeyRecord,
    context: &Map<String, Value>,
    plaintext: &[u8],
) -> Result<(String, String), ApiError> {
    let primary = key.spec.primary_key_version.clone();
    let version = key.spec.version(&primary).ok_or_else(ApiError::internal)?;
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
) -> Result<(KeyRecord, String, Zeroizing<Vec<u8>>), ApiError> {
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
    let version = key.spec.version(&h.version_id).ok_or_else(invalid)?;
    let m = material(keys, &key.id, version)?;
    let pt = blob::open(&m, &h, &blob::canonical_context(context), &body).ok_or_else(invalid)?;
    Ok((key, h.version_id, Zeroizing::new(pt)))
}

/// A new `Aliyun_AES_256` master key of `account` in `region`, with its first version.
pub fn new_key(keys: &dyn KeyProvider, account: &str, region: &str, description: &str) -> KeyRecord {
    let id = Key::new_id();
    let now = iso8601(now_millis());
    let v = new_version(keys, &id);
    let spec = KeySpec {
        key_id: id.clone(),
        arn: format!("acs:kms:{region}:{account}:key/{id}"),
        key_state: KeyState::Enabled,
        key_spec: "Aliyun_AES_256".into(),
        key_usage: "ENCRYPT/DECRYPT".into(),
        origin: "Aliyun_KMS".into(),
        protection_level: "SOFTWARE".into(),
        description: description.into(),
        creation_date: now.clone(),
        creator: account.into(),
        automatic_rotation: Toggle::Disabled,
        rotation_interval: String::new(),
        last_rotation_date: now,
        next_rotation_date: String::new(),
        primary_key_version: v.key_version_id.clone(),
        delete_date: String::new(),
        deletion_protection: Toggle::Disabled,
        versions: vec![v],
        rotation_interval_secs: None,
        next_rotation_millis: None,
        delete_date_millis: None,
    };
    Record::new(id, account, region, spec)
}
