//! ListObjects (v1) and ListObjectsV2 over the metadata index's seek-based listing.

use crate::model::ObjectMeta;
use crate::object::{bk, quoted, url_encode};
use crate::service::{Oss, err, root_attrs, store_err};
use crate::xml::{HEADER, el, iso};
use base64::Engine as _;
use nimbus_api::{ApiError, ObjectRequest, ObjectResponse};

const TOKEN: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl Oss {
    pub(crate) async fn list_objects(&self, req: &ObjectRequest, v2: bool) -> Result<ObjectResponse, ApiError> {
        let (bucket, _) = bk(req);
        let b = self.bucket(bucket).await?;
        let prefix = req.query("prefix").unwrap_or("");
        let delimiter = req.query("delimiter").unwrap_or("");
        let max: usize = match req.query("max-keys") {
            Some(m) => m
                .parse::<usize>()
                .ok()
                .filter(|m| *m <= 1000)
                .ok_or_else(|| err(400, "InvalidArgument", "max-keys must be an integer between 0 and 1000."))?,
            None => {
                if v2 {
                    1000
                } else {
                    100
                }
            }
        };
        let url = match req.query("encoding-type") {
            None | Some("") => false,
            Some("url") => true,
            Some(other) => {
                return Err(err(400, "InvalidArgument", format!("encoding-type {other:?} is not supported; use url.")));
            }
        };
        let enc = |s: &str| if url { url_encode(s) } else { s.to_string() };
        let token = req.query("continuation-token").filter(|t| !t.is_empty());
        let marker = if v2 {
            match token {
                Some(t) => TOKEN
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| err(400, "InvalidArgument", "The continuation token is not valid."))?,
                None => req.query("start-after").unwrap_or("").to_string(),
            }
        } else {
            req.query("marker").unwrap_or("").to_string()
        };
        let listing = if max == 0 {
            Default::default()
        } else {
            self.store.list_objects(bucket, prefix, &marker, delimiter, max).await.map_err(store_err)?
        };
        let truncated = listing.next_marker.is_some();
        let mut body =
            format!("{HEADER}<ListBucketResult{}>{}{}", root_attrs(req), el("Name", bucket), el("Prefix", enc(prefix)));
        if !v2 {
            body += &el("Marker", enc(&marker));
        }
        body += &el("MaxKeys", max.to_string());
        body += &el("Delimiter", enc(delimiter));
        if url {
            body += &el("EncodingType", "url");
        }
        body += &format!("<IsTruncated>{truncated}</IsTruncated>");
        if v2 {
            if let Some(sa) = req.query("start-after") {
                body += &el("StartAfter", enc(sa));
            }
            if let Some(t) = token {
                body += &el("ContinuationToken", t);
            }
            if let Some(next) = &listing.next_marker {
                body += &el("NextContinuationToken", TOKEN.encode(next));
            }
            body += &el("KeyCount", (listing.objects.len() + listing.common_prefixes.len()).to_string());
        } else if let Some(next) = &listing.next_marker {
            body += &el("NextMarker", enc(next));
        }
        let owner = !v2 || req.query("fetch-owner") == Some("true");
        for o in &listing.objects {
            let meta: ObjectMeta = serde_json::from_value(o.meta.clone()).unwrap_or_default();
            body += &format!(
                "<Contents>{}{}{}{}{}{}{}</Contents>",
                el("Key", enc(&o.key)),
                el("LastModified", iso(o.last_modified)),
                el("ETag", quoted(&o.etag)),
                el("Type", if meta.object_type.is_empty() { "Normal" } else { &meta.object_type }),
                el("Size", o.size.to_string()),
                el("StorageClass", if meta.storage_class.is_empty() { "Standard" } else { &meta.storage_class }),
                if owner {
                    format!("<Owner>{}{}</Owner>", el("ID", &b.account_id), el("DisplayName", &b.account_id))
                } else {
                    String::new()
                },
            );
        }
        for p in &listing.common_prefixes {
            body += &format!("<CommonPrefixes>{}</CommonPrefixes>", el("Prefix", enc(p)));
        }
        body += "</ListBucketResult>";
        Ok(ObjectResponse::xml(body))
    }
}

impl Oss {
    /// ListObjectVersions: every version and delete marker, keys in order, newest first.
    pub(crate) async fn list_versions(&self, req: &ObjectRequest) -> Result<ObjectResponse, ApiError> {
        let (bucket, _) = bk(req);
        let b = self.bucket(bucket).await?;
        let prefix = req.query("prefix").unwrap_or("");
        let delimiter = req.query("delimiter").unwrap_or("");
        let key_marker = req.query("key-marker").unwrap_or("");
        let vid_marker = req.query("version-id-marker").unwrap_or("");
        let max: usize = req.query("max-keys").and_then(|m| m.parse().ok()).unwrap_or(1000).clamp(1, 1000);
        let url = req.query("encoding-type") == Some("url");
        let enc = |s: &str| if url { url_encode(s) } else { s.to_string() };
        let l = self
            .store
            .list_object_versions(bucket, prefix, key_marker, vid_marker, delimiter, max)
            .await
            .map_err(store_err)?;
        let truncated = l.next.is_some();
        let mut body = format!(
            "{HEADER}<ListVersionsResult{}>{}{}{}{}{}{}",
            root_attrs(req),
            el("Name", bucket),
            el("Prefix", enc(prefix)),
            el("KeyMarker", enc(key_marker)),
            el("VersionIdMarker", vid_marker),
            el("MaxKeys", max.to_string()),
            el("Delimiter", enc(delimiter)),
        );
        if url {
            body += &el("EncodingType", "url");
        }
        body += &format!("<IsTruncated>{truncated}</IsTruncated>");
        if let Some((k, v)) = &l.next {
            body += &el("NextKeyMarker", enc(k));
            body += &el("NextVersionIdMarker", v.as_deref().unwrap_or(""));
        }
        let owner = format!("<Owner>{}{}</Owner>", el("ID", &b.account_id), el("DisplayName", &b.account_id));
        for e in &l.entries {
            let common = format!(
                "{}{}<IsLatest>{}</IsLatest>{}",
                el("Key", enc(&e.row.key)),
                el("VersionId", &e.row.version_id),
                e.is_latest,
                el("LastModified", iso(e.row.last_modified))
            );
            if e.delete_marker {
                body += &format!("<DeleteMarker>{common}{owner}</DeleteMarker>");
            } else {
                let meta: ObjectMeta = serde_json::from_value(e.row.meta.clone()).unwrap_or_default();
                body += &format!(
                    "<Version>{common}{}{}{}{}{owner}</Version>",
                    el("ETag", quoted(&e.row.etag)),
                    el("Type", if meta.object_type.is_empty() { "Normal" } else { &meta.object_type }),
                    el("Size", e.row.size.to_string()),
                    el("StorageClass", if meta.storage_class.is_empty() { "Standard" } else { &meta.storage_class }),
                );
            }
        }
        for p in &l.common_prefixes {
            body += &format!("<CommonPrefixes>{}</CommonPrefixes>", el("Prefix", enc(p)));
        }
        body += "</ListVersionsResult>";
        Ok(ObjectResponse::xml(body))
    }
}
