//! Bucket operations: create, delete, list, info, location, and the configuration documents
//! (ACL, encryption, CORS, lifecycle, policy, tags, website, versioning).

use crate::access;
use crate::model::{BUCKET_ACLS, BucketConfig, SseRule, check_acl, check_tags};
use crate::service::{Oss, err, root_attrs, store_err};
use crate::xml::{self, HEADER, el, iso};
use nimbus_api::{ApiError, Caller, ObjectRequest, ObjectResponse};
use nimbus_store::StoreError;

fn body_str(req: &ObjectRequest) -> Result<&str, ApiError> {
    std::str::from_utf8(&req.body).map_err(|_| xml::malformed("the body is not UTF-8"))
}

fn owner_xml(account: &str) -> String {
    format!("<Owner>{}{}</Owner>", el("ID", account), el("DisplayName", account))
}

pub(crate) fn acl_xml(req: &ObjectRequest, owner: &str, grant: &str) -> String {
    format!(
        "{HEADER}<AccessControlPolicy{}>{}<AccessControlList>{}</AccessControlList></AccessControlPolicy>",
        root_attrs(req),
        owner_xml(owner),
        el("Grant", grant)
    )
}

fn tagging_xml(tags: &[(String, String)]) -> String {
    let tags: String = tags.iter().map(|(k, v)| format!("<Tag>{}{}</Tag>", el("Key", k), el("Value", v))).collect();
    format!("{HEADER}<Tagging><TagSet>{tags}</TagSet></Tagging>")
}

/// `<Tagging><TagSet><Tag><Key/><Value/></Tag>…` → pairs.
pub(crate) fn parse_tagging(req: &ObjectRequest) -> Result<Vec<(String, String)>, ApiError> {
    let doc = xml::parse(body_str(req)?, "Tagging")?;
    let set = xml::children(doc.root_element(), "TagSet").next().ok_or_else(|| xml::malformed("no <TagSet>"))?;
    let tags: Vec<(String, String)> = xml::children(set, "Tag")
        .map(|t| {
            (xml::child_text(t, "Key").unwrap_or("").to_string(), xml::child_text(t, "Value").unwrap_or("").to_string())
        })
        .collect();
    check_tags(&tags)?;
    Ok(tags)
}

pub(crate) fn tagging_response(tags: &[(String, String)]) -> ObjectResponse {
    ObjectResponse::xml(tagging_xml(tags))
}

impl Oss {
    fn bucket_name(req: &ObjectRequest) -> &str {
        req.bucket.as_deref().unwrap_or_default()
    }

    pub(crate) async fn list_buckets(
        &self,
        req: &ObjectRequest,
        caller: Option<&Caller>,
    ) -> Result<ObjectResponse, ApiError> {
        let Some(c) = caller else { return Err(err(403, "AccessDenied", "Anonymous users cannot list buckets.")) };
        let prefix = req.query("prefix").unwrap_or("");
        let marker = req.query("marker").unwrap_or("");
        let max: i64 = req.query("max-keys").and_then(|m| m.parse().ok()).unwrap_or(1000).clamp(1, 1000);
        let rows = self.store.list_buckets(&c.account_id, prefix, marker, max + 1).await.map_err(store_err)?;
        let truncated = rows.len() as i64 > max;
        let rows = &rows[..rows.len().min(max as usize)];
        let mut body = format!("{HEADER}<ListAllMyBucketsResult{}>{}", root_attrs(req), owner_xml(&c.account_id));
        if !prefix.is_empty() || !marker.is_empty() || req.query("max-keys").is_some() {
            body += &format!(
                "{}{}{}<IsTruncated>{truncated}</IsTruncated>",
                el("Prefix", prefix),
                el("Marker", marker),
                el("MaxKeys", max.to_string())
            );
            if truncated && let Some(last) = rows.last() {
                body += &el("NextMarker", &last.name);
            }
        }
        body += "<Buckets>";
        let ext = self.region.endpoint_host("oss");
        for b in rows {
            let cfg = Self::config(b)?;
            body += &format!(
                "<Bucket>{}{}{}{}{}{}{}</Bucket>",
                el("CreationDate", iso(b.created_at)),
                el("ExtranetEndpoint", &ext),
                el("IntranetEndpoint", &ext),
                el("Location", self.location()),
                el("Name", &b.name),
                el("Region", &self.region.id),
                el("StorageClass", &cfg.storage_class),
            );
        }
        body += "</Buckets></ListAllMyBucketsResult>";
        Ok(ObjectResponse::xml(body))
    }

    pub(crate) async fn put_bucket(
        &self,
        req: &ObjectRequest,
        caller: Option<&Caller>,
    ) -> Result<ObjectResponse, ApiError> {
        let Some(c) = caller else { return Err(err(403, "AccessDenied", "Anonymous users cannot create buckets.")) };
        let name = Self::bucket_name(req);
        let acl = req.header("x-oss-acl").unwrap_or("private");
        check_acl(acl, BUCKET_ACLS)?;
        let mut storage_class = "Standard".to_string();
        if !req.body.is_empty() {
            let text = body_str(req)?;
            let doc = roxmltree::Document::parse(text).map_err(xml::malformed)?;
            if let Some(sc) = xml::child_text(doc.root_element(), "StorageClass") {
                if !["Standard", "IA", "Archive", "ColdArchive"].contains(&sc) {
                    return Err(err(400, "InvalidArgument", format!("Unknown storage class {sc:?}.")));
                }
                storage_class = sc.to_string();
            }
        }
        let cfg = BucketConfig { acl: acl.to_string(), storage_class, ..Default::default() };
        let value = serde_json::to_value(&cfg).map_err(|_| ApiError::internal())?;
        match self.store.create_bucket(name, &c.account_id, &value).await {
            Ok(_) => {}
            Err(StoreError::AlreadyExists) => {
                // Creating one's own bucket again is a retry, answered like the first time.
                let existing = self.bucket(name).await?;
                if existing.account_id != c.account_id {
                    return Err(err(
                        409,
                        "BucketAlreadyExists",
                        "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
                    ));
                }
            }
            Err(e) => return Err(store_err(e)),
        }
        Ok(ObjectResponse::new(200).with_header("location", format!("/{name}")))
    }

    pub(crate) async fn delete_bucket(&self, req: &ObjectRequest) -> Result<ObjectResponse, ApiError> {
        match self.store.delete_bucket(Self::bucket_name(req)).await {
            Ok(()) => Ok(ObjectResponse::new(204)),
            Err(StoreError::Conflict) => {
                Err(err(409, "BucketNotEmpty", "The bucket you tried to delete is not empty."))
            }
            Err(StoreError::NotFound) => Err(crate::service::no_such_bucket()),
            Err(e) => Err(store_err(e)),
        }
    }

    pub(crate) async fn head_bucket(&self, req: &ObjectRequest) -> Result<ObjectResponse, ApiError> {
        self.bucket(Self::bucket_name(req)).await?;
        Ok(ObjectResponse::new(200).with_header("x-oss-bucket-region", self.region.id.clone()))
    }

    pub(crate) async fn get_bucket_info(&self, req: &ObjectRequest) -> Result<ObjectResponse, ApiError> {
        let b = self.bucket(Self::bucket_name(req)).await?;
        let cfg = Self::config(&b)?;
        let ext = self.region.endpoint_host("oss");
        let sse = match &cfg.encryption {
            Some(r) => format!(
                "<ServerSideEncryptionRule>{}{}</ServerSideEncryptionRule>",
                el("SSEAlgorithm", &r.algorithm),
                r.kms_key_id.as_deref().map(|k| el("KMSMasterKeyID", k)).unwrap_or_default()
            ),
            None => "<ServerSideEncryptionRule><SSEAlgorithm>None</SSEAlgorithm></ServerSideEncryptionRule>".into(),
        };
        let body = format!(
            "{HEADER}<BucketInfo><Bucket>{}{}{}{}{}{}{}{}{}{}<AccessControlList>{}</AccessControlList>{}{}</Bucket></BucketInfo>",
            el("AccessMonitor", "Disabled"),
            el("CreationDate", iso(b.created_at)),
            el("ExtranetEndpoint", &ext),
            el("IntranetEndpoint", &ext),
            el("Location", self.location()),
            el("StorageClass", &cfg.storage_class),
            el("TransferAcceleration", "Disabled"),
            el("CrossRegionReplication", "Disabled"),
            el("DataRedundancyType", "LRS"),
            el("Name", &b.name) + &owner_xml(&b.account_id),
            el("Grant", &cfg.acl),
            sse,
            cfg.versioning.as_deref().map(|v| el("Versioning", v)).unwrap_or_default(),
        );
        Ok(ObjectResponse::xml(body))
    }

    pub(crate) async fn get_bucket_location(&self, req: &ObjectRequest) -> Result<ObjectResponse, ApiError> {
        self.bucket(Self::bucket_name(req)).await?;
        Ok(ObjectResponse::xml(format!("{HEADER}{}", el("LocationConstraint", self.location()))))
    }

    /// Put/Get/Delete of a bucket's configuration documents.
    pub(crate) async fn bucket_config(&self, req: &ObjectRequest, op: &str) -> Result<ObjectResponse, ApiError> {
        let name = Self::bucket_name(req);
        let b = self.bucket(name).await?;
        let cfg = Self::config(&b)?;
        let missing =
            |code: &'static str, what: &str| err(404, code, format!("The bucket has no {what} configuration."));
        match op {
            "PutBucketAcl" => {
                let acl = req
                    .header("x-oss-acl")
                    .ok_or_else(|| err(400, "InvalidArgument", "x-oss-acl is required."))?
                    .to_string();
                check_acl(&acl, BUCKET_ACLS)?;
                self.update_config(name, |c| {
                    c.acl = acl.clone();
                    Ok(())
                })
                .await?;
            }
            "GetBucketAcl" => return Ok(ObjectResponse::xml(acl_xml(req, &b.account_id, &cfg.acl))),
            "PutBucketEncryption" => {
                let doc = xml::parse(body_str(req)?, "ServerSideEncryptionRule")?;
                let d = xml::children(doc.root_element(), "ApplyServerSideEncryptionByDefault")
                    .next()
                    .ok_or_else(|| xml::malformed("no <ApplyServerSideEncryptionByDefault>"))?;
                let algorithm = xml::child_text(d, "SSEAlgorithm").unwrap_or("").to_string();
                let kms_key_id = xml::child_text(d, "KMSMasterKeyID").filter(|k| !k.is_empty()).map(str::to_string);
                if !["AES256", "KMS"].contains(&algorithm.as_str()) {
                    return Err(err(
                        400,
                        "InvalidEncryptionAlgorithmError",
                        format!("The encryption algorithm {algorithm:?} is not supported; use AES256 or KMS."),
                    ));
                }
                let rule = SseRule { algorithm, kms_key_id };
                self.update_config(name, |c| {
                    c.encryption = Some(rule.clone());
                    Ok(())
                })
                .await?;
            }
            "GetBucketEncryption" => {
                let r = cfg
                    .encryption
                    .ok_or_else(|| missing("NoSuchServerSideEncryptionRule", "server-side encryption"))?;
                let body = format!(
                    "{HEADER}<ServerSideEncryptionRule><ApplyServerSideEncryptionByDefault>{}{}</ApplyServerSideEncryptionByDefault></ServerSideEncryptionRule>",
                    el("SSEAlgorithm", &r.algorithm),
                    r.kms_key_id.as_deref().map(|k| el("KMSMasterKeyID", k)).unwrap_or_default()
                );
                return Ok(ObjectResponse::xml(body));
            }
            "PutBucketPolicy" => {
                let doc = body_str(req)?.to_string();
                access::validate_policy(&doc)?;
                self.update_config(name, |c| {
                    c.policy = Some(doc.clone());
                    Ok(())
                })
                .await?;
            }
            "GetBucketPolicy" => {
                let p = cfg.policy.ok_or_else(|| missing("NoSuchBucketPolicy", "policy"))?;
                return Ok(ObjectResponse {
                    status: 200,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: p.into(),
                    stream: None,
                });
            }
            "PutBucketCors" | "PutBucketLifecycle" | "PutBucketWebsite" => {
                let root = match op {
                    "PutBucketCors" => "CORSConfiguration",
                    "PutBucketLifecycle" => "LifecycleConfiguration",
                    _ => "WebsiteConfiguration",
                };
                let text = body_str(req)?.to_string();
                let doc = xml::parse(&text, root)?;
                match op {
                    "PutBucketLifecycle" => drop(crate::lifecycle::parse_rules(&doc)?),
                    "PutBucketCors" => drop(crate::cors::parse(&text)?),
                    _ => drop(crate::website::parse(&text)?),
                }
                self.update_config(name, |c| {
                    let slot = match op {
                        "PutBucketCors" => &mut c.cors,
                        "PutBucketLifecycle" => &mut c.lifecycle,
                        _ => &mut c.website,
                    };
                    *slot = Some(text.clone());
                    Ok(())
                })
                .await?;
            }
            "GetBucketCors" => {
                return Ok(ObjectResponse::xml(cfg.cors.ok_or_else(|| missing("NoSuchCORSConfiguration", "CORS"))?));
            }
            "GetBucketLifecycle" => {
                return Ok(ObjectResponse::xml(cfg.lifecycle.ok_or_else(|| missing("NoSuchLifecycle", "lifecycle"))?));
            }
            "GetBucketWebsite" => {
                return Ok(ObjectResponse::xml(
                    cfg.website.ok_or_else(|| missing("NoSuchWebsiteConfiguration", "website"))?,
                ));
            }
            "PutBucketTags" => {
                let tags = parse_tagging(req)?;
                self.update_config(name, |c| {
                    c.tags = tags.clone();
                    Ok(())
                })
                .await?;
            }
            "GetBucketTags" => return Ok(tagging_response(&cfg.tags)),
            "PutBucketVersioning" => {
                let doc = xml::parse(body_str(req)?, "VersioningConfiguration")?;
                let status = xml::child_text(doc.root_element(), "Status").unwrap_or("").to_string();
                if status != "Enabled" && status != "Suspended" {
                    return Err(xml::malformed("Status must be Enabled or Suspended"));
                }
                self.update_config(name, |c| {
                    // Once enabled, versioning can be suspended but never turned off again.
                    if c.versioning.is_none() && status == "Suspended" {
                        return Ok(());
                    }
                    c.versioning = Some(status.clone());
                    Ok(())
                })
                .await?;
            }
            "GetBucketVersioning" => {
                let status = cfg.versioning.as_deref().map(|v| el("Status", v)).unwrap_or_default();
                return Ok(ObjectResponse::xml(format!(
                    "{HEADER}<VersioningConfiguration{}>{status}</VersioningConfiguration>",
                    root_attrs(req)
                )));
            }
            "DeleteBucketEncryption"
            | "DeleteBucketPolicy"
            | "DeleteBucketCors"
            | "DeleteBucketLifecycle"
            | "DeleteBucketWebsite"
            | "DeleteBucketTags" => {
                self.update_config(name, |c| {
                    match op {
                        "DeleteBucketEncryption" => c.encryption = None,
                        "DeleteBucketPolicy" => c.policy = None,
                        "DeleteBucketCors" => c.cors = None,
                        "DeleteBucketLifecycle" => c.lifecycle = None,
                        "DeleteBucketWebsite" => c.website = None,
                        _ => c.tags.clear(),
                    }
                    Ok(())
                })
                .await?;
                return Ok(ObjectResponse::new(204));
            }
            _ => return Err(err(501, "NotImplemented", format!("{op} is not implemented."))),
        }
        Ok(ObjectResponse::new(200))
    }
}
