//! Multipart uploads. Parts are stored as they arrive (each its own replicated segment); completing
//! an upload writes one metadata row that lists the chosen parts' segments, in one transaction
//! with the upload's removal — no data is copied, and a crash leaves the upload or the object.

use crate::data;
use crate::model::{PartMeta, UploadMeta};
use crate::object::{bk, check_content_md5, check_size, meta_from_request, quoted, row_of, url_encode};
use crate::service::{Oss, err, root_attrs, store_err};
use crate::xml::{self, HEADER, el, iso};
use md5::{Digest as _, Md5};
use nimbus_api::{ApiError, Caller, ObjectRequest, ObjectResponse};
use nimbus_core::clock::now_millis;
use nimbus_store::StoreError;
use nimbus_store::buckets::{PartRow, UploadRow};

/// Smallest part but the last (OSS: 100 KB).
pub const MIN_PART_BYTES: u64 = 100 << 10;
pub const MAX_PARTS: i64 = 10_000;

fn no_such_upload() -> ApiError {
    err(
        404,
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
    )
}

fn new_upload_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex::encode_upper(b)
}

impl Oss {
    /// The upload named by `uploadId`, which must belong to this bucket and key.
    async fn upload(&self, req: &ObjectRequest) -> Result<(UploadRow, UploadMeta), ApiError> {
        let (bucket, key) = bk(req);
        let id = req.query("uploadId").unwrap_or_default();
        let u = self.store.get_upload(id).await.map_err(store_err)?.ok_or_else(no_such_upload)?;
        if u.bucket != bucket || u.key != key {
            return Err(no_such_upload());
        }
        let meta = serde_json::from_value(u.meta.clone()).map_err(|_| ApiError::internal())?;
        Ok((u, meta))
    }

    pub(crate) async fn initiate_upload(
        &self,
        req: &ObjectRequest,
        _caller: Option<&Caller>,
    ) -> Result<ObjectResponse, ApiError> {
        let (bucket, key) = bk(req);
        let b = self.bucket(bucket).await?;
        let cfg = Self::config(&b)?;
        let mut template = meta_from_request(req, &b.account_id, &cfg.storage_class)?;
        template.object_type = "Multipart".into();
        // The data key is made now: every part is sealed with it.
        template.sse = self.new_sse(req, &b.account_id, bucket, &cfg).await?.map(|s| s.0);
        let upload_id = new_upload_id();
        let meta = serde_json::to_value(UploadMeta { template }).map_err(|_| ApiError::internal())?;
        self.store
            .create_upload(&UploadRow {
                upload_id: upload_id.clone(),
                bucket: bucket.into(),
                key: key.into(),
                initiated: now_millis(),
                meta,
            })
            .await
            .map_err(store_err)?;
        let url = req.query("encoding-type") == Some("url");
        let body = format!(
            "{HEADER}<InitiateMultipartUploadResult{}>{}{}{}{}</InitiateMultipartUploadResult>",
            root_attrs(req),
            if url { el("EncodingType", "url") } else { String::new() },
            el("Bucket", bucket),
            el("Key", if url { url_encode(key) } else { key.to_string() }),
            el("UploadId", &upload_id)
        );
        Ok(ObjectResponse::xml(body))
    }

    pub(crate) async fn upload_part(
        &self,
        req: &ObjectRequest,
        caller: Option<&Caller>,
        copy: bool,
    ) -> Result<ObjectResponse, ApiError> {
        let (bucket, _) = bk(req);
        let b = self.bucket(bucket).await?;
        let number: i64 =
            req.query("partNumber").and_then(|n| n.parse().ok()).filter(|n| (1..=MAX_PARTS).contains(n)).ok_or_else(
                || err(400, "InvalidArgument", format!("Part number must be an integer between 1 and {MAX_PARTS}.")),
            )?;
        let (u, um) = self.upload(req).await?;
        let key = self.data_key(&b.account_id, bucket, &um.template.sse).await?;
        let written = if copy {
            let plain: bytes::Bytes =
                self.read_copy_source(req, caller, req.header("x-oss-copy-source-range")).await?.2.into();
            check_size(self, plain.len() as u64)?;
            data::write(&self.engine, plain, key).await?
        } else {
            check_size(self, req.upload.as_ref().map_or(req.body.len() as u64, |u| u.len))?;
            if req.upload.is_none() {
                check_content_md5(req)?;
            }
            self.write_body(req, key).await?
        };
        let etag = hex::encode_upper(written.md5);
        let part = PartRow {
            upload_id: u.upload_id.clone(),
            part_number: number,
            size: written.segment.size as i64,
            etag: etag.clone(),
            last_modified: now_millis(),
            meta: serde_json::to_value(PartMeta {
                segment: written.segment.clone(),
                crc64: written.crc64,
                md5: etag.clone(),
            })
            .map_err(|_| ApiError::internal())?,
        };
        match self.store.put_part(&part).await {
            Ok(Some(old)) => {
                if let Ok(pm) = serde_json::from_value::<PartMeta>(old.meta) {
                    data::free(&self.engine, vec![pm.segment]).await;
                }
            }
            Ok(None) => {}
            Err(e) => {
                data::free(&self.engine, vec![written.segment]).await;
                return Err(match e {
                    StoreError::NotFound => no_such_upload(),
                    e => store_err(e),
                });
            }
        }
        if copy {
            let body = format!(
                "{HEADER}<CopyPartResult{}>{}{}</CopyPartResult>",
                root_attrs(req),
                el("LastModified", iso(part.last_modified)),
                el("ETag", quoted(&etag))
            );
            // oss2 reads the part's ETag from the header, boto3 from the document.
            return Ok(ObjectResponse::xml(body)
                .with_header("x-oss-hash-crc64ecma", written.crc64.to_string())
                .with_header("etag", quoted(&etag)));
        }
        Ok(ObjectResponse::new(200)
            .with_header("etag", quoted(&etag))
            .with_header("x-oss-hash-crc64ecma", written.crc64.to_string()))
    }

    async fn all_parts(&self, upload_id: &str) -> Result<Vec<PartRow>, ApiError> {
        self.store.list_parts(upload_id, 0, MAX_PARTS + 1).await.map_err(store_err)
    }

    pub(crate) async fn complete_upload(&self, req: &ObjectRequest) -> Result<ObjectResponse, ApiError> {
        let (bucket, key) = bk(req);
        let mode = crate::service::versioning(&Self::config(&self.bucket(bucket).await?)?);
        let (u, um) = self.upload(req).await?;
        let stored = self.all_parts(&u.upload_id).await?;
        // The parts the client lists, in its order, each with the ETag it got.
        let chosen: Vec<&PartRow> = if req.header("x-oss-complete-all").is_some_and(|v| v.eq_ignore_ascii_case("yes")) {
            if !req.body.is_empty() {
                return Err(err(400, "InvalidArgument", "x-oss-complete-all takes no part list."));
            }
            stored.iter().collect()
        } else {
            check_content_md5(req)?;
            let text = std::str::from_utf8(&req.body).map_err(|_| xml::malformed("the body is not UTF-8"))?;
            let doc = xml::parse(text, "CompleteMultipartUpload")?;
            let mut chosen = vec![];
            let mut last = 0i64;
            for p in xml::children(doc.root_element(), "Part") {
                let n: i64 = xml::child_text(p, "PartNumber")
                    .and_then(|n| n.trim().parse().ok())
                    .ok_or_else(|| xml::malformed("every <Part> needs a numeric <PartNumber>"))?;
                let etag = xml::child_text(p, "ETag").unwrap_or("").trim().trim_matches('"');
                if n <= last {
                    return Err(err(
                        400,
                        "InvalidPartOrder",
                        "The list of parts was not in ascending order. Parts must be ordered by part number.",
                    ));
                }
                last = n;
                let part = stored.iter().find(|s| s.part_number == n && s.etag.eq_ignore_ascii_case(etag)).ok_or_else(
                    || err(400, "InvalidPart", format!("Part {n} was not uploaded, or its ETag does not match.")),
                )?;
                chosen.push(part);
            }
            chosen
        };
        if chosen.is_empty() {
            return Err(xml::malformed("at least one part is required"));
        }
        for p in &chosen[..chosen.len() - 1] {
            if (p.size as u64) < MIN_PART_BYTES {
                return Err(err(
                    400,
                    "EntityTooSmall",
                    format!(
                        "Part {} is smaller than the minimum of {MIN_PART_BYTES} bytes allowed for all parts but the last.",
                        p.part_number
                    ),
                ));
            }
        }
        let mut meta = um.template.clone();
        let (mut size, mut crc, mut md5s) = (0u64, 0u64, Md5::new());
        for p in &chosen {
            let pm: PartMeta = serde_json::from_value(p.meta.clone()).map_err(|_| ApiError::internal())?;
            crc = crate::crc64::combine(crc, pm.crc64, pm.segment.size);
            size += pm.segment.size;
            md5s.update(hex::decode(&pm.md5).unwrap_or_default());
            meta.segments.push(pm.segment);
        }
        meta.crc64 = crc;
        let etag = format!("{}-{}", hex::encode_upper(md5s.finalize()), chosen.len());
        let row = row_of(bucket, key, size, etag.clone(), &meta, mode)?;
        let freed = match self.store.complete_upload(&u.upload_id, &row, mode).await {
            Ok(freed) => freed,
            Err(StoreError::NotFound) => return Err(no_such_upload()),
            Err(e) => return Err(store_err(e)),
        };
        for old in freed {
            self.free_row(&old).await;
        }
        // Parts uploaded but left out of the object.
        let unused: Vec<data::Segment> = stored
            .iter()
            .filter(|s| !chosen.iter().any(|c| c.part_number == s.part_number))
            .filter_map(|s| serde_json::from_value::<PartMeta>(s.meta.clone()).ok().map(|pm| pm.segment))
            .collect();
        data::free(&self.engine, unused).await;
        let url = req.query("encoding-type") == Some("url");
        let body = format!(
            "{HEADER}<CompleteMultipartUploadResult{}>{}{}{}{}{}</CompleteMultipartUploadResult>",
            root_attrs(req),
            if url { el("EncodingType", "url") } else { String::new() },
            el("Location", format!("http://{}/{bucket}/{}", req.host, url_encode(key))),
            el("Bucket", bucket),
            el("Key", if url { url_encode(key) } else { key.to_string() }),
            el("ETag", quoted(&etag))
        );
        Ok(ObjectResponse::xml(body)
            .with_header("x-oss-hash-crc64ecma", crc.to_string())
            .with_header("etag", quoted(&etag)))
    }

    pub(crate) async fn abort_upload(&self, req: &ObjectRequest) -> Result<ObjectResponse, ApiError> {
        self.bucket(bk(req).0).await?;
        let (u, _) = self.upload(req).await?;
        let parts = match self.store.delete_upload(&u.upload_id).await {
            Ok(p) => p,
            Err(StoreError::NotFound) => return Err(no_such_upload()),
            Err(e) => return Err(store_err(e)),
        };
        let segs = parts
            .into_iter()
            .filter_map(|p| serde_json::from_value::<PartMeta>(p.meta).ok().map(|m| m.segment))
            .collect();
        data::free(&self.engine, segs).await;
        Ok(ObjectResponse::new(204))
    }

    pub(crate) async fn list_parts(&self, req: &ObjectRequest) -> Result<ObjectResponse, ApiError> {
        let (bucket, key) = bk(req);
        self.bucket(bucket).await?;
        let (u, _) = self.upload(req).await?;
        let marker: i64 = req.query("part-number-marker").and_then(|m| m.parse().ok()).unwrap_or(0);
        let max: i64 = req.query("max-parts").and_then(|m| m.parse().ok()).unwrap_or(1000).clamp(1, 1000);
        let parts = self.store.list_parts(&u.upload_id, marker, max + 1).await.map_err(store_err)?;
        let truncated = parts.len() as i64 > max;
        let parts = &parts[..parts.len().min(max as usize)];
        let next = parts.last().map(|p| p.part_number).unwrap_or(marker);
        let url = req.query("encoding-type") == Some("url");
        let mut body = format!(
            "{HEADER}<ListPartsResult{}>{}{}{}{}{}{}{}<IsTruncated>{truncated}</IsTruncated>",
            root_attrs(req),
            if url { el("EncodingType", "url") } else { String::new() },
            el("Bucket", bucket),
            el("Key", if url { url_encode(key) } else { key.to_string() }),
            el("UploadId", &u.upload_id),
            el("PartNumberMarker", marker.to_string()),
            el("NextPartNumberMarker", next.to_string()),
            el("MaxParts", max.to_string()),
        );
        for p in parts {
            let crc = serde_json::from_value::<PartMeta>(p.meta.clone()).map(|m| m.crc64).unwrap_or_default();
            body += &format!(
                "<Part>{}{}{}{}{}</Part>",
                el("PartNumber", p.part_number.to_string()),
                el("LastModified", iso(p.last_modified)),
                el("ETag", quoted(&p.etag)),
                el("HashCrc64ecma", crc.to_string()),
                el("Size", p.size.to_string())
            );
        }
        body += "</ListPartsResult>";
        Ok(ObjectResponse::xml(body))
    }

    pub(crate) async fn list_uploads(&self, req: &ObjectRequest) -> Result<ObjectResponse, ApiError> {
        let (bucket, _) = bk(req);
        self.bucket(bucket).await?;
        let prefix = req.query("prefix").unwrap_or("");
        let key_marker = req.query("key-marker").unwrap_or("");
        let id_marker = if key_marker.is_empty() { "" } else { req.query("upload-id-marker").unwrap_or("") };
        let max: i64 = req.query("max-uploads").and_then(|m| m.parse().ok()).unwrap_or(1000).clamp(1, 1000);
        let rows = self.store.list_uploads(bucket, prefix, key_marker, id_marker, max + 1).await.map_err(store_err)?;
        let truncated = rows.len() as i64 > max;
        let rows = &rows[..rows.len().min(max as usize)];
        let url = req.query("encoding-type") == Some("url");
        let enc = |s: &str| if url { url_encode(s) } else { s.to_string() };
        let (nk, nu) = rows.last().map(|u| (u.key.as_str(), u.upload_id.as_str())).unwrap_or(("", ""));
        let mut body = format!(
            "{HEADER}<ListMultipartUploadsResult{}>{}{}{}{}{}{}{}{}{}<IsTruncated>{truncated}</IsTruncated>",
            root_attrs(req),
            if url { el("EncodingType", "url") } else { String::new() },
            el("Bucket", bucket),
            el("KeyMarker", enc(key_marker)),
            el("UploadIdMarker", id_marker),
            el("NextKeyMarker", enc(if truncated { nk } else { "" })),
            el("NextUploadIdMarker", if truncated { nu } else { "" }),
            el("Delimiter", ""),
            el("Prefix", enc(prefix)),
            el("MaxUploads", max.to_string()),
        );
        for u in rows {
            body += &format!(
                "<Upload>{}{}{}</Upload>",
                el("Key", enc(&u.key)),
                el("UploadId", &u.upload_id),
                el("Initiated", iso(u.initiated))
            );
        }
        body += "</ListMultipartUploadsResult>";
        Ok(ObjectResponse::xml(body))
    }
}
