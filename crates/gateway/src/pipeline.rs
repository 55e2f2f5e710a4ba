//! The one request path every RPC call takes.

use crate::render::{self, Format};
use crate::replay::NonceCache;
use crate::signature::{v1, v3};
use crate::throttle::{Throttle, ThrottleConfig};
use bytes::Bytes;
use futures::FutureExt;
use http::request::Parts;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use nimbus_api::{
    ActionSpec, ApiError, AuditEvent, Auditor, Authorizer, CallContext, Caller, Credential, CredentialSource, Decision,
    Params, Registry, Service, SignIn, redact_params,
};
use nimbus_core::clock::{now_millis, parse_iso8601};
use nimbus_core::ids;
use nimbus_core::region::Region;
use nimbus_store::{Claim, Store};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub region: Arc<Region>,
    /// Largest request body accepted (bytes).
    pub max_body_bytes: usize,
    /// Longest a request may take, body upload included.
    pub request_timeout: Duration,
    /// How far a request's timestamp may be from the server's clock (Alibaba: 15 minutes).
    pub timestamp_window: Duration,
    pub throttle: ThrottleConfig,
}

/// What the gateway calls out to. Each is a seam another issue fills in (RAM, ActionTrail).
pub struct Hooks {
    pub credentials: Arc<dyn CredentialSource>,
    pub authorizer: Arc<dyn Authorizer>,
    pub auditor: Arc<dyn Auditor>,
    /// Console password sign-in at [`SIGN_IN_PATH`]; `None` serves no sign-in.
    pub sign_in: Option<Arc<dyn SignIn>>,
    /// Seals `ClientToken` replies that carry secrets (a created AccessKey's secret, a new key
    /// pair's private key, a data key's plaintext) before they are kept for replay; without it
    /// such replies are not kept at all and a retry is refused.
    pub sealer: Option<Arc<dyn nimbus_core::secret::KeyProvider>>,
}

/// Where the console signs in: `POST` a form with `AccountId`, `UserName`, `Password` and, for a
/// user with an MFA device, `MFACode`. The answer carries temporary credentials for the user.
pub const SIGN_IN_PATH: &str = "/console/signin";

pub struct Gateway {
    cfg: GatewayConfig,
    registry: Arc<Registry>,
    hooks: Hooks,
    store: Store,
    nonces: NonceCache,
    throttle: Throttle,
}

/// What authentication established, before routing.
struct Authenticated {
    caller: Caller,
    action: String,
    version: String,
    params: Params,
}

const UNKNOWN_PRODUCT: &str = "openapi";

/// Longest the gateway waits for the audit trail to record a request before answering anyway.
const AUDIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Oversized bodies up to this multiple of the limit are drained before the 413 is sent.
const DRAIN_FACTOR: usize = 8;

impl Gateway {
    pub fn new(cfg: GatewayConfig, registry: Arc<Registry>, hooks: Hooks, store: Store) -> Self {
        let window_ms = cfg.timestamp_window.as_millis() as i64;
        Gateway {
            throttle: Throttle::new(cfg.throttle),
            nonces: NonceCache::new(window_ms),
            cfg,
            registry,
            hooks,
            store,
        }
    }

    pub fn region(&self) -> &Region {
        &self.cfg.region
    }

    /// Serves one request. Never panics and never hangs past `request_timeout`: every failure is an
    /// Alibaba-shaped error, and every request yields one audit event.
    pub async fn handle<B>(&self, req: Request<B>, peer: SocketAddr, secure: bool) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let request_id = ids::request_id();
        let (parts, body) = req.into_parts();
        let query: Vec<(String, String)> =
            parts.uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
        let format = Format::from_param(query.iter().rev().find(|(k, _)| k == "Format").map(|(_, v)| v.as_str()));
        let mut audit = AuditEvent::incoming(
            self.cfg.region.endpoint_host(UNKNOWN_PRODUCT),
            &self.cfg.region.id,
            &request_id,
            peer.ip(),
            header(&parts, "user-agent"),
        );

        // What the request claims, before it is authenticated: so failed and forged calls are
        // findable in the trail by action and parameters too (redacted like any other).
        audit.event_name = header(&parts, "x-acs-action")
            .or_else(|| query.iter().rev().find(|(k, _)| k == "Action").map(|(_, v)| v.as_str()))
            .unwrap_or_default()
            .chars()
            .take(128)
            .collect();
        audit.request_parameters = redact_params(&Params::from_pairs(query.iter().cloned()));

        // The raw query, for the redaction of what an error message quotes from it.
        let raw_params = query.clone();
        let work = self.process(&parts, body, query, peer, secure, &request_id, &mut audit);
        let outcome = match tokio::time::timeout(self.cfg.request_timeout, AssertUnwindSafe(work).catch_unwind()).await
        {
            Ok(Ok(r)) => r,
            Ok(Err(_panic)) => {
                tracing::error!(request_id, "request handler panicked");
                Err(ApiError::internal())
            }
            Err(_elapsed) => Err(ApiError::new(
                408,
                "RequestTimeout",
                format!("The request did not complete within {} seconds.", self.cfg.request_timeout.as_secs()),
            )),
        };

        let product =
            if audit.service_name.is_empty() { UNKNOWN_PRODUCT.to_string() } else { audit.service_name.clone() };
        let response = match outcome {
            Ok(body) => render::success(format, &audit.event_name, &request_id, body),
            Err(e) => {
                // The answer may quote the caller's own string to sign; the record may not.
                audit.set_error(&e, &raw_params);
                render::error(format, &request_id, &audit.event_source, &product, &e)
            }
        };
        audit.http_status = response.status().as_u16();
        if tokio::time::timeout(AUDIT_TIMEOUT, self.hooks.auditor.record(audit)).await.is_err() {
            tracing::error!(request_id, "the audit trail did not record this request in time");
        }
        response
    }

    #[allow(clippy::too_many_arguments)]
    async fn process<B>(
        &self,
        parts: &Parts,
        body: B,
        query: Vec<(String, String)>,
        peer: SocketAddr,
        secure: bool,
        request_id: &str,
        audit: &mut AuditEvent,
    ) -> Result<Value, ApiError>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if parts.uri.path() == SIGN_IN_PATH {
            return self.console_sign_in(parts, body, query, peer, audit).await;
        }
        if parts.method != Method::GET && parts.method != Method::POST {
            return Err(ApiError::new(
                400,
                "UnsupportedHTTPMethod",
                format!("HTTP method {} is not supported; use GET or POST.", parts.method),
            ));
        }
        if parts.uri.path() != "/" {
            return Err(not_found_api());
        }
        let body = self.read_body(parts, body).await?;
        let form: Vec<(String, String)> = match header(parts, "content-type") {
            Some(ct) if ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") => {
                form_urlencoded::parse(&body).into_owned().collect()
            }
            _ => vec![],
        };

        let auth = match header(parts, "authorization") {
            Some(a) if a.trim_start().starts_with("ACS3-") => {
                self.authenticate_v3(parts, a, &query, form, &body).await?
            }
            _ if query.iter().chain(form.iter()).any(|(k, _)| k == "Signature") => {
                self.authenticate_v1(parts, query, form).await?
            }
            _ => {
                return Err(ApiError::new(
                    400,
                    "IncompleteSignature",
                    "The request is not signed: send a Signature parameter (HMAC-SHA1) or an ACS3-HMAC-SHA256 Authorization header.",
                ));
            }
        };
        let Authenticated { mut caller, action, version, params } = auth;
        caller.source_ip = peer.ip();
        caller.secure_transport = secure;
        caller.user_agent = header(parts, "user-agent").map(str::to_string);
        audit.set_caller(&caller);
        audit.request_parameters = redact_params(&params);
        audit.event_name = action.clone();
        audit.api_version = version.clone();

        if let Err(wait_ms) = self.throttle.check(&caller.access_key_id) {
            let mut e = ApiError::new(400, "Throttling.User", "Request was denied due to user flow control.");
            e.retry_after_ms = Some(wait_ms);
            return Err(e);
        }

        let service = self.registry.by_version(&version).cloned().ok_or_else(|| {
            ApiError::new(400, "InvalidVersion", format!("Specified parameter Version is not valid: {version:?}."))
        })?;
        audit.service_name = service.product().to_string();
        audit.event_source = self.cfg.region.endpoint_host(service.code());
        let spec: &'static ActionSpec =
            service.actions().iter().find(|a| a.name == action).ok_or_else(not_found_api)?;
        audit.event_rw = spec.access.as_str().to_string();

        let ctx = CallContext {
            request_id: request_id.to_string(),
            caller,
            region: self.cfg.region.clone(),
            store: self.store.clone(),
        };
        // Authorize exactly what runs: the service resolves every identifier to its canonical
        // resource first, and the handler reads only the resolved parameters.
        let resolved = service.resolve(&ctx, spec, &params).await?;
        audit.resources = resolved.all_resources();
        for check in &resolved.checks {
            match self.hooks.authorizer.authorize(&ctx.caller, &check.ram_action, &check.resources).await {
                Decision::Allow => {}
                denied => {
                    return Err(forbidden(service.deny_code(), &ctx.caller, &check.ram_action, &check.named, denied));
                }
            }
        }
        self.call_idempotent(&service, &ctx, spec, &resolved.params).await
    }

    /// Password sign-in: the same path as every call (parse → throttle → authenticate → audit), with
    /// the password as the credential. Authorization is not asked: signing in is allowed to
    /// everyone whose password (and MFA code) is right.
    async fn console_sign_in<B>(
        &self,
        parts: &Parts,
        body: B,
        query: Vec<(String, String)>,
        peer: SocketAddr,
        audit: &mut AuditEvent,
    ) -> Result<Value, ApiError>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        audit.event_name = "ConsoleSignin".into();
        audit.service_name = "Ram".into();
        audit.event_source = self.cfg.region.endpoint_host("signin");
        audit.event_rw = "Write".into();
        if parts.method != Method::POST {
            return Err(ApiError::new(400, "UnsupportedHTTPMethod", "Sign in with POST."));
        }
        let body = self.read_body(parts, body).await?;
        let params = Params::from_pairs(query.into_iter().chain(form_urlencoded::parse(&body).into_owned()));
        audit.request_parameters = redact_params(&params);
        let account = params.require("AccountId")?;
        let user = params.require("UserName")?;
        let password = params.require("Password")?;
        if let Err(wait_ms) = self.throttle.check(&format!("signin:{account}:{}", user.to_ascii_lowercase())) {
            let mut e = ApiError::new(400, "Throttling.User", "Too many sign-in attempts; wait and retry.");
            e.retry_after_ms = Some(wait_ms);
            return Err(e);
        }
        // Attempts, failed ones included, belong to the account and user they name, so the owner
        // sees them in LookupEvents. A made-up account id files them where nobody can read them.
        audit.account_id = Some(account.to_string());
        audit.principal_type = Some(nimbus_api::PrincipalType::User.as_str().into());
        audit.principal_name = Some(user.to_ascii_lowercase());
        let Some(sign_in) = &self.hooks.sign_in else { return Err(not_found_api()) };
        let req = nimbus_api::SignInRequest {
            account_id: account.to_string(),
            user_name: user.to_string(),
            password: nimbus_core::secret::Secret::new(password),
            mfa_code: params.get("MFACode").filter(|c| !c.is_empty()).map(str::to_string),
            source_ip: peer.ip(),
        };
        let done = sign_in.sign_in(&req).await?;
        audit.account_id = Some(done.account_id);
        audit.principal_type = Some(nimbus_api::PrincipalType::User.as_str().into());
        audit.principal_id = Some(done.user_name.clone());
        audit.principal_name = Some(done.user_name);
        Ok(done.body)
    }

    /// Runs the handler. A write call carrying `ClientToken` runs at most once per token and
    /// calling principal: a retry with the same parameters gets the first response again, with
    /// different parameters `IdempotentParameterMismatch`.
    async fn call_idempotent(
        &self,
        service: &Arc<dyn Service>,
        ctx: &CallContext,
        spec: &ActionSpec,
        params: &Params,
    ) -> Result<Value, ApiError> {
        let token = match params.get("ClientToken") {
            Some(t) if !t.is_empty() && spec.access == nimbus_api::Access::Write => t.to_string(),
            _ => return service.handle(ctx, spec, params).await,
        };
        if token.len() > 64 || !token.is_ascii() {
            return Err(ApiError::invalid("ClientToken", "at most 64 ASCII characters"));
        }
        let account = &ctx.caller.account_id;
        // A token is the calling principal's own: another principal of the account (a RAM user
        // allowed the same action, say) replaying it claims a record of its own and never gets
        // this one's answer, secrets included. A role session is scoped to the session (its STS
        // AccessKeyId): anyone allowed to assume the role may pick the same session name.
        let principal = match ctx.caller.principal_type {
            nimbus_api::PrincipalType::AssumedRole => format!(
                "{}:{}:{}",
                ctx.caller.principal_type.as_str(),
                ctx.caller.principal_id,
                ctx.caller.access_key_id
            ),
            t => format!("{}:{}", t.as_str(), ctx.caller.principal_id),
        };
        let hash = business_hash(params);
        // The sealed reply is bound to the same scope as its record.
        let purpose = format!("idempotency:{account}:{principal}:{}:{token}", spec.name);
        match self.store.claim_idempotency(account, &principal, spec.name, &token, &hash).await? {
            Claim::Replay(v) => {
                let Some(sealed) = v.get("NimbusSealedReply").and_then(Value::as_str) else { return Ok(v) };
                let Some(keys) = &self.hooks.sealer else {
                    return Err(ApiError::new(
                        400,
                        "IdempotentProcessed",
                        "This ClientToken was already used for a request whose answer held a secret, which is not kept.",
                    ));
                };
                let plain = keys.root_key().unwrap(&purpose, sealed).map_err(|_| ApiError::internal())?;
                return serde_json::from_slice(&plain).map_err(|_| ApiError::internal());
            }
            Claim::Mismatch => {
                return Err(ApiError::new(
                    400,
                    "IdempotentParameterMismatch",
                    "The ClientToken was already used with different parameters.",
                ));
            }
            Claim::InFlight => {
                return Err(ApiError::new(
                    409,
                    "LastTokenProcessing",
                    "A request with the same ClientToken is still being processed; retry later.",
                ));
            }
            Claim::New => {}
        }
        match service.handle(ctx, spec, params).await {
            Ok(v) => {
                // Secrets are never stored in plaintext, replies kept for replay included.
                let kept = if nimbus_api::contains_secret(&v) {
                    match &self.hooks.sealer {
                        Some(keys) => {
                            json!({"NimbusSealedReply": keys.root_key().wrap(&purpose, v.to_string().as_bytes())})
                        }
                        None => json!({"NimbusSealedReply": ""}),
                    }
                } else {
                    v.clone()
                };
                self.store.complete_idempotency(account, &principal, spec.name, &token, &kept).await?;
                Ok(v)
            }
            Err(e) => {
                self.store.abandon_idempotency(account, &principal, spec.name, &token).await?;
                Err(e)
            }
        }
    }

    async fn read_body<B>(&self, parts: &Parts, body: B) -> Result<Bytes, ApiError>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let max = self.cfg.max_body_bytes;
        let too_large = || {
            ApiError::new(
                413,
                "EntityTooLarge",
                format!("The request body is larger than the {max} bytes this endpoint accepts."),
            )
        };
        let declared = header(parts, "content-length").and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > max as u64) {
            // Read and discard a moderately oversized upload so the client, still sending, receives
            // the 413 instead of a broken pipe; past DRAIN_FACTOR times the limit, just close.
            if declared.is_some_and(|len| len <= (max * DRAIN_FACTOR) as u64) {
                let mut body = std::pin::pin!(body);
                while let Some(Ok(_)) = body.frame().await {}
            }
            return Err(too_large());
        }
        match Limited::new(body, max).collect().await {
            Ok(c) => Ok(c.to_bytes()),
            Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(too_large()),
            Err(e) => Err(ApiError::new(400, "IncompleteBody", format!("The request body could not be read: {e}"))),
        }
    }

    async fn authenticate_v1(
        &self,
        parts: &Parts,
        query: Vec<(String, String)>,
        form: Vec<(String, String)>,
    ) -> Result<Authenticated, ApiError> {
        let pairs: Vec<(String, String)> = query.into_iter().chain(form).collect();
        let params = Params::from_pairs(pairs.iter().cloned());
        for name in ["Action", "Version", "AccessKeyId", "SignatureMethod", "SignatureNonce", "Timestamp"] {
            params.require(name)?;
        }
        let method = params.get("SignatureMethod").unwrap_or_default();
        if method != "HMAC-SHA1" {
            return Err(ApiError::new(
                400,
                "InvalidSignatureMethod",
                format!("Specified signature method {method:?} is not supported; use HMAC-SHA1."),
            ));
        }
        if let Some(v) = params.get("SignatureVersion")
            && v != "1.0"
        {
            return Err(ApiError::new(
                400,
                "InvalidSignatureVersion",
                format!("Specified signature version {v:?} is not supported; use 1.0."),
            ));
        }
        let ts = self.check_timestamp("Timestamp", params.get("Timestamp").unwrap_or_default())?;
        let ak = params.get("AccessKeyId").unwrap_or_default().to_string();
        let cred = self.lookup(&ak, params.get("SecurityToken").filter(|t| !t.is_empty())).await?;
        let sts = v1::string_to_sign(parts.method.as_str(), pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if !v1::verify(cred.secret.expose(), &sts, params.get("Signature").unwrap_or_default()) {
            return Err(signature_mismatch(&sts));
        }
        self.after_signature(&cred, params.get("SignatureNonce").unwrap_or_default(), ts)?;
        let action = params.get("Action").unwrap_or_default().to_string();
        let version = params.get("Version").unwrap_or_default().to_string();
        Ok(Authenticated { caller: caller_of(&cred), action, version, params })
    }

    async fn authenticate_v3(
        &self,
        parts: &Parts,
        authorization: &str,
        query: &[(String, String)],
        form: Vec<(String, String)>,
        body: &[u8],
    ) -> Result<Authenticated, ApiError> {
        let auth = v3::parse_authorization(authorization).ok_or_else(|| {
            ApiError::new(400, "IncompleteSignature", "The Authorization header is not of the form `ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…`.")
        })?;
        if auth.algorithm != v3::ALGORITHM {
            return Err(ApiError::new(
                400,
                "InvalidSignatureMethod",
                format!("Signature algorithm {} is not supported; use ACS3-HMAC-SHA256.", auth.algorithm),
            ));
        }
        let required_header = |name: &str| {
            header(parts, name).filter(|v| !v.is_empty()).ok_or_else(|| {
                ApiError::new(
                    400,
                    "MissingParameter",
                    format!("The header \"{name}\" that is mandatory for processing this request is not supplied."),
                )
            })
        };
        let action = header(parts, "x-acs-action")
            .or_else(|| query.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.as_str()))
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::missing("Action"))?
            .to_string();
        let version = header(parts, "x-acs-version")
            .or_else(|| query.iter().find(|(k, _)| k == "Version").map(|(_, v)| v.as_str()))
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::missing("Version"))?
            .to_string();
        let date = required_header("x-acs-date")?;
        let nonce = required_header("x-acs-signature-nonce")?;
        // Every header that changes what the request means must be covered by the signature.
        for h in parts.headers.keys() {
            let n = h.as_str();
            let must_sign = n == "host"
                || matches!(
                    n,
                    "x-acs-action"
                        | "x-acs-version"
                        | "x-acs-date"
                        | "x-acs-signature-nonce"
                        | "x-acs-content-sha256"
                        | "x-acs-security-token"
                        | "x-acs-accesskey-id"
                );
            if must_sign && !auth.signed_headers.iter().any(|s| s == n) {
                return Err(ApiError::new(
                    400,
                    "IncompleteSignature",
                    format!("The header \"{n}\" must be listed in SignedHeaders."),
                ));
            }
        }
        let ts = self.check_timestamp("x-acs-date", date)?;
        let cred =
            self.lookup(&auth.access_key_id, header(parts, "x-acs-security-token").filter(|t| !t.is_empty())).await?;
        let actual_hash = v3::payload_hash(body);
        let declared_hash = header(parts, "x-acs-content-sha256").unwrap_or(&actual_hash);
        if !declared_hash.eq_ignore_ascii_case(&actual_hash) {
            return Err(ApiError::new(
                400,
                "SignatureDoesNotMatch",
                format!(
                    "The x-acs-content-sha256 header does not match the request body; the server computed:{actual_hash}"
                ),
            ));
        }
        let cq = v3::canonical_query(query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let cr = v3::canonical_request(
            parts.method.as_str(),
            parts.uri.path(),
            &cq,
            &auth.signed_headers,
            |n| parts.headers.get_all(n).iter().filter_map(|v| v.to_str().ok()).collect(),
            declared_hash,
        );
        let sts = v3::string_to_sign(&auth.algorithm, &cr);
        if !v3::verify(cred.secret.expose(), &sts, &auth.signature) {
            return Err(signature_mismatch(&sts));
        }
        self.after_signature(&cred, nonce, ts)?;
        let params = Params::from_pairs(
            query
                .iter()
                .cloned()
                .chain(form)
                .chain([("Action".to_string(), action.clone()), ("Version".to_string(), version.clone())]),
        );
        Ok(Authenticated { caller: caller_of(&cred), action, version, params })
    }

    /// The request's time must be within the window of ours.
    fn check_timestamp(&self, name: &str, value: &str) -> Result<i64, ApiError> {
        let t = parse_iso8601(value).ok_or_else(|| {
            ApiError::new(
                400,
                "InvalidTimeStamp.Format",
                format!("Specified {name} {value:?} is not in the format YYYY-MM-DDThh:mm:ssZ."),
            )
        })?;
        let ms = t.timestamp_millis();
        if (now_millis() - ms).abs() > self.cfg.timestamp_window.as_millis() as i64 {
            return Err(ApiError::new(
                400,
                "InvalidTimeStamp.Expired",
                "Specified time stamp or date value is expired.",
            ));
        }
        Ok(ms)
    }

    async fn lookup(&self, access_key_id: &str, security_token: Option<&str>) -> Result<Credential, ApiError> {
        self.hooks
            .credentials
            .lookup(access_key_id, security_token)
            .await?
            .ok_or_else(|| ApiError::new(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."))
    }

    /// Checks that need a proven identity: key status, then nonce replay.
    fn after_signature(&self, cred: &Credential, nonce: &str, ts: i64) -> Result<(), ApiError> {
        if !cred.active {
            return Err(ApiError::new(400, "InvalidAccessKeyId.Inactive", "Specified access key is disabled."));
        }
        if nonce.len() > 128 {
            return Err(ApiError::invalid("SignatureNonce", "at most 128 characters"));
        }
        if !self.nonces.first_use(&cred.access_key_id, nonce, ts, now_millis()) {
            return Err(ApiError::new(400, "SignatureNonceUsed", "Specified signature nonce was used already."));
        }
        Ok(())
    }
}

pub(crate) fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Who signed a request (transport facts are filled in by the caller of this).
pub(crate) fn caller_of(c: &Credential) -> Caller {
    Caller {
        account_id: c.account_id.clone(),
        principal_type: c.principal_type,
        principal_id: c.principal_id.clone(),
        principal_name: c.principal_name.clone(),
        session: c.session.clone(),
        mfa_present: c.mfa_present,
        access_key_id: c.access_key_id.clone(),
        source_ip: std::net::IpAddr::from([0, 0, 0, 0]),
        secure_transport: false,
        user_agent: None,
    }
}

fn not_found_api() -> ApiError {
    ApiError::new(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
}

/// The message must contain `server string to sign is:` followed by exactly our string to sign: the
/// v1 SDK splits on `:` and compares it with its own to tell a wrong secret from other errors.
fn signature_mismatch(string_to_sign: &str) -> ApiError {
    ApiError::new(
        400,
        "SignatureDoesNotMatch",
        format!("Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"),
    )
}

/// `named`: the resources as the caller sent them, never what they resolved to (a key behind an
/// alias the caller may not describe).
fn forbidden(code: &'static str, caller: &Caller, ram_action: &str, named: &[String], d: Decision) -> ApiError {
    let message = if code == "Forbidden.RAM" {
        "User not authorized to operate on the specified resource, or this API doesn't support RAM.".to_string()
    } else {
        format!("You are not authorized to do this action. Resource: {} Action: {}", named.join(","), ram_action)
    };
    let mut e = ApiError::new(403, code, message);
    e.access_denied_detail = Some(Box::new(json!({
        "AuthAction": ram_action,
        "AuthPrincipalType": caller.principal_type.as_str(),
        "AuthPrincipalOwnerId": caller.account_id,
        "AuthPrincipalDisplayName": caller.principal_name,
        "NoPermissionType": if d == Decision::ExplicitDeny { "ExplicitDeny" } else { "ImplicitDeny" },
        "PolicyType": "AccountLevelIdentityBasedPolicy",
    })));
    e
}

/// Parameters that are not part of what a call means (signing and transport), left out of the
/// `ClientToken` comparison.
const COMMON: &[&str] = &[
    "Signature",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "SignatureType",
    "Timestamp",
    "AccessKeyId",
    "SecurityToken",
    "Format",
];

fn business_hash(p: &Params) -> String {
    let mut h = Sha256::new();
    for (k, v) in p.iter().filter(|(k, _)| !COMMON.contains(k)) {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}
