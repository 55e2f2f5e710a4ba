//! The OSS service: routing a REST request to its operation, the facts authorization needs, and
//! the handlers (in `bucket.rs`, `object.rs`, `multipart.rs`, `listing.rs`).

use crate::engine::Engine;
use crate::model::{BucketConfig, ObjectMeta, Sse};
use crate::{access, names};
use nimbus_api::{
    Access, ApiError, Authorizer, BoxFut, Caller, Dialect, ObjectOp, ObjectRequest, ObjectResponse, ObjectService,
    PrincipalType, Requester, ResourceAccess, Verdict,
};
use nimbus_core::region::Region;
use nimbus_core::secret::KeyProvider;
use nimbus_kms::Envelope;
use nimbus_store::Store;
use nimbus_store::buckets::BucketRow;
use nimbus_store::objects::ObjectRow;
use nimbus_store::versions::{NULL_VERSION, Versioning};
use rand::RngCore;
use serde_json::{Map, Value};
use std::sync::Arc;

pub struct Oss {
    pub(crate) store: Store,
    pub(crate) engine: Arc<Engine>,
    pub(crate) envelope: Arc<Envelope>,
    pub(crate) keys: Arc<dyn KeyProvider>,
    pub(crate) authorizer: Arc<dyn Authorizer>,
    pub(crate) region: Arc<Region>,
    /// Largest single PUT / part / append (bytes); bigger uploads use multipart.
    pub(crate) max_object_bytes: u64,
}

/// The versioning state a bucket's configuration records.
pub(crate) fn versioning(cfg: &BucketConfig) -> Versioning {
    match cfg.versioning.as_deref() {
        Some("Enabled") => Versioning::Enabled,
        Some("Suspended") => Versioning::Suspended,
        _ => Versioning::Off,
    }
}

/// A new version's order: microseconds since the epoch, strictly increasing in this process.
pub(crate) fn next_seq() -> i64 {
    static LAST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let now = nimbus_core::clock::now_millis() * 1000;
    let mut prev = LAST.load(std::sync::atomic::Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange(
            prev,
            next,
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
        ) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

/// A new object's version id: random when versioning is enabled, `null` otherwise.
pub(crate) fn new_version_id(mode: Versioning) -> String {
    match mode {
        Versioning::Enabled => {
            let mut b = [0u8; 24];
            rand::rng().fill_bytes(&mut b);
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b)
        }
        _ => NULL_VERSION.to_string(),
    }
}

pub(crate) fn err(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message)
}

pub(crate) fn no_such_bucket() -> ApiError {
    err(404, "NoSuchBucket", "The specified bucket does not exist.")
}

pub(crate) fn no_such_key() -> ApiError {
    err(404, "NoSuchKey", "The specified key does not exist.")
}

pub(crate) fn store_err(e: nimbus_store::StoreError) -> ApiError {
    tracing::error!(error = %e, "OSS metadata store failure");
    ApiError::internal()
}

/// The RAM resource ARN of a bucket or object.
pub(crate) fn arn(owner: &str, bucket: Option<&str>, key: Option<&str>) -> String {
    match (bucket, key) {
        (Some(b), Some(k)) => format!("acs:oss:*:{owner}:{b}/{k}"),
        (Some(b), None) => format!("acs:oss:*:{owner}:{b}"),
        _ => format!("acs:oss:*:{owner}:*"),
    }
}

fn op(name: &'static str, ram_action: &'static str, access: Access) -> ObjectOp {
    ObjectOp { name, ram_action, access }
}

impl Oss {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        engine: Arc<Engine>,
        envelope: Arc<Envelope>,
        keys: Arc<dyn KeyProvider>,
        authorizer: Arc<dyn Authorizer>,
        region: Arc<Region>,
        max_object_bytes: u64,
    ) -> Self {
        Oss { store, engine, envelope, keys, authorizer, region, max_object_bytes }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub(crate) fn location(&self) -> String {
        format!("oss-{}", self.region.id)
    }

    pub(crate) async fn bucket(&self, name: &str) -> Result<BucketRow, ApiError> {
        self.store.get_bucket(name).await.map_err(store_err)?.ok_or_else(no_such_bucket)
    }

    pub(crate) fn config(b: &BucketRow) -> Result<BucketConfig, ApiError> {
        serde_json::from_value(b.config.clone()).map_err(|e| {
            tracing::error!(bucket = b.name, error = %e, "bucket configuration unreadable");
            ApiError::internal()
        })
    }

    /// Read-modify-write of a bucket's configuration, retried when another writer got there first.
    pub(crate) async fn update_config(
        &self,
        name: &str,
        f: impl Fn(&mut BucketConfig) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        for _ in 0..8 {
            let mut b = self.bucket(name).await?;
            let mut cfg = Self::config(&b)?;
            f(&mut cfg)?;
            b.config = serde_json::to_value(&cfg).map_err(|_| ApiError::internal())?;
            match self.store.update_bucket(&b).await {
                Ok(_) => return Ok(()),
                Err(nimbus_store::StoreError::Conflict) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(err(409, "OperationConflict", "The bucket is being changed by another request; retry."))
    }

    pub(crate) async fn object(&self, bucket: &str, key: &str) -> Result<(ObjectRow, ObjectMeta), ApiError> {
        let row = self.store.get_object_row(bucket, key).await.map_err(store_err)?.ok_or_else(no_such_key)?;
        let meta = serde_json::from_value(row.meta.clone()).map_err(|e| {
            tracing::error!(bucket, key, error = %e, "object metadata unreadable");
            ApiError::internal()
        })?;
        Ok((row, meta))
    }

    fn kms_context(bucket: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("acs:oss:bucket".into(), Value::from(bucket));
        m
    }

    /// The encryption a new object gets: the request's headers, else the bucket's default rule.
    /// Returns how its data key is kept and the key itself.
    pub(crate) async fn new_sse(
        &self,
        req: &ObjectRequest,
        owner: &str,
        bucket: &str,
        cfg: &BucketConfig,
    ) -> Result<Option<(Sse, [u8; 32])>, ApiError> {
        let (algorithm, key_id) = match req.header("x-oss-server-side-encryption") {
            Some(a) => (a.to_string(), req.header("x-oss-server-side-encryption-key-id").map(str::to_string)),
            None => match &cfg.encryption {
                Some(rule) => (rule.algorithm.clone(), rule.kms_key_id.clone()),
                None => return Ok(None),
            },
        };
        match algorithm.as_str() {
            "AES256" => {
                let mut k = [0u8; 32];
                rand::rng().fill_bytes(&mut k);
                let wrapped = self.keys.root_key().wrap(&format!("oss-sse:{bucket}"), &k);
                Ok(Some((Sse { algorithm, kms_key_id: None, wrapped_key: wrapped }, k)))
            }
            "KMS" => {
                // Without a named key, the account's OSS-managed master key (alias/acs/oss).
                let key_id = match key_id.filter(|k| !k.is_empty()) {
                    Some(k) => k,
                    None => self.envelope.managed_key(owner, "oss").await?,
                };
                let dk = self.envelope.generate_data_key(owner, &key_id, &Self::kms_context(bucket), "oss").await?;
                Ok(Some((Sse { algorithm, kms_key_id: Some(key_id), wrapped_key: dk.blob }, *dk.plaintext)))
            }
            other => Err(err(
                400,
                "InvalidEncryptionAlgorithmError",
                format!("The encryption algorithm {other:?} is not supported; use AES256 or KMS."),
            )),
        }
    }

    /// The data key of an existing object (its KMS master key must be enabled).
    pub(crate) async fn data_key(
        &self,
        owner: &str,
        bucket: &str,
        sse: &Option<Sse>,
    ) -> Result<Option<[u8; 32]>, ApiError> {
        let Some(s) = sse else { return Ok(None) };
        let plain = match s.algorithm.as_str() {
            "KMS" => {
                let k = self
                    .envelope
                    .decrypt_data_key(owner, &s.wrapped_key, &Self::kms_context(bucket), "oss")
                    .await
                    .map_err(|e| {
                        err(
                            403,
                            "KmsServiceNotEnabled",
                            format!("The object's KMS master key cannot be used: {}", e.message),
                        )
                    })?;
                *k
            }
            _ => {
                let k = self.keys.root_key().unwrap(&format!("oss-sse:{bucket}"), &s.wrapped_key).map_err(|e| {
                    tracing::error!(error = %e, "cannot unwrap an AES256 object key");
                    ApiError::internal()
                })?;
                k.as_slice().try_into().map_err(|_| ApiError::internal())?
            }
        };
        Ok(Some(plain))
    }

    /// Can `caller` read `bucket/key` (the source of a copy)? The same rules as any request.
    /// `object_acl` is the object's own ACL; `None` when there is no such object, which is then
    /// judged like one that defers to the bucket's ACL (so a denial does not depend on existence).
    pub(crate) async fn may_read(
        &self,
        caller: Option<&Caller>,
        req: &ObjectRequest,
        bucket: &BucketRow,
        key: &str,
        object_acl: Option<&str>,
    ) -> bool {
        let cfg = match Self::config(bucket) {
            Ok(c) => c,
            Err(_) => return false,
        };
        let resource = arn(&bucket.account_id, Some(&bucket.name), Some(key));
        let ra = ResourceAccess {
            owner: Some(bucket.account_id.clone()),
            bucket_missing: false,
            resource: resource.clone(),
            bucket_policy: access::policy_verdict(
                cfg.policy.as_deref(),
                caller,
                "oss:GetObject",
                &resource,
                req.source_ip,
                req.secure,
            ),
            acl_allows: access::acl_allows(&cfg.acl, object_acl, Access::Read),
            objects: vec![],
            ram_action: None,
        };
        let who =
            Requester::of(self.authorizer.as_ref(), caller, Some(&bucket.account_id), "oss:GetObject", &resource).await;
        ra.permits(who)
    }
}

/// Sub-resources naming configuration documents of a bucket, with their operation names.
const BUCKET_CONFIGS: &[(&str, [&str; 3])] = &[
    ("acl", ["PutBucketAcl", "GetBucketAcl", ""]),
    ("encryption", ["PutBucketEncryption", "GetBucketEncryption", "DeleteBucketEncryption"]),
    ("cors", ["PutBucketCors", "GetBucketCors", "DeleteBucketCors"]),
    ("lifecycle", ["PutBucketLifecycle", "GetBucketLifecycle", "DeleteBucketLifecycle"]),
    ("policy", ["PutBucketPolicy", "GetBucketPolicy", "DeleteBucketPolicy"]),
    ("tagging", ["PutBucketTags", "GetBucketTags", "DeleteBucketTags"]),
    ("website", ["PutBucketWebsite", "GetBucketWebsite", "DeleteBucketWebsite"]),
    ("versioning", ["PutBucketVersioning", "GetBucketVersioning", ""]),
];

/// `oss:<Name>` for every operation name (RAM actions are the operation names in OSS).
macro_rules! ops {
    ($($name:literal),* $(,)?) => {
        fn ram_action_of(name: &str) -> Option<(&'static str, &'static str)> {
            match name {
                $($name => Some(($name, concat!("oss:", $name))),)*
                _ => None,
            }
        }
    };
}

ops!(
    "PutBucketAcl",
    "GetBucketAcl",
    "PutBucketEncryption",
    "GetBucketEncryption",
    "DeleteBucketEncryption",
    "PutBucketCors",
    "GetBucketCors",
    "DeleteBucketCors",
    "PutBucketLifecycle",
    "GetBucketLifecycle",
    "DeleteBucketLifecycle",
    "PutBucketPolicy",
    "GetBucketPolicy",
    "DeleteBucketPolicy",
    "PutBucketTags",
    "GetBucketTags",
    "DeleteBucketTags",
    "PutBucketWebsite",
    "GetBucketWebsite",
    "DeleteBucketWebsite",
    "PutBucketVersioning",
    "GetBucketVersioning",
);

fn config_op(name: &str, access: Access) -> Option<ObjectOp> {
    let (name, ram) = ram_action_of(name)?;
    Some(op(name, ram, access))
}

impl ObjectService for Oss {
    fn route(&self, req: &ObjectRequest) -> Result<ObjectOp, ApiError> {
        use Access::{Read, Write};
        let m = req.method.as_str();
        let Some(bucket) = &req.bucket else {
            return match m {
                "GET" => Ok(op("ListBuckets", "oss:ListBuckets", Read)),
                _ => Err(err(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")),
            };
        };
        names::check_bucket(bucket)?;
        if m == "OPTIONS" {
            // A browser's CORS preflight: no credentials by design; the bucket's CORS rules decide.
            return Ok(op("OptionObject", "oss:OptionObject", Read));
        }
        let q = |n: &str| req.has_query(n);
        let Some(key) = &req.key else {
            for (sub, [put, get, del]) in BUCKET_CONFIGS {
                if q(sub) {
                    let found = match m {
                        "PUT" => config_op(put, Write),
                        "GET" => config_op(get, Read),
                        "DELETE" if !del.is_empty() => config_op(del, Write),
                        _ => None,
                    };
                    if let Some(o) = found {
                        return Ok(o);
                    }
                }
            }
            return Ok(match m {
                "PUT" => op("PutBucket", "oss:PutBucket", Write),
                "GET" if q("bucketInfo") => op("GetBucketInfo", "oss:GetBucketInfo", Read),
                "GET" if q("location") => op("GetBucketLocation", "oss:GetBucketLocation", Read),
                "GET" if q("uploads") => op("ListMultipartUploads", "oss:ListMultipartUploads", Read),
                "GET" if q("versions") => op("ListObjectVersions", "oss:ListObjectVersions", Read),
                "GET" if req.query("list-type") == Some("2") => op("ListObjectsV2", "oss:ListObjects", Read),
                "GET" => op("ListObjects", "oss:ListObjects", Read),
                "HEAD" => op("HeadBucket", "oss:GetBucketInfo", Read),
                "DELETE" => op("DeleteBucket", "oss:DeleteBucket", Write),
                "POST" if q("delete") => op("DeleteMultipleObjects", "oss:DeleteObject", Write),
                _ => {
                    return Err(err(
                        405,
                        "MethodNotAllowed",
                        "The specified method is not allowed against this resource.",
                    ));
                }
            });
        };
        names::check_key(key)?;
        let copy = req.header("x-oss-copy-source").is_some();
        Ok(match m {
            "PUT" if q("acl") => op("PutObjectAcl", "oss:PutObjectAcl", Write),
            "PUT" if q("tagging") => op("PutObjectTagging", "oss:PutObjectTagging", Write),
            "PUT" if q("uploadId") && copy => op("UploadPartCopy", "oss:PutObject", Write),
            "PUT" if q("uploadId") => op("UploadPart", "oss:PutObject", Write),
            "PUT" if copy => op("CopyObject", "oss:PutObject", Write),
            "PUT" => op("PutObject", "oss:PutObject", Write),
            "GET" if q("acl") => op("GetObjectAcl", "oss:GetObjectAcl", Read),
            "GET" if q("tagging") => op("GetObjectTagging", "oss:GetObjectTagging", Read),
            "GET" if q("uploadId") => op("ListParts", "oss:ListParts", Read),
            "GET" => op("GetObject", "oss:GetObject", Read),
            "HEAD" if q("objectMeta") => op("GetObjectMeta", "oss:GetObject", Read),
            "HEAD" => op("HeadObject", "oss:GetObject", Read),
            "DELETE" if q("uploadId") => op("AbortMultipartUpload", "oss:AbortMultipartUpload", Write),
            "DELETE" if q("tagging") => op("DeleteObjectTagging", "oss:DeleteObjectTagging", Write),
            "DELETE" => op("DeleteObject", "oss:DeleteObject", Write),
            "POST" if q("uploads") => op("InitiateMultipartUpload", "oss:PutObject", Write),
            "POST" if q("uploadId") => op("CompleteMultipartUpload", "oss:PutObject", Write),
            "POST" if q("append") => op("AppendObject", "oss:PutObject", Write),
            _ => {
                return Err(err(405, "MethodNotAllowed", "The specified method is not allowed against this resource."));
            }
        })
    }

    fn access<'a>(
        &'a self,
        op: &'a ObjectOp,
        req: &'a ObjectRequest,
        caller: Option<&'a Caller>,
    ) -> BoxFut<'a, Result<ResourceAccess, ApiError>> {
        Box::pin(async move {
            let caller_account = caller.map(|c| c.account_id.as_str()).unwrap_or("");
            let Some(bucket) = &req.bucket else {
                return Ok(ResourceAccess {
                    owner: None,
                    bucket_missing: false,
                    resource: arn(caller_account, None, None),
                    bucket_policy: Verdict::NotApplicable,
                    acl_allows: false,
                    objects: vec![],
                    ram_action: None,
                });
            };
            let Some(b) = self.store.get_bucket(bucket).await.map_err(store_err)? else {
                return Ok(ResourceAccess {
                    owner: None,
                    bucket_missing: op.name != "PutBucket",
                    resource: arn(caller_account, Some(bucket), None),
                    bucket_policy: Verdict::NotApplicable,
                    acl_allows: false,
                    objects: vec![],
                    ram_action: None,
                });
            };
            let cfg = Self::config(&b)?;
            let resource = arn(&b.account_id, Some(bucket), req.key.as_deref());
            // The owning account's root may always read and replace its bucket's policy, so no
            // policy (`Deny * oss:*` included) can lock the owner out of the bucket for good.
            let owner_root =
                caller.is_some_and(|c| c.account_id == b.account_id && c.principal_type == PrincipalType::Root);
            let bucket_policy =
                if owner_root && matches!(op.name, "GetBucketPolicy" | "PutBucketPolicy" | "DeleteBucketPolicy") {
                    Verdict::NotApplicable
                } else {
                    access::policy_verdict(
                        cfg.policy.as_deref(),
                        caller,
                        op.ram_action,
                        &resource,
                        req.source_ip,
                        req.secure,
                    )
                };
            // ACLs grant object reads and writes and listing, never configuration changes.
            let acl_applies = matches!(
                op.name,
                "GetObject"
                    | "HeadObject"
                    | "GetObjectMeta"
                    | "ListObjects"
                    | "ListObjectsV2"
                    | "PutObject"
                    | "DeleteObject"
                    | "AppendObject"
                    | "InitiateMultipartUpload"
                    | "UploadPart"
                    | "CompleteMultipartUpload"
                    | "AbortMultipartUpload"
                    | "ListParts"
                    | "DeleteMultipleObjects"
                    | "HeadBucket"
            );
            let object_acl = match (&req.key, op.access) {
                (Some(k), Access::Read) if acl_applies => self
                    .store
                    .get_object_row(bucket, k)
                    .await
                    .map_err(store_err)?
                    .and_then(|r| r.meta.get("acl").and_then(Value::as_str).map(str::to_string)),
                _ => None,
            };
            // A batch delete touches every object it names: each is authorized as its own
            // DeleteObject (RAM and bucket policy on `bucket/key`), not only the bucket.
            let mut objects = vec![];
            if op.name == "DeleteMultipleObjects" {
                let (_, keys) = crate::object::delete_list(req)?;
                for (k, _) in keys {
                    let resource = arn(&b.account_id, Some(bucket), Some(&k));
                    let bucket_policy = access::policy_verdict(
                        cfg.policy.as_deref(),
                        caller,
                        "oss:DeleteObject",
                        &resource,
                        req.source_ip,
                        req.secure,
                    );
                    objects.push(ResourceAccess {
                        owner: Some(b.account_id.clone()),
                        bucket_missing: false,
                        resource,
                        bucket_policy,
                        acl_allows: access::acl_allows(&cfg.acl, None, Access::Write),
                        objects: vec![],
                        ram_action: Some("oss:DeleteObject"),
                    });
                }
            }
            Ok(ResourceAccess {
                owner: Some(b.account_id.clone()),
                bucket_missing: false,
                resource,
                bucket_policy,
                acl_allows: op.name == "OptionObject"
                    || (acl_applies && access::acl_allows(&cfg.acl, object_acl.as_deref(), op.access)),
                objects,
                ram_action: None,
            })
        })
    }

    fn handle<'a>(
        &'a self,
        op: &'a ObjectOp,
        req: ObjectRequest,
        caller: Option<&'a Caller>,
    ) -> BoxFut<'a, Result<ObjectResponse, ApiError>> {
        Box::pin(async move {
            if op.name == "OptionObject" {
                return self.preflight(&req).await;
            }
            let origin = req.header("origin").map(str::to_string);
            let (bucket, method) = (req.bucket.clone(), req.method.clone());
            let mut result = if caller.is_none() && matches!(op.name, "ListObjects" | "GetObject" | "HeadObject") {
                self.website(op, req).await
            } else {
                self.dispatch(op, req, caller).await
            };
            if let (Ok(resp), Some(origin), Some(bucket)) = (result.as_mut(), origin, bucket) {
                resp.headers.extend(self.cors_headers(&bucket, &origin, &method).await);
            }
            result
        })
    }
}

impl Oss {
    /// Runs the operation.
    pub(crate) fn dispatch<'a>(
        &'a self,
        op: &'a ObjectOp,
        req: ObjectRequest,
        caller: Option<&'a Caller>,
    ) -> BoxFut<'a, Result<ObjectResponse, ApiError>> {
        Box::pin(async move {
            match op.name {
                "ListBuckets" => self.list_buckets(&req, caller).await,
                "PutBucket" => self.put_bucket(&req, caller).await,
                "DeleteBucket" => self.delete_bucket(&req).await,
                "HeadBucket" => self.head_bucket(&req).await,
                "GetBucketInfo" => self.get_bucket_info(&req).await,
                "GetBucketLocation" => self.get_bucket_location(&req).await,
                "ListObjects" | "ListObjectsV2" => self.list_objects(&req, op.name == "ListObjectsV2").await,
                "ListObjectVersions" => self.list_versions(&req).await,
                "DeleteMultipleObjects" => self.delete_multiple(&req).await,
                "PutObject" => self.put_object(&req, caller).await,
                "CopyObject" => self.copy_object(&req, caller).await,
                "AppendObject" => self.append_object(&req, caller).await,
                "GetObject" | "HeadObject" | "GetObjectMeta" => self.get_object(&req, op.name).await,
                "DeleteObject" => self.delete_object(&req).await,
                "PutObjectAcl" | "GetObjectAcl" => self.object_acl(&req, op.name == "PutObjectAcl").await,
                "PutObjectTagging" | "GetObjectTagging" | "DeleteObjectTagging" => {
                    self.object_tagging(&req, op.name).await
                }
                "InitiateMultipartUpload" => self.initiate_upload(&req, caller).await,
                "UploadPart" | "UploadPartCopy" => self.upload_part(&req, caller, op.name == "UploadPartCopy").await,
                "CompleteMultipartUpload" => self.complete_upload(&req).await,
                "AbortMultipartUpload" => self.abort_upload(&req).await,
                "ListParts" => self.list_parts(&req).await,
                "ListMultipartUploads" => self.list_uploads(&req).await,
                name if name.starts_with("PutBucket")
                    || name.starts_with("GetBucket")
                    || name.starts_with("DeleteBucket") =>
                {
                    self.bucket_config(&req, name).await
                }
                _ => Err(err(501, "NotImplemented", format!("{} is not implemented.", op.name))),
            }
        })
    }

    /// `OPTIONS`: answers a CORS preflight from the bucket's rules.
    async fn preflight(&self, req: &ObjectRequest) -> Result<ObjectResponse, ApiError> {
        let forbidden = || err(403, "AccessForbidden", "CORSResponse: This CORS request is not allowed.");
        let b = self.bucket(req.bucket.as_deref().unwrap_or_default()).await?;
        let cfg = Self::config(&b)?;
        let (Some(origin), Some(method)) = (req.header("origin"), req.header("access-control-request-method")) else {
            return Err(err(400, "InvalidArgument", "A preflight needs Origin and Access-Control-Request-Method."));
        };
        let rules = match &cfg.cors {
            Some(text) => crate::cors::parse(text)?,
            None => return Err(forbidden()),
        };
        let headers: Vec<String> = req
            .header("access-control-request-headers")
            .map(|h| h.split(',').map(|x| x.trim().to_ascii_lowercase()).filter(|x| !x.is_empty()).collect())
            .unwrap_or_default();
        let rule = crate::cors::find(&rules, origin, method, &headers).ok_or_else(forbidden)?;
        let mut r = ObjectResponse::new(200);
        r.headers = crate::cors::response_headers(rule, origin, true);
        Ok(r)
    }

    /// CORS headers for an actual request from `origin`, if a rule of the bucket allows it.
    async fn cors_headers(&self, bucket: &str, origin: &str, method: &str) -> Vec<(String, String)> {
        let Ok(Some(b)) = self.store.get_bucket(bucket).await else { return vec![] };
        let Some(text) = Self::config(&b).ok().and_then(|c| c.cors) else { return vec![] };
        let Ok(rules) = crate::cors::parse(&text) else { return vec![] };
        crate::cors::find(&rules, origin, method, &[])
            .map(|r| crate::cors::response_headers(r, origin, false))
            .unwrap_or_default()
    }

    /// Static website hosting for anonymous readers: the bucket root and `dir/` serve the index
    /// document; a missing key serves the error document with 404.
    async fn website(&self, op: &ObjectOp, mut req: ObjectRequest) -> Result<ObjectResponse, ApiError> {
        let bucket = req.bucket.clone().unwrap_or_default();
        let site = match self.bucket(&bucket).await.and_then(|b| Self::config(&b)) {
            Ok(cfg) => cfg.website.as_deref().and_then(|w| crate::website::parse(w).ok()),
            Err(e) => return Err(e),
        };
        let Some(site) = site else { return self.dispatch(op, req, None).await };
        let target = match (op.name, &req.key) {
            ("ListObjects", _) if req.query.is_empty() => Some(site.index.clone()),
            ("GetObject" | "HeadObject", Some(k)) if k.ends_with('/') => Some(format!("{k}{}", site.index)),
            ("ListObjects", _) => return self.dispatch(op, req, None).await,
            _ => None,
        };
        let get = ObjectOp {
            name: if op.name == "HeadObject" { "HeadObject" } else { "GetObject" },
            ram_action: "oss:GetObject",
            access: Access::Read,
        };
        if let Some(t) = target {
            req.key = Some(t);
        }
        let key = req.key.clone().unwrap_or_default();
        // The page itself must be readable by everyone (its own ACL may say otherwise).
        if let Ok(b) = self.bucket(&bucket).await {
            let acl = self
                .store
                .get_object_row(&bucket, &key)
                .await
                .ok()
                .flatten()
                .and_then(|r| r.meta.get("acl").and_then(Value::as_str).map(str::to_string));
            if !self.may_read(None, &req, &b, &key, acl.as_deref()).await {
                return Err(err(403, "AccessDenied", "You have no right to access this object."));
            }
        }
        match self.dispatch(&get, req.clone(), None).await {
            Err(e) if e.code == "NoSuchKey" && site.error.is_some() => {
                req.key = site.error.clone();
                let mut r = self.dispatch(&get, req, None).await.map_err(|_| e)?;
                r.status = 404;
                Ok(r)
            }
            other => other,
        }
    }
}

/// S3 wants its namespace on result documents; OSS clients ignore it either way.
pub(crate) fn root_attrs(req: &ObjectRequest) -> &'static str {
    match req.dialect {
        Dialect::S3 => " xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"",
        Dialect::Oss => "",
    }
}
