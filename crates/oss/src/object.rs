//! Object operations: put, get/head (ranges, conditions), delete, copy, append, ACL, tagging,
//! and deleting many at once.

use crate::bucket::{acl_xml, parse_tagging, tagging_response};
use crate::data::{self, Segment};
use crate::model::{KEPT_HEADERS, OBJECT_ACLS, ObjectMeta, check_acl, parse_tagging_header};
use crate::service::{Oss, err, new_version_id, next_seq, no_such_key, root_attrs, store_err, versioning};
use crate::xml::{self, HEADER, el, http_date, iso};
use base64::Engine as _;
use md5::{Digest as _, Md5};
use nimbus_api::{ApiError, Caller, ObjectRequest, ObjectResponse};
use nimbus_core::clock::now_millis;
use nimbus_store::StoreError;
use nimbus_store::objects::ObjectRow;
use nimbus_store::versions::Versioning;

/// Reads longer than this are streamed.
const STREAM_ABOVE: u64 = 4 << 20;

pub(crate) fn bk(req: &ObjectRequest) -> (&str, &str) {
    (req.bucket.as_deref().unwrap_or_default(), req.key.as_deref().unwrap_or_default())
}

pub(crate) fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// Checks `Content-MD5` (when sent) against the body: `InvalidDigest` when it does not match.
pub(crate) fn check_content_md5(req: &ObjectRequest) -> Result<(), ApiError> {
    if let Some(v) = req.header("content-md5") {
        let given = base64::engine::general_purpose::STANDARD.decode(v.trim()).unwrap_or_default();
        if given[..] != Md5::digest(&req.body)[..] {
            return Err(err(400, "InvalidDigest", "The Content-MD5 you specified is not valid."));
        }
    }
    Ok(())
}

pub(crate) fn check_size(oss: &Oss, len: u64) -> Result<(), ApiError> {
    if len > oss.max_object_bytes {
        return Err(err(
            400,
            "EntityTooLarge",
            format!(
                "Your proposed upload exceeds the maximum allowed size of {} bytes; use multipart upload.",
                oss.max_object_bytes
            ),
        ));
    }
    Ok(())
}

/// Metadata a new object takes from the request's headers.
pub(crate) fn meta_from_request(req: &ObjectRequest, owner: &str, storage_class: &str) -> Result<ObjectMeta, ApiError> {
    let acl = req.header("x-oss-object-acl").unwrap_or("default").to_string();
    check_acl(&acl, OBJECT_ACLS)?;
    let user_meta: Vec<(String, String)> = req
        .headers
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("x-oss-meta-").map(|n| (n.to_string(), v.clone())))
        .collect();
    if user_meta.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() > 8 << 10 {
        return Err(err(400, "MetadataTooLarge", "User metadata may total at most 8 KB."));
    }
    let headers = KEPT_HEADERS.iter().filter_map(|h| req.header(h).map(|v| (h.to_string(), v.to_string()))).collect();
    let tags = match req.header("x-oss-tagging") {
        Some(t) => parse_tagging_header(t)?,
        None => vec![],
    };
    Ok(ObjectMeta {
        segments: vec![],
        crc64: 0,
        object_type: "Normal".into(),
        content_type: req
            .header("content-type")
            .filter(|c| !c.is_empty())
            .unwrap_or("application/octet-stream")
            .to_string(),
        acl,
        storage_class: req.header("x-oss-storage-class").unwrap_or(storage_class).to_string(),
        owner: owner.to_string(),
        user_meta,
        headers,
        tags,
        sse: None,
    })
}

pub(crate) fn row_of(
    bucket: &str,
    key: &str,
    size: u64,
    etag: String,
    meta: &ObjectMeta,
    mode: Versioning,
) -> Result<ObjectRow, ApiError> {
    Ok(ObjectRow {
        bucket: bucket.to_string(),
        key: key.to_string(),
        size: size as i64,
        etag,
        last_modified: now_millis(),
        meta: serde_json::to_value(meta).map_err(|_| ApiError::internal())?,
        version_id: new_version_id(mode),
        seq: next_seq(),
    })
}

/// `x-oss-version-id` for buckets that have (had) versioning.
pub(crate) fn version_header(mode: Versioning, row: &ObjectRow) -> Vec<(String, String)> {
    if mode == Versioning::Off { vec![] } else { vec![("x-oss-version-id".into(), row.version_id.clone())] }
}

fn sse_headers(meta: &ObjectMeta) -> Vec<(String, String)> {
    let mut h = vec![];
    if let Some(s) = &meta.sse {
        h.push(("x-oss-server-side-encryption".into(), s.algorithm.clone()));
        if let Some(k) = &s.kms_key_id {
            h.push(("x-oss-server-side-encryption-key-id".into(), k.clone()));
        }
    }
    h
}

/// The headers every GET/HEAD of an object carries.
fn object_headers(row: &ObjectRow, meta: &ObjectMeta) -> Vec<(String, String)> {
    let mut h = vec![
        ("content-type".to_string(), meta.content_type.clone()),
        ("etag".into(), quoted(&row.etag)),
        ("last-modified".into(), http_date(row.last_modified)),
        ("accept-ranges".into(), "bytes".into()),
        ("x-oss-object-type".into(), meta.object_type.clone()),
        ("x-oss-storage-class".into(), meta.storage_class.clone()),
        ("x-oss-hash-crc64ecma".into(), meta.crc64.to_string()),
    ];
    if meta.object_type == "Appendable" {
        h.push(("x-oss-next-append-position".into(), row.size.to_string()));
    }
    if !meta.tags.is_empty() {
        h.push(("x-oss-tagging-count".into(), meta.tags.len().to_string()));
    }
    h.extend(meta.headers.iter().cloned());
    h.extend(meta.user_meta.iter().map(|(k, v)| (format!("x-oss-meta-{k}"), v.clone())));
    h.extend(sse_headers(meta));
    h
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` → `[start, end)`. `None` for absent or unparsable ranges
/// (served whole, as OSS does); `Err` when the range starts past the end.
fn parse_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else { return Ok(None) };
    let unsatisfiable = || err(416, "InvalidRange", "The requested range cannot be satisfied.");
    let r = match (a.trim().parse::<u64>().ok(), b.trim().parse::<u64>().ok()) {
        (Some(a), Some(b)) if a <= b => {
            if a >= size {
                return Err(unsatisfiable());
            }
            (a, (b + 1).min(size))
        }
        (Some(a), None) if b.trim().is_empty() => {
            if a >= size {
                return Err(unsatisfiable());
            }
            (a, size)
        }
        (None, Some(n)) if a.trim().is_empty() => {
            if n == 0 {
                return Err(unsatisfiable());
            }
            (size.saturating_sub(n), size)
        }
        _ => return Ok(None),
    };
    Ok(Some(r))
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(|t| t.trim().trim_matches('"')).any(|t| t == "*" || t.eq_ignore_ascii_case(etag))
}

/// `If-Match`, `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since` (with `prefix`, the
/// `x-oss-copy-source-if-*` forms).
fn check_conditions(req: &ObjectRequest, row: &ObjectRow, prefix: &str, read: bool) -> Result<(), ApiError> {
    let h = |n: &str| req.header(&format!("{prefix}{n}"));
    let failed = || err(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.");
    let not_modified = || if read && prefix.is_empty() { err(304, "NotModified", "") } else { failed() };
    let modified = row.last_modified / 1000;
    if let Some(m) = h("if-match")
        && !etag_matches(m, &row.etag)
    {
        return Err(failed());
    }
    if let Some(m) = h("if-none-match")
        && etag_matches(m, &row.etag)
    {
        return Err(not_modified());
    }
    if let Some(t) = h("if-unmodified-since").and_then(xml::parse_http_date)
        && modified > t / 1000
    {
        return Err(failed());
    }
    if let Some(t) = h("if-modified-since").and_then(xml::parse_http_date)
        && modified <= t / 1000
    {
        return Err(not_modified());
    }
    Ok(())
}

/// Encodes a key for `encoding-type=url` answers: everything but unreserved characters and `/`.
pub(crate) fn url_encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

impl Oss {
    pub(crate) async fn put_object(
        &self,
        req: &ObjectRequest,
        _caller: Option<&Caller>,
    ) -> Result<ObjectResponse, ApiError> {
        check_size(self, req.upload.as_ref().map_or(req.body.len() as u64, |u| u.len))?;
        self.put_object_unchecked(req).await
    }

    /// PutObject without the client size limit (service-internal writes).
    pub(crate) async fn put_object_unchecked(&self, req: &ObjectRequest) -> Result<ObjectResponse, ApiError> {
        let (bucket, key) = bk(req);
        let b = self.bucket(bucket).await?;
        let cfg = Self::config(&b)?;
        if req.upload.is_none() {
            check_content_md5(req)?;
        }
        let mut meta = meta_from_request(req, &b.account_id, &cfg.storage_class)?;
        let forbid_overwrite = req.header("x-oss-forbid-overwrite").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if forbid_overwrite && self.store.get_object_row(bucket, key).await.map_err(store_err)?.is_some() {
            return Err(err(409, "FileAlreadyExists", "The object already exists and x-oss-forbid-overwrite is true."));
        }
        let sse = self.new_sse(req, &b.account_id, bucket, &cfg).await?;
        let written = self.write_body(req, sse.as_ref().map(|s| s.1)).await?;
        let (md5, size) = (written.md5, written.segment.size);
        meta.crc64 = written.crc64;
        meta.segments = vec![written.segment];
        meta.sse = sse.map(|s| s.0);
        let etag = hex::encode_upper(md5);
        let mode = versioning(&cfg);
        let row = row_of(bucket, key, size, etag.clone(), &meta, mode)?;
        self.commit_row(&row, &meta.segments, mode).await?;
        let mut resp = ObjectResponse::new(200)
            .with_header("etag", quoted(&etag))
            .with_header("x-oss-hash-crc64ecma", meta.crc64.to_string())
            .with_header("content-md5", base64::engine::general_purpose::STANDARD.encode(md5));
        resp.headers.extend(sse_headers(&meta));
        resp.headers.extend(version_header(mode, &row));
        Ok(resp)
    }

    /// Writes the request's body, whole or streamed. A streamed body's `Content-MD5` can only be
    /// checked once it is written: a mismatch frees what was written and commits nothing.
    pub(crate) async fn write_body(
        &self,
        req: &ObjectRequest,
        key: Option<[u8; 32]>,
    ) -> Result<data::Written, ApiError> {
        let Some(up) = &req.upload else { return data::write(&self.engine, req.body.clone(), key).await };
        let written = data::write_stream(&self.engine, up, key).await?;
        if let Some(v) = req.header("content-md5") {
            let given = base64::engine::general_purpose::STANDARD.decode(v.trim()).unwrap_or_default();
            if given[..] != written.md5[..] {
                data::free(&self.engine, vec![written.segment]).await;
                return Err(err(400, "InvalidDigest", "The Content-MD5 you specified is not valid."));
            }
        }
        Ok(written)
    }

    /// Makes `row` the object's metadata and frees what it replaced. If the metadata write fails,
    /// the new data is freed instead: nothing half-written stays visible or allocated.
    pub(crate) async fn commit_row(
        &self,
        row: &ObjectRow,
        new_segments: &[Segment],
        mode: Versioning,
    ) -> Result<(), ApiError> {
        match self.store.put_object_versioned(row, mode).await {
            Ok(freed) => {
                for old in freed {
                    self.free_row(&old).await;
                }
                Ok(())
            }
            Err(e) => {
                data::free(&self.engine, new_segments.to_vec()).await;
                Err(store_err(e))
            }
        }
    }

    pub(crate) async fn free_row(&self, row: &ObjectRow) {
        if let Ok(m) = serde_json::from_value::<ObjectMeta>(row.meta.clone()) {
            data::free(&self.engine, m.segments).await;
        }
    }

    pub(crate) async fn get_object(&self, req: &ObjectRequest, op: &str) -> Result<ObjectResponse, ApiError> {
        let (bucket, _) = bk(req);
        let b = self.bucket(bucket).await?;
        let mode = versioning(&Self::config(&b)?);
        let (row, meta) = self.version(req, mode).await?;
        let size = row.size as u64;
        if op == "GetObjectMeta" {
            return Ok(ObjectResponse::new(200)
                .with_header("content-length", size.to_string())
                .with_header("etag", quoted(&row.etag))
                .with_header("last-modified", http_date(row.last_modified)));
        }
        check_conditions(req, &row, "", true)?;
        let mut headers = object_headers(&row, &meta);
        headers.extend(version_header(mode, &row));
        for (param, header) in [
            ("response-content-type", "content-type"),
            ("response-content-language", "content-language"),
            ("response-expires", "expires"),
            ("response-cache-control", "cache-control"),
            ("response-content-disposition", "content-disposition"),
            ("response-content-encoding", "content-encoding"),
        ] {
            if let Some(v) = req.query(param) {
                headers.retain(|(k, _)| k != header);
                headers.push((header.to_string(), v.to_string()));
            }
        }
        if op == "HeadObject" {
            headers.push(("content-length".into(), size.to_string()));
            return Ok(ObjectResponse { status: 200, headers, ..Default::default() });
        }
        let range = parse_range(req.header("range"), size)?;
        let (start, end) = range.unwrap_or((0, size));
        let key_bytes = self.data_key(&row_owner(&meta, bucket), bucket, &meta.sse).await?;
        // Large reads stream, so reading and verifying the next blocks overlaps sending.
        let (body, stream) = if end - start > STREAM_ABOVE {
            headers.push(("content-length".into(), (end - start).to_string()));
            (Vec::new(), Some(data::stream(&self.engine, &meta.segments, key_bytes, start, end)))
        } else {
            (data::read(&self.engine, &meta.segments, key_bytes, start, end).await?, None)
        };
        let mut status = 200;
        if range.is_some() {
            status = 206;
            headers.push(("content-range".into(), format!("bytes {start}-{}/{size}", end.saturating_sub(1))));
            // The CRC header describes the whole object; a client must not check it on a range.
            headers.retain(|(k, _)| k != "x-oss-hash-crc64ecma");
        }
        Ok(ObjectResponse { status, headers, body: body.into(), stream })
    }

    pub(crate) async fn delete_object(&self, req: &ObjectRequest) -> Result<ObjectResponse, ApiError> {
        let (bucket, key) = bk(req);
        let b = self.bucket(bucket).await?;
        let mode = versioning(&Self::config(&b)?);
        let (headers, _) = self.delete_key(bucket, key, req.query("versionId"), mode).await?;
        Ok(ObjectResponse { status: 204, headers, ..Default::default() })
    }

    /// Deletes a key (a delete marker when versioning) or one version of it; returns the
    /// response headers and, for DeleteMultipleObjects, (version id, delete marker id).
    pub(crate) async fn delete_key(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        mode: Versioning,
    ) -> Result<(Vec<(String, String)>, (Option<String>, Option<String>)), ApiError> {
        let mut headers = vec![];
        match version_id {
            Some(vid) => {
                if let Some((row, marker)) =
                    self.store.delete_object_version(bucket, key, vid).await.map_err(store_err)?
                {
                    if marker {
                        headers.push(("x-oss-delete-marker".to_string(), "true".to_string()));
                    } else {
                        self.free_row(&row).await;
                    }
                }
                headers.push(("x-oss-version-id".into(), vid.to_string()));
                Ok((headers, (Some(vid.to_string()), None)))
            }
            None => {
                let marker = ObjectRow {
                    bucket: bucket.into(),
                    key: key.into(),
                    size: 0,
                    etag: String::new(),
                    last_modified: now_millis(),
                    meta: serde_json::json!({}),
                    version_id: new_version_id(mode),
                    seq: next_seq(),
                };
                let (freed, wrote) = self.store.delete_object_versioned(&marker, mode).await.map_err(store_err)?;
                for old in freed {
                    self.free_row(&old).await;
                }
                if wrote {
                    headers.push(("x-oss-delete-marker".into(), "true".into()));
                    headers.push(("x-oss-version-id".into(), marker.version_id.clone()));
                    return Ok((headers, (None, Some(marker.version_id))));
                }
                Ok((headers, (None, None)))
            }
        }
    }

    /// The version a read names (`versionId`), else the current one. A delete marker reads as
    /// `NoSuchKey` with `x-oss-delete-marker: true`.
    pub(crate) async fn version(
        &self,
        req: &ObjectRequest,
        mode: Versioning,
    ) -> Result<(ObjectRow, ObjectMeta), ApiError> {
        let (bucket, key) = bk(req);
        let row = match req.query("versionId") {
            Some(vid) => match self.store.get_object_version(bucket, key, vid).await.map_err(store_err)? {
                Some((_, true)) => {
                    return Err(no_such_key()
                        .with_header("x-oss-delete-marker", "true")
                        .with_header("x-oss-version-id", vid));
                }
                Some((row, false)) => row,
                None => return Err(err(404, "NoSuchVersion", "The specified version does not exist.")),
            },
            None => match self.store.get_object_row(bucket, key).await.map_err(store_err)? {
                Some(row) => row,
                None if mode != Versioning::Off => {
                    let e = no_such_key();
                    return Err(match self.store.latest_delete_marker(bucket, key).await.map_err(store_err)? {
                        Some(vid) => e.with_header("x-oss-delete-marker", "true").with_header("x-oss-version-id", vid),
                        None => e,
                    });
                }
                None => return Err(no_such_key()),
            },
        };
        let meta = serde_json::from_value(row.meta.clone()).map_err(|_| ApiError::internal())?;
        Ok((row, meta))
    }

    pub(crate) async fn copy_object(
        &self,
        req: &ObjectRequest,
        caller: Option<&Caller>,
    ) -> Result<ObjectResponse, ApiError> {
        let (bucket, key) = bk(req);
        let b = self.bucket(bucket).await?;
        let cfg = Self::config(&b)?;
        let (src_row, src_meta, plain) = self.read_copy_source(req, caller, None).await?;
        check_size(self, plain.len() as u64)?;
        let directive = req.header("x-oss-metadata-directive").unwrap_or("COPY");
        let mut meta = match directive {
            "COPY" => {
                let mut m = meta_from_request(req, &b.account_id, &cfg.storage_class)?;
                m.content_type = src_meta.content_type.clone();
                m.user_meta = src_meta.user_meta.clone();
                m.headers = src_meta.headers.clone();
                m
            }
            "REPLACE" => meta_from_request(req, &b.account_id, &cfg.storage_class)?,
            other => {
                return Err(err(
                    400,
                    "InvalidArgument",
                    format!("x-oss-metadata-directive {other:?} is neither COPY nor REPLACE."),
                ));
            }
        };
        if req.header("x-oss-tagging-directive").unwrap_or("Copy").eq_ignore_ascii_case("copy") {
            meta.tags = src_meta.tags.clone();
        }
        let sse = self.new_sse(req, &b.account_id, bucket, &cfg).await?;
        let written = data::write(&self.engine, plain.into(), sse.as_ref().map(|s| s.1)).await?;
        meta.crc64 = written.crc64;
        meta.segments = vec![written.segment];
        meta.sse = sse.map(|s| s.0);
        let etag = if src_meta.object_type == "Normal" { src_row.etag.clone() } else { hex::encode_upper(written.md5) };
        let mode = versioning(&cfg);
        let row = row_of(bucket, key, src_row.size as u64, etag.clone(), &meta, mode)?;
        self.commit_row(&row, &meta.segments, mode).await?;
        let body = format!(
            "{HEADER}<CopyObjectResult{}>{}{}</CopyObjectResult>",
            root_attrs(req),
            el("ETag", quoted(&etag)),
            el("LastModified", iso(row.last_modified))
        );
        let mut resp = ObjectResponse::xml(body).with_header("x-oss-hash-crc64ecma", meta.crc64.to_string());
        resp.headers.extend(sse_headers(&meta));
        resp.headers.extend(version_header(mode, &row));
        resp.headers.extend(src_row_version(&src_row));
        Ok(resp)
    }

    /// The source of a copy (`x-oss-copy-source: /bucket/key`), which the caller must be allowed
    /// to read, and its plaintext (`range` within it, for UploadPartCopy).
    pub(crate) async fn read_copy_source(
        &self,
        req: &ObjectRequest,
        caller: Option<&Caller>,
        range_header: Option<&str>,
    ) -> Result<(ObjectRow, ObjectMeta, Vec<u8>), ApiError> {
        let whole = req.header("x-oss-copy-source").unwrap_or_default();
        let (raw, source_query) = whole.split_once('?').unwrap_or((whole, ""));
        let raw = raw.trim_start_matches('/');
        let source_version = form_urlencoded::parse(source_query.as_bytes())
            .find(|(k, _)| k == "versionId")
            .map(|(_, v)| v.into_owned());
        let (sb, sk) =
            raw.split_once('/').ok_or_else(|| err(400, "InvalidArgument", "x-oss-copy-source must be /bucket/key."))?;
        let sk = percent_encoding::percent_decode_str(sk)
            .decode_utf8()
            .map_err(|_| err(400, "InvalidArgument", "x-oss-copy-source is not valid UTF-8."))?
            .to_string();
        // Bucket names are public in OSS; whether a key or version exists is not. The source is
        // judged before any "no such key/version" is told, a missing one like an object that
        // defers to the bucket's ACL, so a caller who may not read it gets 403 either way.
        let src_bucket = self.bucket(sb).await?;
        let found: Result<(ObjectRow, ObjectMeta), ApiError> = match &source_version {
            Some(vid) => match self.store.get_object_version(sb, &sk, vid).await.map_err(store_err)? {
                Some((row, false)) => match serde_json::from_value(row.meta.clone()) {
                    Ok(meta) => Ok((row, meta)),
                    Err(_) => return Err(ApiError::internal()),
                },
                _ => Err(err(404, "NoSuchVersion", "The specified version of the copy source does not exist.")),
            },
            None => match self.object(sb, &sk).await {
                Err(e) if e.code == "NoSuchKey" => Err(e),
                other => Ok(other?),
            },
        };
        let object_acl = found.as_ref().ok().map(|(_, m)| m.acl.as_str());
        if !self.may_read(caller, req, &src_bucket, &sk, object_acl).await {
            return Err(err(403, "AccessDenied", "You have no right to read the copy source."));
        }
        let (row, meta) = found?;
        check_conditions(req, &row, "x-oss-copy-source-", false)?;
        let size = row.size as u64;
        let (start, end) = match range_header {
            Some(h) => parse_range(Some(h), size)?.unwrap_or((0, size)),
            None => (0, size),
        };
        let k = self.data_key(&src_bucket.account_id, sb, &meta.sse).await?;
        let plain = data::read(&self.engine, &meta.segments, k, start, end).await?;
        Ok((row, meta, plain))
    }

    pub(crate) async fn append_object(
        &self,
        req: &ObjectRequest,
        _caller: Option<&Caller>,
    ) -> Result<ObjectResponse, ApiError> {
        let (bucket, key) = bk(req);
        let b = self.bucket(bucket).await?;
        let cfg = Self::config(&b)?;
        let position: u64 = req
            .query("position")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| err(400, "InvalidArgument", "AppendObject needs a numeric position."))?;
        if versioning(&cfg) != Versioning::Off {
            return Err(err(400, "InvalidRequest", "AppendObject is not supported in a bucket that has versioning."));
        }
        check_size(self, req.upload.as_ref().map_or(req.body.len() as u64, |u| u.len))?;
        if req.upload.is_none() {
            check_content_md5(req)?;
        }
        let existing = self.store.get_object_row(bucket, key).await.map_err(store_err)?;
        let (mut meta, expected, size, key_bytes) = match &existing {
            None => {
                if position != 0 {
                    return Err(err(409, "PositionNotEqualToLength", "Position is not equal to file length.")
                        .with_header("x-oss-next-append-position", "0"));
                }
                let mut m = meta_from_request(req, &b.account_id, &cfg.storage_class)?;
                m.object_type = "Appendable".into();
                let sse = self.new_sse(req, &b.account_id, bucket, &cfg).await?;
                let k = sse.as_ref().map(|s| s.1);
                m.sse = sse.map(|s| s.0);
                (m, None, 0u64, k)
            }
            Some(row) => {
                let m: ObjectMeta = serde_json::from_value(row.meta.clone()).map_err(|_| ApiError::internal())?;
                if m.object_type != "Appendable" {
                    return Err(err(409, "ObjectNotAppendable", "The object is not appendable."));
                }
                if position != row.size as u64 {
                    return Err(err(409, "PositionNotEqualToLength", "Position is not equal to file length.")
                        .with_header("x-oss-next-append-position", row.size.to_string()));
                }
                let k = self.data_key(&b.account_id, bucket, &m.sse).await?;
                (m, Some(row.etag.clone()), row.size as u64, k)
            }
        };
        let written = self.write_body(req, key_bytes).await?;
        let added = written.segment.size;
        meta.crc64 = crate::crc64::combine(meta.crc64, written.crc64, added);
        meta.segments.push(written.segment.clone());
        let etag = {
            let mut h = Md5::new();
            h.update(expected.as_deref().unwrap_or_default());
            h.update(written.md5);
            hex::encode_upper(h.finalize())
        };
        let row = row_of(bucket, key, size + added, etag.clone(), &meta, Versioning::Off)?;
        match self.store.put_object_row_if(&row, expected.as_deref()).await {
            Ok(_) => {}
            Err(e) => {
                data::free(&self.engine, vec![written.segment]).await;
                return Err(match e {
                    StoreError::Conflict => err(
                        409,
                        "PositionNotEqualToLength",
                        "Another append changed the object first; read its length and retry.",
                    ),
                    e => store_err(e),
                });
            }
        }
        let mut resp = ObjectResponse::new(200)
            .with_header("etag", quoted(&etag))
            .with_header("x-oss-next-append-position", (size + added).to_string())
            .with_header("x-oss-hash-crc64ecma", meta.crc64.to_string());
        resp.headers.extend(sse_headers(&meta));
        Ok(resp)
    }

    /// Read-modify-write of an object's metadata (ACL, tags), keyed on its ETag.
    async fn update_object_meta(&self, bucket: &str, key: &str, f: impl Fn(&mut ObjectMeta)) -> Result<(), ApiError> {
        for _ in 0..8 {
            let (mut row, mut meta) = self.object(bucket, key).await?;
            f(&mut meta);
            row.meta = serde_json::to_value(&meta).map_err(|_| ApiError::internal())?;
            let etag = row.etag.clone();
            match self.store.put_object_row_if(&row, Some(&etag)).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(err(409, "OperationConflict", "The object is being changed by another request; retry."))
    }

    pub(crate) async fn object_acl(&self, req: &ObjectRequest, put: bool) -> Result<ObjectResponse, ApiError> {
        let (bucket, key) = bk(req);
        let b = self.bucket(bucket).await?;
        if put {
            let acl = req
                .header("x-oss-object-acl")
                .ok_or_else(|| err(400, "InvalidArgument", "x-oss-object-acl is required."))?
                .to_string();
            check_acl(&acl, OBJECT_ACLS)?;
            self.update_object_meta(bucket, key, |m| m.acl = acl.clone()).await?;
            return Ok(ObjectResponse::new(200));
        }
        let (_, meta) = self.object(bucket, key).await?;
        Ok(ObjectResponse::xml(acl_xml(req, &b.account_id, &meta.acl)))
    }

    pub(crate) async fn object_tagging(&self, req: &ObjectRequest, op: &str) -> Result<ObjectResponse, ApiError> {
        let (bucket, key) = bk(req);
        self.bucket(bucket).await?;
        match op {
            "PutObjectTagging" => {
                let tags = parse_tagging(req)?;
                self.update_object_meta(bucket, key, |m| m.tags = tags.clone()).await?;
                Ok(ObjectResponse::new(200))
            }
            "DeleteObjectTagging" => {
                self.update_object_meta(bucket, key, |m| m.tags.clear()).await?;
                Ok(ObjectResponse::new(204))
            }
            _ => {
                let (_, meta) = self.object(bucket, key).await?;
                Ok(tagging_response(&meta.tags))
            }
        }
    }

    pub(crate) async fn delete_multiple(&self, req: &ObjectRequest) -> Result<ObjectResponse, ApiError> {
        let (bucket, _) = bk(req);
        self.bucket(bucket).await?;
        check_content_md5(req)?;
        let (quiet, keys) = delete_list(req)?;
        let url = req.query("encoding-type") == Some("url");
        let mut body = format!("{HEADER}<DeleteResult{}>", root_attrs(req));
        if url {
            body += &el("EncodingType", "url");
        }
        for (k, _) in &keys {
            crate::names::check_key(k)?;
        }
        let mode = versioning(&Self::config(&self.bucket(bucket).await?)?);
        for (k, vid) in keys {
            let (_, (version, marker)) = self.delete_key(bucket, &k, vid.as_deref(), mode).await?;
            if !quiet {
                body += &format!(
                    "<Deleted>{}{}{}</Deleted>",
                    el("Key", if url { url_encode(&k) } else { k }),
                    version.map(|v| el("VersionId", v)).unwrap_or_default(),
                    marker
                        .map(|m| format!("<DeleteMarker>true</DeleteMarker>{}", el("DeleteMarkerVersionId", m)))
                        .unwrap_or_default(),
                );
            }
        }
        body += "</DeleteResult>";
        Ok(ObjectResponse::xml(body))
    }
}

/// An object key and, optionally, one of its versions.
pub(crate) type KeyVersion = (String, Option<String>);

/// The `<Delete>` document of DeleteMultipleObjects: quiet mode and the keys (with versions).
/// Authorization reads the keys with this same function, so the handler deletes exactly the
/// objects that were authorized one by one.
pub(crate) fn delete_list(req: &ObjectRequest) -> Result<(bool, Vec<KeyVersion>), ApiError> {
    let text = std::str::from_utf8(&req.body).map_err(|_| xml::malformed("the body is not UTF-8"))?;
    let doc = xml::parse(text, "Delete")?;
    let quiet = xml::child_text(doc.root_element(), "Quiet").is_some_and(|q| q.eq_ignore_ascii_case("true"));
    let keys: Vec<KeyVersion> = xml::children(doc.root_element(), "Object")
        .map(|o| {
            (
                xml::child_text(o, "Key").unwrap_or("").to_string(),
                xml::child_text(o, "VersionId").filter(|v| !v.is_empty()).map(str::to_string),
            )
        })
        .collect();
    if keys.is_empty() || keys.len() > 1000 {
        return Err(xml::malformed("between 1 and 1000 <Object> elements are required"));
    }
    Ok((quiet, keys))
}

/// `x-oss-copy-source-version-id` when the source has versions.
fn src_row_version(row: &ObjectRow) -> Vec<(String, String)> {
    if row.version_id == nimbus_store::versions::NULL_VERSION {
        vec![]
    } else {
        vec![("x-oss-copy-source-version-id".into(), row.version_id.clone())]
    }
}

/// Objects belong to their bucket's owner; older rows may lack the field.
fn row_owner(meta: &ObjectMeta, _bucket: &str) -> String {
    meta.owner.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100).expect("ok"), Some((0, 10)));
        assert_eq!(parse_range(Some("bytes=90-"), 100).expect("ok"), Some((90, 100)));
        assert_eq!(parse_range(Some("bytes=-10"), 100).expect("ok"), Some((90, 100)));
        assert_eq!(parse_range(Some("bytes=95-200"), 100).expect("ok"), Some((95, 100)));
        assert_eq!(parse_range(Some("bytes=9-2"), 100).expect("ok"), None);
        assert_eq!(parse_range(Some("nonsense"), 100).expect("ok"), None);
        assert_eq!(parse_range(Some("bytes=100-"), 100).expect_err("past end").code, "InvalidRange");
    }

    #[test]
    fn url_encoding_keeps_slashes() {
        assert_eq!(url_encode("dir/a b+c.txt"), "dir/a%20b%2Bc.txt");
    }
}
