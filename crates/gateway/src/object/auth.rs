//! Authentication of object requests: OSS v1 and v4, S3 SigV4, each as a header or presigned
//! query; no signature at all is an anonymous request (the ACL and bucket policy decide).

use super::body::BodyRule;
use super::chunked::ChunkSigning;
use super::{ObjectGateway, Parsed, caller_of, header};
use crate::signature::oss::{self, SubresourceSet, same};
use crate::signature::s3;
use chrono::{NaiveDateTime, TimeZone, Utc};
use http::request::Parts;
use nimbus_api::{ApiError, Caller, Credential, Dialect};
use nimbus_core::clock::now_millis;

fn q<'a>(p: &'a Parsed, name: &str) -> Option<&'a str> {
    p.req.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn wire<'a>(p: &'a Parsed, name: &str) -> Option<&'a str> {
    p.wire_headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn denied(code: &'static str, msg: impl Into<String>) -> ApiError {
    ApiError::new(403, code, msg)
}

fn expired() -> ApiError {
    denied("AccessDenied", "Request has expired.")
}

/// The longest a presigned link may live, in every form (S3's and OSS v4's limit: 7 days).
const MAX_PRESIGNED_SECS: i64 = 604_800;

fn query_error(msg: impl Into<String>) -> ApiError {
    ApiError::new(400, "AuthorizationQueryParametersError", msg)
}

/// S3 dialect: every `x-amz-*` and `x-oss-*` header that is present must be signed, because the
/// service acts on them (`x-amz-copy-source`, `x-amz-acl`, metadata, SSE, …). `exempt` names the
/// few the signature binds otherwise or the server ignores in that form.
fn unsigned_headers(p: &Parsed, signed: &[String], exempt: &[&str]) -> Result<(), ApiError> {
    let mut missing: Vec<&str> = p
        .wire_headers
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| k.starts_with("x-amz-") || k.starts_with("x-oss-"))
        .filter(|k| !exempt.contains(k) && !signed.iter().any(|s| s == k))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort_unstable();
    missing.dedup();
    Err(denied("AccessDenied", "There were headers present in the request which were not signed")
        .with_field("HeadersNotSigned", missing.join(", ")))
}

/// `yyyymmddThhmmssZ` → ms.
fn parse_compact(s: &str) -> Option<i64> {
    NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ").ok().map(|t| Utc.from_utc_datetime(&t).timestamp_millis())
}

fn parse_http_date(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(s.trim()).ok().map(|d| d.timestamp_millis())
}

fn mismatch(ak: &str, given: &str, sts: &str) -> ApiError {
    let bytes = sts.as_bytes().iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
    denied("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
        .with_field("OSSAccessKeyId", ak)
        .with_field("SignatureProvided", given)
        .with_field("StringToSign", sts)
        .with_field("StringToSignBytes", bytes)
}

impl ObjectGateway {
    fn check_window(&self, at_ms: i64) -> Result<(), ApiError> {
        if (now_millis() - at_ms).abs() > self.cfg.timestamp_window.as_millis() as i64 {
            return Err(denied(
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
            ));
        }
        Ok(())
    }

    async fn credential(&self, ak: &str, token: Option<&str>) -> Result<Credential, ApiError> {
        let cred = self
            .credentials
            .lookup(ak, token.filter(|t| !t.is_empty()))
            .await
            .map_err(|e| ApiError::new(403, e.code, e.message))?
            .ok_or_else(|| {
                denied("InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our records.")
            })?;
        if !cred.active {
            return Err(denied("InvalidAccessKeyId", "The OSS Access Key Id you provided is disabled."));
        }
        Ok(cred)
    }

    /// Verifies the request from its headers and query alone and returns who sent it (`None`:
    /// anonymous) and what the signature says about the body, which is read only afterwards
    /// (and only if the request is authorized).
    pub(crate) async fn authenticate(
        &self,
        parts: &Parts,
        p: &mut Parsed,
    ) -> Result<(Option<Caller>, BodyRule), ApiError> {
        let authorization = header(parts, "authorization").map(str::to_string);
        let caller = match (p.req.dialect, authorization.as_deref()) {
            (Dialect::S3, Some(a)) if a.starts_with(s3::ALGORITHM) => self.s3_header(p, a).await?,
            (Dialect::S3, Some(_)) => {
                return Err(ApiError::new(
                    400,
                    "InvalidRequest",
                    "Only AWS Signature Version 4 is supported; configure the client for s3v4.",
                ));
            }
            (Dialect::S3, None) => self.s3_presigned(p).await?,
            (Dialect::Oss, Some(a)) if a.starts_with(oss::V4_ALGORITHM) => self.oss_v4_header(p, a).await?,
            (Dialect::Oss, Some(a)) if a.starts_with("OSS ") => self.oss_v1_header(p, a).await?,
            (Dialect::Oss, Some(_)) => {
                return Err(ApiError::new(
                    400,
                    "InvalidArgument",
                    "Authorization must be OSS (v1) or OSS4-HMAC-SHA256 (v4).",
                ));
            }
            (Dialect::Oss, None) if q(p, "x-oss-signature-version").is_some() => self.oss_v4_presigned(p).await?,
            (Dialect::Oss, None) if q(p, "OSSAccessKeyId").is_some() || q(p, "Signature").is_some() => {
                self.oss_v1_presigned(p).await?
            }
            (Dialect::Oss, None) => (None, BodyRule::Plain),
        };
        Ok(caller)
    }

    fn v1_verify(&self, p: &Parsed, cred: &Credential, date: &str, given: &str) -> Result<(), ApiError> {
        let md5 = wire(p, "content-md5").unwrap_or("");
        let ctype = wire(p, "content-type").unwrap_or("");
        let mut first = None;
        for set in [SubresourceSet::Oss2, SubresourceSet::OssV2] {
            let resource = oss::v1_resource(p.req.bucket.as_deref(), p.req.key.as_deref(), &p.req.query, set);
            let sts = oss::v1_string_to_sign(&p.req.method, md5, ctype, date, &p.wire_headers, &resource);
            if same(&oss::v1_sign(cred.secret.expose(), &sts), given) {
                return Ok(());
            }
            first.get_or_insert(sts);
        }
        Err(mismatch(&cred.access_key_id, given, &first.unwrap_or_default()))
    }

    async fn oss_v1_header(&self, p: &mut Parsed, a: &str) -> Result<(Option<Caller>, BodyRule), ApiError> {
        let (ak, sig) = a["OSS ".len()..].trim().rsplit_once(':').ok_or_else(|| {
            ApiError::new(400, "InvalidArgument", "Authorization must be `OSS AccessKeyId:Signature`.")
        })?;
        let date = wire(p, "date").or_else(|| wire(p, "x-oss-date")).unwrap_or("").to_string();
        let at =
            parse_http_date(&date).ok_or_else(|| denied("AccessDenied", "The request needs a valid Date header."))?;
        self.check_window(at)?;
        let token = wire(p, "x-oss-security-token").or_else(|| wire(p, "security-token")).map(str::to_string);
        let cred = self.credential(ak, token.as_deref()).await?;
        self.v1_verify(p, &cred, &date, sig)?;
        Ok((Some(caller_of(&cred)), BodyRule::Plain))
    }

    async fn oss_v1_presigned(&self, p: &mut Parsed) -> Result<(Option<Caller>, BodyRule), ApiError> {
        let (Some(ak), Some(expires), Some(sig)) = (q(p, "OSSAccessKeyId"), q(p, "Expires"), q(p, "Signature")) else {
            return Err(denied("AccessDenied", "A presigned URL needs OSSAccessKeyId, Expires and Signature."));
        };
        let (ak, sig, expires) = (ak.to_string(), sig.to_string(), expires.to_string());
        let until: i64 =
            expires.parse().map_err(|_| denied("AccessDenied", "Expires must be a Unix time in seconds."))?;
        let until_ms = until.saturating_mul(1000);
        if until_ms < now_millis() {
            return Err(expired());
        }
        // v1 links carry no start time: the cap is on how far ahead of our clock they end.
        if until_ms - now_millis() > MAX_PRESIGNED_SECS * 1000 + self.cfg.timestamp_window.as_millis() as i64 {
            return Err(denied("AccessDenied", "Expires must be at most 604800 seconds (7 days) from now."));
        }
        let token = q(p, "security-token").map(str::to_string);
        let cred = self.credential(&ak, token.as_deref()).await?;
        self.v1_verify(p, &cred, &expires, &sig)?;
        Ok((Some(caller_of(&cred)), BodyRule::Plain))
    }

    #[allow(clippy::too_many_arguments)]
    fn v4_verify(
        &self,
        p: &Parsed,
        cred: &Credential,
        query: &[(String, String)],
        additional: &[String],
        datetime: &str,
        date: &str,
        region: &str,
        payload: &str,
        given: &str,
    ) -> Result<(), ApiError> {
        let cr = oss::v4_canonical_request(
            &p.req.method,
            p.req.bucket.as_deref(),
            p.req.key.as_deref(),
            query,
            &p.wire_headers,
            additional,
            payload,
        );
        let sts = oss::v4_string_to_sign(datetime, date, region, &cr);
        if same(&oss::v4_sign(cred.secret.expose(), date, region, &sts), given) {
            Ok(())
        } else {
            Err(mismatch(&cred.access_key_id, given, &sts).with_field("CanonicalRequest", cr))
        }
    }

    async fn oss_v4_header(&self, p: &mut Parsed, a: &str) -> Result<(Option<Caller>, BodyRule), ApiError> {
        let auth = oss::parse_v4_authorization(a).ok_or_else(|| {
            ApiError::new(400, "InvalidArgument", "Authorization must be `OSS4-HMAC-SHA256 Credential=…,Signature=…`.")
        })?;
        let datetime = wire(p, "x-oss-date").unwrap_or("").to_string();
        let at =
            parse_compact(&datetime).ok_or_else(|| denied("AccessDenied", "x-oss-date must be yyyymmddThhmmssZ."))?;
        self.check_window(at)?;
        if !datetime.starts_with(&auth.date) {
            return Err(denied("AccessDenied", "The credential date does not match x-oss-date."));
        }
        let payload = wire(p, "x-oss-content-sha256").unwrap_or("UNSIGNED-PAYLOAD").to_string();
        let token = wire(p, "x-oss-security-token").map(str::to_string);
        let cred = self.credential(&auth.access_key_id, token.as_deref()).await?;
        let query = p.req.query.clone();
        self.v4_verify(
            p,
            &cred,
            &query,
            &auth.additional_headers,
            &datetime,
            &auth.date,
            &auth.region,
            &payload,
            &auth.signature,
        )?;
        Ok((Some(caller_of(&cred)), BodyRule::sha256(&payload, "InvalidDigest")))
    }

    async fn oss_v4_presigned(&self, p: &mut Parsed) -> Result<(Option<Caller>, BodyRule), ApiError> {
        if q(p, "x-oss-signature-version") != Some(oss::V4_ALGORITHM) {
            return Err(ApiError::new(400, "InvalidArgument", "x-oss-signature-version must be OSS4-HMAC-SHA256."));
        }
        let get = |n: &str| {
            q(p, n).map(str::to_string).ok_or_else(|| denied("AccessDenied", format!("A presigned URL needs {n}.")))
        };
        let (cred_s, datetime, expires, sig) =
            (get("x-oss-credential")?, get("x-oss-date")?, get("x-oss-expires")?, get("x-oss-signature")?);
        let (ak, date, region) = oss::parse_v4_credential(&cred_s)
            .ok_or_else(|| denied("AccessDenied", "x-oss-credential is malformed."))?;
        let at =
            parse_compact(&datetime).ok_or_else(|| denied("AccessDenied", "x-oss-date must be yyyymmddThhmmssZ."))?;
        let secs: i64 = expires.parse().map_err(|_| denied("AccessDenied", "x-oss-expires must be seconds."))?;
        if !(1..=MAX_PRESIGNED_SECS).contains(&secs) {
            return Err(denied("AccessDenied", "x-oss-expires must be between 1 and 604800 seconds (7 days)."));
        }
        if at - now_millis() > self.cfg.timestamp_window.as_millis() as i64 {
            return Err(denied("RequestTimeTooSkewed", "The presigned URL starts in the future."));
        }
        if at + secs * 1000 < now_millis() {
            return Err(expired());
        }
        let additional: Vec<String> = q(p, "x-oss-additional-headers")
            .map(|h| h.split(';').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let token = q(p, "x-oss-security-token").map(str::to_string);
        let cred = self.credential(&ak, token.as_deref()).await?;
        let query: Vec<(String, String)> =
            p.req.query.iter().filter(|(k, _)| k != "x-oss-signature").cloned().collect();
        self.v4_verify(p, &cred, &query, &additional, &datetime, &date, &region, "UNSIGNED-PAYLOAD", &sig)?;
        Ok((Some(caller_of(&cred)), BodyRule::Plain))
    }

    #[allow(clippy::too_many_arguments)]
    fn s3_verify(
        &self,
        p: &Parsed,
        secret: &str,
        query: &[(String, String)],
        signed: &[String],
        amz_date: &str,
        scope: (&str, &str, &str),
        payload: &str,
        given: &str,
    ) -> Result<Vec<u8>, ApiError> {
        let (date, region, service) = scope;
        let cr = s3::canonical_request(
            &p.req.method,
            &p.raw_path,
            query,
            signed,
            |n| p.wire_headers.iter().filter(|(k, _)| k == n).map(|(_, v)| v.as_str()).collect(),
            payload,
        );
        let scope_s = format!("{date}/{region}/{service}/aws4_request");
        let sts = s3::string_to_sign(amz_date, &scope_s, &cr);
        let key = s3::signing_key(secret, date, region, service);
        if same(&s3::sign(&key, &sts), given) {
            Ok(key)
        } else {
            Err(denied("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
                .with_field("StringToSign", sts)
                .with_field("CanonicalRequest", cr))
        }
    }

    async fn s3_header(&self, p: &mut Parsed, a: &str) -> Result<(Option<Caller>, BodyRule), ApiError> {
        let auth = s3::parse_authorization(a).ok_or_else(|| {
            ApiError::new(400, "AuthorizationHeaderMalformed", "The authorization header is malformed.")
        })?;
        if !auth.signed_headers.iter().any(|h| h == "host") {
            return Err(denied("AccessDenied", "The host header must be signed."));
        }
        // x-amz-date and x-amz-content-sha256 are bound by the string to sign either way.
        unsigned_headers(p, &auth.signed_headers, &["x-amz-date", "x-amz-content-sha256"])?;
        let amz_date = wire(p, "x-amz-date").unwrap_or("").to_string();
        let at =
            parse_compact(&amz_date).ok_or_else(|| denied("AccessDenied", "x-amz-date must be yyyymmddThhmmssZ."))?;
        self.check_window(at)?;
        let payload = wire(p, "x-amz-content-sha256")
            .ok_or_else(|| {
                ApiError::new(400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256.")
            })?
            .to_string();
        let token = wire(p, "x-amz-security-token").map(str::to_string);
        let cred = self.credential(&auth.access_key_id, token.as_deref()).await?;
        let query = p.req.query.clone();
        let key = self.s3_verify(
            p,
            cred.secret.expose(),
            &query,
            &auth.signed_headers,
            &amz_date,
            (&auth.date, &auth.region, &auth.service),
            &payload,
            &auth.signature,
        )?;
        let rule = match payload.as_str() {
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" | "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => BodyRule::Chunked {
                signing: Some(ChunkSigning {
                    key,
                    amz_date: amz_date.clone(),
                    scope: format!("{}/{}/{}/aws4_request", auth.date, auth.region, auth.service),
                    seed: auth.signature.clone(),
                }),
                trailer: wire(p, "x-amz-trailer").map(str::to_string),
                decoded_len: None,
            },
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => BodyRule::Chunked {
                signing: None,
                trailer: wire(p, "x-amz-trailer").map(str::to_string),
                decoded_len: None,
            },
            other if other.starts_with("STREAMING-") => {
                return Err(ApiError::new(
                    400,
                    "InvalidArgument",
                    format!("x-amz-content-sha256 {other} is not supported."),
                ));
            }
            other => BodyRule::sha256(other, "XAmzContentSHA256Mismatch"),
        };
        let rule = match rule {
            BodyRule::Chunked { signing, trailer, .. } => {
                // The framing is gone once decoded: the stored object must not claim aws-chunked.
                p.req.headers.retain(|(k, v)| !(k == "content-encoding" && v.contains("aws-chunked")));
                let decoded_len = match wire(p, "x-amz-decoded-content-length") {
                    None => None,
                    Some(l) => Some(l.parse::<u64>().map_err(|_| {
                        ApiError::new(400, "InvalidArgument", "x-amz-decoded-content-length must be a number.")
                    })?),
                };
                BodyRule::Chunked { signing, trailer, decoded_len }
            }
            other => other,
        };
        Ok((Some(caller_of(&cred)), rule))
    }

    async fn s3_presigned(&self, p: &mut Parsed) -> Result<(Option<Caller>, BodyRule), ApiError> {
        if q(p, "X-Amz-Algorithm").is_none() {
            return Ok((None, BodyRule::Plain));
        }
        if q(p, "X-Amz-Algorithm") != Some(s3::ALGORITHM) {
            return Err(ApiError::new(
                400,
                "AuthorizationQueryParametersError",
                "X-Amz-Algorithm must be AWS4-HMAC-SHA256.",
            ));
        }
        let get = |n: &str| {
            q(p, n).map(str::to_string).ok_or_else(|| {
                ApiError::new(
                    400,
                    "AuthorizationQueryParametersError",
                    format!("Query-string authentication requires {n}."),
                )
            })
        };
        let (cred_s, amz_date, expires, signed, sig) = (
            get("X-Amz-Credential")?,
            get("X-Amz-Date")?,
            get("X-Amz-Expires")?,
            get("X-Amz-SignedHeaders")?,
            get("X-Amz-Signature")?,
        );
        let (ak, date, region, service) = s3::parse_credential(&cred_s)
            .ok_or_else(|| ApiError::new(400, "AuthorizationQueryParametersError", "X-Amz-Credential is malformed."))?;
        let at =
            parse_compact(&amz_date).ok_or_else(|| denied("AccessDenied", "X-Amz-Date must be yyyymmddThhmmssZ."))?;
        let secs: i64 = expires.parse().map_err(|_| query_error("X-Amz-Expires should be a number"))?;
        if secs < 0 {
            return Err(query_error("X-Amz-Expires must be non-negative"));
        }
        if secs > MAX_PRESIGNED_SECS {
            return Err(query_error("X-Amz-Expires must be less than a week (in seconds) that is; 604800"));
        }
        if at - now_millis() > self.cfg.timestamp_window.as_millis() as i64 {
            return Err(denied("AccessDenied", "Request is not valid yet"));
        }
        if at + secs * 1000 < now_millis() {
            return Err(expired());
        }
        let signed: Vec<String> =
            signed.split(';').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect();
        if !signed.iter().any(|h| h == "host") {
            return Err(denied("AccessDenied", "The host header must be signed."));
        }
        // A presigned request's payload is UNSIGNED-PAYLOAD whatever x-amz-content-sha256 says.
        unsigned_headers(p, &signed, &["x-amz-content-sha256"])?;
        let token = q(p, "X-Amz-Security-Token").map(str::to_string);
        let cred = self.credential(&ak, token.as_deref()).await?;
        let query: Vec<(String, String)> =
            p.req.query.iter().filter(|(k, _)| k != "X-Amz-Signature").cloned().collect();
        self.s3_verify(
            p,
            cred.secret.expose(),
            &query,
            &signed,
            &amz_date,
            (&date, &region, &service),
            s3::UNSIGNED,
            &sig,
        )?;
        Ok((Some(caller_of(&cred)), BodyRule::Plain))
    }
}
