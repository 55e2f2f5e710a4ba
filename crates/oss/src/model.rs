//! What OSS keeps in the metadata store: bucket configuration and per-object metadata, as JSON
//! documents inside `oss_buckets.config` and `oss_objects.meta`.

use crate::data::Segment;
use nimbus_api::ApiError;
use serde::{Deserialize, Serialize};

/// Canned ACLs. Buckets are private unless created otherwise; objects inherit (`default`).
pub const BUCKET_ACLS: &[&str] = &["private", "public-read", "public-read-write"];
pub const OBJECT_ACLS: &[&str] = &["default", "private", "public-read", "public-read-write"];

pub fn check_acl(value: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ApiError::new(400, "InvalidArgument", format!("No such ACL {value:?}; use one of {}.", allowed.join(", "))))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketConfig {
    pub acl: String,
    pub storage_class: String,
    /// Default server-side encryption for new objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<SseRule>,
    /// Bucket policy document (JSON, as put).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Configuration documents kept as put (validated XML): `cors`, `lifecycle`, `website`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// `Enabled` / `Suspended`; absent when never configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versioning: Option<String>,
}

/// `AES256` (service-managed key) or `KMS` (a customer master key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SseRule {
    pub algorithm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

/// How an object's data key is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sse {
    pub algorithm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// `KMS`: the KMS data key blob; `AES256`: the data key wrapped by the region root key.
    pub wrapped_key: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub segments: Vec<Segment>,
    /// CRC-64/XZ of the plaintext.
    pub crc64: u64,
    /// `Normal`, `Multipart`, `Appendable`.
    pub object_type: String,
    pub content_type: String,
    pub acl: String,
    pub storage_class: String,
    pub owner: String,
    /// `x-oss-meta-*` without the prefix, names lowercase.
    #[serde(default)]
    pub user_meta: Vec<(String, String)>,
    /// Standard headers kept and returned: cache-control, content-disposition, content-encoding,
    /// content-language, expires.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<Sse>,
}

/// The standard headers an object keeps.
pub const KEPT_HEADERS: &[&str] =
    &["cache-control", "content-disposition", "content-encoding", "content-language", "expires"];

/// What an in-progress multipart upload keeps until completion.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadMeta {
    pub template: ObjectMeta,
}

/// A part's data and checksums.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    pub segment: Segment,
    pub crc64: u64,
    pub md5: String,
}

/// Parses `k1=v1&k2=v2` (x-oss-tagging).
pub fn parse_tagging_header(v: &str) -> Result<Vec<(String, String)>, ApiError> {
    let tags: Vec<(String, String)> = form_urlencoded::parse(v.as_bytes()).into_owned().collect();
    check_tags(&tags)?;
    Ok(tags)
}

/// At most 10 tags per object, keys ≤128 and values ≤256 characters, keys unique.
pub fn check_tags(tags: &[(String, String)]) -> Result<(), ApiError> {
    let bad = |m: &str| ApiError::new(400, "InvalidTag", m.to_string());
    if tags.len() > 10 {
        return Err(bad("At most 10 tags are allowed."));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(bad("Tag keys are 1-128 characters and values at most 256."));
        }
        if tags[..i].iter().any(|(k2, _)| k2 == k) {
            return Err(bad("Tag keys must be unique."));
        }
    }
    Ok(())
}
