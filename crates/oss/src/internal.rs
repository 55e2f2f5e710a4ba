//! Service-internal object access: other services of the region (ECS keeps its images here) read
//! and write objects in buckets they own without going through HTTP. The same engine, metadata,
//! replicas and integrity checks as client requests; no client size limit applies.

use crate::service::Oss;
use bytes::Bytes;
use futures::StreamExt;
use nimbus_api::{ApiError, Dialect, ObjectRequest};

fn request(method: &str, bucket: &str, key: Option<&str>, body: Bytes) -> ObjectRequest {
    ObjectRequest {
        request_id: nimbus_core::ids::request_id(),
        dialect: Dialect::Oss,
        method: method.into(),
        bucket: Some(bucket.into()),
        key: key.map(str::to_string),
        query: vec![],
        headers: vec![],
        body,
        upload: None,
        host: "internal".into(),
        source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
        secure: true,
    }
}

impl Oss {
    /// Makes bucket `name` exist, owned by `account` (private). Another owner is an error.
    pub async fn ensure_internal_bucket(&self, name: &str, account: &str) -> Result<(), ApiError> {
        if let Some(b) = self.store().get_bucket(name).await.map_err(|e| {
            tracing::error!(error = %e, "internal object access");
            ApiError::internal()
        })? {
            if b.account_id == account {
                return Ok(());
            }
            return Err(ApiError::new(409, "BucketAlreadyExists", format!("bucket {name} belongs to another account")));
        }
        let cfg = serde_json::to_value(crate::model::BucketConfig { acl: "private".into(), ..Default::default() })
            .map_err(|_| ApiError::internal())?;
        match self.store().create_bucket(name, account, &cfg).await {
            Ok(_) | Err(nimbus_store::StoreError::AlreadyExists) => Ok(()),
            Err(e) => Err({
                tracing::error!(error = %e, "internal object access");
                ApiError::internal()
            }),
        }
    }

    /// Writes an object; returns its ETag.
    pub async fn put_internal(&self, bucket: &str, key: &str, body: Bytes) -> Result<String, ApiError> {
        let resp = self.put_object_unchecked(&request("PUT", bucket, Some(key), body)).await?;
        Ok(resp
            .headers
            .iter()
            .find(|(k, _)| k == "etag")
            .map(|(_, v)| v.trim_matches('"').to_string())
            .unwrap_or_default())
    }

    /// Reads a whole object (verified against its replicas' digests on the way).
    pub async fn get_internal(&self, bucket: &str, key: &str) -> Result<Bytes, ApiError> {
        let resp = self.get_object(&request("GET", bucket, Some(key), Bytes::new()), "GetObject").await?;
        match resp.stream {
            None => Ok(resp.body),
            Some(mut s) => {
                let mut out = Vec::new();
                while let Some(chunk) = s.next().await {
                    out.extend_from_slice(&chunk.map_err(|e| {
                        tracing::error!(error = %e, "internal object access");
                        ApiError::internal()
                    })?);
                }
                Ok(Bytes::from(out))
            }
        }
    }

    /// Deletes an object; absent is fine.
    pub async fn delete_internal(&self, bucket: &str, key: &str) -> Result<(), ApiError> {
        self.delete_object(&request("DELETE", bucket, Some(key), Bytes::new())).await.map(|_| ())
    }
}
