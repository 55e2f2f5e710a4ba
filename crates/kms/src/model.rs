//! The KMS rows' schema: master keys (`kms.key`) and aliases (`kms.alias`), as stored. Field names
//! are the stored JSON's (rows written before these types existed load unchanged).

use nimbus_store::{Kind, NoStatus, Record};
use serde::{Deserialize, Serialize};

/// A master key row.
pub struct Key;

impl Kind for Key {
    const KIND: &'static str = "kms.key";
    const ID_PREFIX: &'static str = "key-";
    type Spec = KeySpec;
    type Status = NoStatus;
}

pub type KeyRecord = Record<Key>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "PendingDeletion",
        }
    }
}

/// `AutomaticRotation` and `DeletionProtection`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Toggle {
    Enabled,
    #[default]
    Disabled,
}

impl From<bool> for Toggle {
    fn from(on: bool) -> Self {
        if on { Toggle::Enabled } else { Toggle::Disabled }
    }
}

/// A master key: what DescribeKey shows (dates as the wire writes them), its versions, and the
/// millisecond times rotation and deletion are decided by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeySpec {
    pub key_id: String,
    pub arn: String,
    pub key_state: KeyState,
    pub key_spec: String,
    pub key_usage: String,
    pub origin: String,
    pub protection_level: String,
    #[serde(default)]
    pub description: String,
    pub creation_date: String,
    pub creator: String,
    #[serde(default)]
    pub automatic_rotation: Toggle,
    /// `<seconds>s`, or empty without automatic rotation.
    #[serde(default)]
    pub rotation_interval: String,
    #[serde(default)]
    pub last_rotation_date: String,
    #[serde(default)]
    pub next_rotation_date: String,
    pub primary_key_version: String,
    #[serde(default)]
    pub delete_date: String,
    #[serde(default)]
    pub deletion_protection: Toggle,
    pub versions: Vec<KeyVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_interval_secs: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation_millis: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_date_millis: Option<i64>,
}

impl KeySpec {
    pub fn version(&self, id: &str) -> Option<&KeyVersion> {
        self.versions.iter().find(|v| v.key_version_id == id)
    }

    /// Pending deletion and past its date: the key is gone.
    pub fn is_deleted(&self, now: i64) -> bool {
        self.key_state == KeyState::PendingDeletion && self.delete_date_millis.is_some_and(|d| d <= now)
    }
}

/// One version of a key's material, wrapped by the region root key (purpose
/// `kms:<key id>:<version id>`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyVersion {
    pub key_version_id: String,
    pub creation_date: String,
    pub material_wrapped: String,
}

/// An alias row (id `kms-alias:<account>:<name>`).
pub struct Alias;

impl Kind for Alias {
    const KIND: &'static str = "kms.alias";
    type Spec = AliasSpec;
    type Status = NoStatus;
}

/// Stored, and listed by ListAliases, as is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasSpec {
    pub alias_name: String,
    pub alias_arn: String,
    pub key_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_store::Resource;
    use serde_json::json;

    /// A key as `keystore::new_key` wrote it before typed state, after a rotation policy and a
    /// scheduled deletion (fields appended by index), and tagged.
    #[test]
    fn a_key_row_written_by_the_json_code_loads_and_round_trips() {
        let spec = json!({
            "KeyId": "key-abc", "Arn": "acs:kms:local-1:1000:key/key-abc", "KeyState": "PendingDeletion", "KeySpec": "Aliyun_AES_256",
            "KeyUsage": "ENCRYPT/DECRYPT", "Origin": "Aliyun_KMS", "ProtectionLevel": "SOFTWARE",
            "Description": "d", "CreationDate": "2026-01-01T00:00:00Z", "Creator": "1000",
            "AutomaticRotation": "Enabled", "RotationInterval": "604800s", "LastRotationDate": "2026-01-01T00:00:00Z", "NextRotationDate": "2026-01-08T00:00:00Z",
            "PrimaryKeyVersion": "v1", "DeleteDate": "2026-02-01T00:00:00Z", "DeletionProtection": "Disabled",
            "Versions": [{"KeyVersionId": "v1", "CreationDate": "2026-01-01T00:00:00Z", "MaterialWrapped": "w"}],
            "RotationIntervalSecs": 604800, "NextRotationMillis": 1767830400000i64, "DeleteDateMillis": 1769904000000i64,
        });
        let mut r = Resource::new("key-abc", "1000", "kms.key", "local-1", spec.clone());
        r.tags = json!({"b": "2", "a": "1"});
        let k = KeyRecord::from_resource(r).expect("loads");
        assert_eq!(k.spec.key_state, KeyState::PendingDeletion);
        assert_eq!(k.spec.automatic_rotation, Toggle::Enabled);
        assert_eq!(k.spec.version("v1").map(|v| v.material_wrapped.as_str()), Some("w"));
        assert!(k.spec.is_deleted(1769904000000));
        assert_eq!(k.tags.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["b", "a"], "tags keep their order");
        let back = k.to_resource().expect("stores");
        assert_eq!(back.spec, spec);
        assert_eq!(back.tags, json!({"b": "2", "a": "1"}));
    }

    #[test]
    fn an_alias_row_loads() {
        let spec = json!({"AliasName": "alias/a", "AliasArn": "acs:kms:local-1:1000:alias/a", "KeyId": "key-abc"});
        let r = Resource::new("kms-alias:1000:alias/a", "1000", "kms.alias", "local-1", spec.clone());
        let a = Record::<Alias>::from_resource(r).expect("loads");
        assert_eq!(a.spec.key_id, "key-abc");
        assert_eq!(serde_json::to_value(&a.spec).expect("json"), spec);
    }
}
