//! The object storage front door (OSS and S3 dialects on one listener).
//!
//! One path for every request, as for RPC: parse the addressing (virtual host
//! `<bucket>.<domain>` or path style) → authenticate (OSS v1/v4, S3 SigV4; header or presigned;
//! or anonymous) → throttle → route (the service names the operation) → authorize (bucket-policy
//! deny, the caller's own RAM, bucket-policy allow, ACL; another account's principal needs both its
//! own RAM and the owner's grant) → handle → audit.

mod auth;
mod body;
mod chunked;

pub(crate) use crate::pipeline::{caller_of, header};
use crate::server::{ResponseBody, full};
use crate::throttle::{Throttle, ThrottleConfig};
use base64::Engine as _;
use bytes::Bytes;
use futures::FutureExt;
use futures::StreamExt;
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Body;
use hyper::body::Frame;
use nimbus_api::{
    ApiError, AuditEvent, Auditor, Authorizer, CredentialSource, Dialect, ObjectRequest, ObjectResponse, ObjectService,
    Params, Requester, Upload, redact_params,
};
use nimbus_core::ids;
use nimbus_core::region::Region;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct ObjectGatewayConfig {
    pub region: Arc<Region>,
    /// `<bucket>.<domain>` addresses a bucket by virtual host.
    pub domain: String,
    /// Largest request body (bytes): the largest single PUT plus framing.
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub timestamp_window: Duration,
    pub throttle: ThrottleConfig,
}

pub struct ObjectGateway {
    cfg: ObjectGatewayConfig,
    service: Arc<dyn ObjectService>,
    credentials: Arc<dyn CredentialSource>,
    authorizer: Arc<dyn Authorizer>,
    auditor: Arc<dyn Auditor>,
    throttle: Throttle,
}

const AUDIT_TIMEOUT: Duration = Duration::from_secs(10);

/// OSS request ids: 24 uppercase hex digits.
fn oss_request_id() -> String {
    ids::request_id().replace('-', "")[..24].to_string()
}

/// S3 header names → OSS ones on the way in (and back on the way out).
const S3_HEADERS: &[(&str, &str)] = &[
    ("x-amz-copy-source", "x-oss-copy-source"),
    ("x-amz-copy-source-range", "x-oss-copy-source-range"),
    ("x-amz-copy-source-if-match", "x-oss-copy-source-if-match"),
    ("x-amz-copy-source-if-none-match", "x-oss-copy-source-if-none-match"),
    ("x-amz-copy-source-if-modified-since", "x-oss-copy-source-if-modified-since"),
    ("x-amz-copy-source-if-unmodified-since", "x-oss-copy-source-if-unmodified-since"),
    ("x-amz-metadata-directive", "x-oss-metadata-directive"),
    ("x-amz-tagging-directive", "x-oss-tagging-directive"),
    ("x-amz-tagging", "x-oss-tagging"),
    ("x-amz-server-side-encryption", "x-oss-server-side-encryption"),
    ("x-amz-server-side-encryption-aws-kms-key-id", "x-oss-server-side-encryption-key-id"),
    ("x-amz-storage-class", "x-oss-storage-class"),
    ("x-amz-tagging-count", "x-oss-tagging-count"),
    ("x-amz-version-id", "x-oss-version-id"),
    ("x-amz-delete-marker", "x-oss-delete-marker"),
    ("x-amz-copy-source-version-id", "x-oss-copy-source-version-id"),
];

fn s3_in(name: &str, value: &str, has_key: bool) -> Option<(String, String)> {
    if let Some(m) = name.strip_prefix("x-amz-meta-") {
        return Some((format!("x-oss-meta-{m}"), value.to_string()));
    }
    if name == "x-amz-acl" {
        let n = if has_key { "x-oss-object-acl" } else { "x-oss-acl" };
        return Some((n.into(), value.to_string()));
    }
    let (_, oss) = S3_HEADERS.iter().find(|(s3, _)| *s3 == name)?;
    let value = match (*oss, value) {
        ("x-oss-server-side-encryption", "aws:kms") => "KMS".to_string(),
        ("x-oss-storage-class", v) => match v {
            "STANDARD" => "Standard".into(),
            "STANDARD_IA" => "IA".into(),
            "GLACIER" => "Archive".into(),
            "DEEP_ARCHIVE" => "ColdArchive".into(),
            v => v.into(),
        },
        (_, v) => v.to_string(),
    };
    Some((oss.to_string(), value))
}

fn s3_out(name: &str, value: &str) -> (String, String) {
    if let Some(m) = name.strip_prefix("x-oss-meta-") {
        return (format!("x-amz-meta-{m}"), value.to_string());
    }
    match S3_HEADERS.iter().find(|(_, oss)| *oss == name) {
        Some((s3, _)) => {
            let v = if *s3 == "x-amz-server-side-encryption" && value == "KMS" { "aws:kms" } else { value };
            (s3.to_string(), v.to_string())
        }
        None => (name.to_string(), value.to_string()),
    }
}

/// The request as the pipeline sees it before authentication.
pub(crate) struct Parsed {
    pub req: ObjectRequest,
    /// The path exactly as sent (S3 signs it as is).
    pub raw_path: String,
    /// Headers as sent (lowercase names), before S3 translation: signatures cover these.
    pub wire_headers: Vec<(String, String)>,
}

impl ObjectGateway {
    pub fn new(
        cfg: ObjectGatewayConfig,
        service: Arc<dyn ObjectService>,
        credentials: Arc<dyn CredentialSource>,
        authorizer: Arc<dyn Authorizer>,
        auditor: Arc<dyn Auditor>,
    ) -> Self {
        ObjectGateway { throttle: Throttle::new(cfg.throttle), cfg, service, credentials, authorizer, auditor }
    }

    pub async fn handle<B>(&self, req: Request<B>, peer: SocketAddr, secure: bool) -> Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let request_id = oss_request_id();
        let (parts, body) = req.into_parts();
        let host = header(&parts, "host").unwrap_or_default().to_string();
        let is_head = parts.method == Method::HEAD;
        let dialect = if header(&parts, "authorization")
            .is_some_and(|a| a.starts_with("AWS4-") || a.starts_with("AWS "))
            || parts.uri.query().is_some_and(|q| q.contains("X-Amz-Signature=") || q.contains("X-Amz-Algorithm="))
        {
            Dialect::S3
        } else {
            Dialect::Oss
        };
        let mut audit = AuditEvent::incoming(
            self.cfg.domain.clone(),
            &self.cfg.region.id,
            &request_id,
            peer.ip(),
            header(&parts, "user-agent"),
        );
        audit.service_name = "Oss".into();
        // The raw query, for the redaction of what an error message quotes from it.
        let raw_params = query_pairs(&parts);
        // The body stays here until something takes it: the whole-body read, or the stream an
        // upload is written from. What is left after an error is drained (or the connection
        // closed), so a client still sending gets the answer.
        let held = Upload::pending(0);
        held.set(Box::pin(http_body_util::BodyStream::new(body).filter_map(|frame| {
            futures::future::ready(match frame {
                Ok(f) => f.into_data().ok().map(Ok),
                Err(e) => Some(Err(std::io::Error::other(e.into()))),
            })
        })));
        let declared = header(&parts, "content-length").and_then(|v| v.parse::<u64>().ok());
        let work = async {
            let r = self.process(&parts, &held, peer, secure, dialect, &request_id, &mut audit).await;
            match r {
                Err(e) => Err(drain_or_close(&held, declared, e).await),
                ok => ok,
            }
        };
        let outcome = match tokio::time::timeout(self.cfg.request_timeout, AssertUnwindSafe(work).catch_unwind()).await
        {
            Ok(Ok(r)) => r,
            Ok(Err(_panic)) => {
                tracing::error!(request_id, "object request handler panicked");
                Err(ApiError::internal())
            }
            Err(_) => Err(ApiError::new(
                400,
                "RequestTimeout",
                "Your socket connection to the server was not read from or written to within the timeout period.",
            )),
        };
        let response = match outcome {
            Ok(r) => render_ok(r, dialect, &request_id, is_head),
            Err(e) => {
                audit.set_error(&e, &raw_params);
                render_error(&e, dialect, &request_id, &host, is_head)
            }
        };
        audit.http_status = response.status().as_u16();
        if tokio::time::timeout(AUDIT_TIMEOUT, self.auditor.record(audit)).await.is_err() {
            tracing::error!(request_id, "the audit trail did not record this request in time");
        }
        response
    }

    #[allow(clippy::too_many_arguments)]
    async fn process(
        &self,
        parts: &Parts,
        held: &Upload,
        peer: SocketAddr,
        secure: bool,
        dialect: Dialect,
        request_id: &str,
        audit: &mut AuditEvent,
    ) -> Result<ObjectResponse, ApiError> {
        let mut parsed = self.parse(parts, dialect, request_id, peer, secure)?;
        let mut params: Vec<(String, String)> = parsed.req.query.clone();
        params.extend(parsed.req.bucket.iter().map(|b| ("bucket".to_string(), b.clone())));
        params.extend(parsed.req.key.iter().map(|k| ("key".to_string(), k.clone())));
        audit.request_parameters = redact_params(&Params::from_pairs(params));

        // Headers and query only: an unauthenticated or unauthorized upload is refused before a
        // byte of its body is read.
        let (mut caller, rule) = self.authenticate(parts, &mut parsed).await?;
        if let Some(c) = caller.as_mut() {
            c.source_ip = peer.ip();
            c.secure_transport = secure;
            c.user_agent = header(parts, "user-agent").map(str::to_string);
            audit.set_caller(c);
        } else {
            audit.principal_type = Some("anonymous".into());
        }
        let throttle_key =
            caller.as_ref().map(|c| c.access_key_id.clone()).unwrap_or_else(|| format!("anonymous:{}", peer.ip()));
        if let Err(wait_ms) = self.throttle.check(&throttle_key) {
            let mut e = ApiError::new(503, "SlowDown", "Please reduce your request rate.");
            e.retry_after_ms = Some(wait_ms);
            return Err(e);
        }

        let mut req = parsed.req;
        let op = self.service.route(&req)?;
        // Object data above a few MiB is streamed to the replicas after authorization; anything
        // else (documents, batch lists, small objects) is read whole here, bounded.
        let content_length = header(parts, "content-length").and_then(|v| v.parse::<u64>().ok());
        let streamed = match rule.decoded_len(content_length) {
            Some(len) if len > STREAM_ABOVE && matches!(op.name, "PutObject" | "UploadPart" | "AppendObject") => {
                Some(len)
            }
            _ => None,
        };
        let mut rule = Some(rule);
        if streamed.is_none()
            && let Some(r) = rule.take()
        {
            req.body = r.apply(self.read_body(parts, held).await?)?;
        }
        audit.event_name = op.name.to_string();
        audit.event_rw = op.access.as_str().to_string();
        let access = self.service.access(&op, &req, caller.as_ref()).await?;
        audit.resources = vec![access.resource.clone()];
        if caller.is_none()
            && let Some(owner) = &access.owner
        {
            // Anonymous access is the bucket owner's business: file it in their trail.
            audit.account_id = Some(owner.clone());
        }
        audit.resources.extend(access.objects.iter().map(|o| o.resource.clone()));
        if !access.bucket_missing {
            // The request's own resource, then every further one it acts on (the objects of a
            // batch delete), each under its own RAM action: all must be permitted.
            for a in std::iter::once(&access).chain(access.objects.iter()) {
                let action = a.ram_action.unwrap_or(op.ram_action);
                let who =
                    Requester::of(self.authorizer.as_ref(), caller.as_ref(), a.owner.as_deref(), action, &a.resource)
                        .await;
                if !a.permits(who) {
                    // The resource ARN names the bucket owner's account: only that account's own
                    // principals are told it (anonymous callers and other accounts are not).
                    let message = match who {
                        Requester::Owner(_) => {
                            format!("You are not authorized to do this action ({action} on {}).", a.resource)
                        }
                        _ => format!("You are not authorized to do this action ({action})."),
                    };
                    return Err(ApiError::new(403, "AccessDenied", message).with_field("AuthAction", action));
                }
            }
        }
        let mut upload = None;
        if let (Some(len), Some(raw), Some(r)) = (streamed, held.take(), rule.take()) {
            let up = Upload::pending(len);
            up.set(r.apply_stream(raw, up.clone()));
            req.upload = Some(up.clone());
            upload = Some(up);
        }
        let r = self.service.handle(&op, req, caller.as_ref()).await;
        // Refused before reading its body (size, a precondition): hand the rest back to drain.
        if r.is_err()
            && let Some(rest) = upload.and_then(|u| u.take())
        {
            held.set(rest);
        }
        r
    }

    /// Addressing, query, headers.
    fn parse(
        &self,
        parts: &Parts,
        dialect: Dialect,
        request_id: &str,
        peer: SocketAddr,
        secure: bool,
    ) -> Result<Parsed, ApiError> {
        let host_header = header(parts, "host").unwrap_or_default();
        let host = host_header
            .rsplit_once(':')
            .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
            .map(|(h, _)| h)
            .unwrap_or(host_header);
        let raw_path = parts.uri.path().to_string();
        let path = percent_encoding::percent_decode_str(&raw_path)
            .decode_utf8()
            .map_err(|_| ApiError::new(400, "InvalidURI", "The request path is not valid UTF-8."))?
            .to_string();
        let vhost_bucket = host
            .strip_suffix(&self.cfg.domain)
            .and_then(|b| b.strip_suffix('.'))
            .filter(|b| !b.is_empty())
            .map(str::to_string);
        let rest = path.strip_prefix('/').unwrap_or(&path);
        let (bucket, key) = match vhost_bucket {
            Some(b) => (Some(b), Some(rest.to_string())),
            None => match rest.split_once('/') {
                Some((b, k)) => (Some(b.to_string()), Some(k.to_string())),
                None => ((!rest.is_empty()).then(|| rest.to_string()), None),
            },
        };
        let bucket = bucket.filter(|b| !b.is_empty());
        let key = key.filter(|k| !k.is_empty());
        let query = query_pairs(parts);
        let wire_headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string())))
            .collect();
        let headers = match dialect {
            Dialect::Oss => wire_headers.clone(),
            Dialect::S3 => wire_headers
                .iter()
                .map(|(k, v)| s3_in(k, v, key.is_some()).unwrap_or_else(|| (k.clone(), v.clone())))
                .collect(),
        };
        Ok(Parsed {
            req: ObjectRequest {
                request_id: request_id.to_string(),
                dialect,
                method: parts.method.as_str().to_string(),
                bucket,
                key,
                query,
                headers,
                body: Bytes::new(),
                upload: None,
                host: host_header.to_string(),
                source_ip: peer.ip(),
                secure,
            },
            raw_path,
            wire_headers,
        })
    }

    async fn read_body(&self, parts: &Parts, held: &Upload) -> Result<Bytes, ApiError> {
        let max = self.cfg.max_body_bytes;
        let too_large = || {
            ApiError::new(
                400,
                "EntityTooLarge",
                format!("Your proposed upload exceeds the maximum allowed size of {max} bytes."),
            )
        };
        let declared = header(parts, "content-length").and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > max as u64) {
            return Err(too_large());
        }
        let Some(mut body) = held.take() else { return Ok(Bytes::new()) };
        let mut out = bytes::BytesMut::new();
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| {
                ApiError::new(400, "IncompleteBody", format!("The request body could not be read: {e}"))
            })?;
            if out.len() + piece.len() > max {
                return Err(too_large());
            }
            out.extend_from_slice(&piece);
        }
        if declared.is_some_and(|len| len != out.len() as u64) {
            return Err(ApiError::new(400, "IncompleteBody", "The request body is shorter than its Content-Length."));
        }
        Ok(out.freeze())
    }
}

/// A refused request whose body was not read: a moderate remainder is read and discarded, so a
/// client that reads its answer only after sending (most HTTP libraries without
/// `Expect: 100-continue`) gets it; a large one is not read at all, and the connection is closed
/// after the answer instead.
async fn drain_or_close(held: &Upload, declared: Option<u64>, e: ApiError) -> ApiError {
    let Some(mut rest) = held.take() else { return e };
    if declared.is_some_and(|len| len <= DRAIN_MAX) {
        let mut seen = 0u64;
        while let Some(Ok(piece)) = rest.next().await {
            seen += piece.len() as u64;
            if seen > DRAIN_MAX {
                return e.with_header("connection", "close");
            }
        }
        return e;
    }
    e.with_header("connection", "close")
}

/// The most of a refused request's body read (and discarded) so that its client sees the answer.
const DRAIN_MAX: u64 = 64 << 20;

/// The query's pairs. `+` is a literal plus for OSS and S3 clients: decode `%XX` only.
fn query_pairs(parts: &Parts) -> Vec<(String, String)> {
    parts
        .uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    let dec = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().to_string();
                    (dec(k), dec(v))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn render_ok(r: ObjectResponse, dialect: Dialect, request_id: &str, is_head: bool) -> Response<ResponseBody> {
    let body = match (is_head, r.stream) {
        (true, _) => full(Full::new(Bytes::new())),
        (false, Some(stream)) => BodyExt::boxed_unsync(StreamBody::new(stream.map(|piece| piece.map(Frame::data)))),
        (false, None) => full(Full::new(r.body)),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    let h = resp.headers_mut();
    for (k, v) in r.headers {
        let (k, v) = if dialect == Dialect::S3 { s3_out(&k, &v) } else { (k, v) };
        if let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&v)) {
            h.append(name, value);
        }
    }
    common_headers(h, request_id);
    resp
}

fn common_headers(h: &mut http::HeaderMap, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-oss-request-id", v.clone());
        h.insert("x-amz-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string()) {
        h.insert("date", v);
    }
    h.insert("server", HeaderValue::from_static("Nimbus"));
}

/// Object bodies larger than this are streamed to the replicas as they arrive; smaller ones are
/// read whole (cheaper for the small writes that dominate most workloads).
const STREAM_ABOVE: u64 = 4 << 20;

/// OSS error document; HEAD answers carry it base64-encoded in `x-oss-err` instead of a body.
fn render_error(
    e: &ApiError,
    _dialect: Dialect,
    request_id: &str,
    host: &str,
    is_head: bool,
) -> Response<ResponseBody> {
    use std::fmt::Write as _;
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let ec = format!("0000-{:08}", e.status);
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>{}</Code>\n  <Message>{}</Message>\n  <RequestId>{request_id}</RequestId>\n  <HostId>{}</HostId>\n",
        esc(&e.code),
        esc(&e.message),
        esc(host)
    );
    if let Some(extra) = &e.extra {
        for (k, v) in &extra.fields {
            let _ = writeln!(xml, "  <{k}>{}</{k}>", esc(v));
        }
    }
    let _ = write!(
        xml,
        "  <EC>{ec}</EC>\n  <RecommendDoc>https://api.aliyun.com/troubleshoot?q={ec}</RecommendDoc>\n</Error>\n"
    );
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let no_body = is_head || status == StatusCode::NOT_MODIFIED;
    let mut resp = Response::new(full(Full::new(if no_body { Bytes::new() } else { Bytes::from(xml.clone()) })));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    if !no_body {
        h.insert("content-type", HeaderValue::from_static("application/xml"));
    }
    if is_head && let Ok(v) = HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(xml.as_bytes())) {
        h.insert("x-oss-err", v);
    }
    if let Ok(v) = HeaderValue::from_str(&ec) {
        h.insert("x-oss-ec", v);
    }
    if let Some(extra) = &e.extra {
        for (k, v) in &extra.headers {
            if let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                h.insert(name, value);
            }
        }
    }
    if let Some(ms) = e.retry_after_ms
        && let Ok(v) = HeaderValue::from_str(&ms.div_ceil(1000).to_string())
    {
        h.insert("retry-after", v);
    }
    common_headers(h, request_id);
    resp
}
