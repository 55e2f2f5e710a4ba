//! The gateway's request path, in process.
//!
//! - Property test: random requests, some correctly signed. Whatever arrives, the answer is an
//!   Alibaba-shaped response (never a panic, never a hang) and every request yields one audit event.
//! - `ClientToken` makes write calls idempotent; a denied call never reaches the handler; a stalled
//!   upload ends with `RequestTimeout`.
//!
//! The credential source, the authorizer and the echo service are test doubles of the layers
//! *above* the gateway; the gateway, the signature code and the store are the real ones.

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use nimbus_api::{
    Access, ActionSpec, ApiError, AuditEvent, Auditor, Authorizer, BoxFut, CallContext, Caller, Credential,
    CredentialSource, Decision, Params, PrincipalType, Registry, RootOnly, Service,
};
use nimbus_core::region::Region;
use nimbus_core::secret::Secret;
use nimbus_gateway::signature::{pct, v1};
use nimbus_gateway::{Gateway, GatewayConfig, Hooks, ThrottleConfig};
use nimbus_store::Store;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

struct OneKey;
impl CredentialSource for OneKey {
    fn lookup<'a>(&'a self, id: &'a str, _token: Option<&'a str>) -> BoxFut<'a, Result<Option<Credential>, ApiError>> {
        Box::pin(async move {
            Ok((id == "LTAItest").then(|| Credential {
                access_key_id: id.into(),
                secret: Secret::new("testsecret"),
                account_id: "1000000000000001".into(),
                principal_type: PrincipalType::Root,
                principal_id: "1000000000000001".into(),
                principal_name: "1000000000000001".into(),
                session: None,
                mfa_present: false,
                active: true,
            }))
        })
    }
}

#[derive(Default)]
struct Echo {
    calls: AtomicUsize,
}
const ECHO: &[ActionSpec] = &[
    ActionSpec { name: "Read", ram_action: "echo:Read", access: Access::Read },
    ActionSpec { name: "Write", ram_action: "echo:Write", access: Access::Write },
];
impl Service for Echo {
    fn product(&self) -> &'static str {
        "Echo"
    }
    fn code(&self) -> &'static str {
        "echo"
    }
    fn version(&self) -> &'static str {
        "2099-01-01"
    }
    fn actions(&self) -> &'static [ActionSpec] {
        ECHO
    }
    fn handle<'a>(
        &'a self,
        _: &'a CallContext,
        a: &'a ActionSpec,
        p: &'a Params,
    ) -> BoxFut<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let n = p.int("N", 0, 1000)?;
            Ok(json!({"Action": a.name, "N": n, "Nonce": p.get("SignatureNonce")}))
        })
    }
}

#[derive(Default)]
struct Count(AtomicUsize, std::sync::Mutex<Vec<AuditEvent>>);
impl Auditor for Count {
    fn record(&self, e: AuditEvent) -> BoxFut<'_, ()> {
        self.1.lock().expect("lock").push(e.clone());
        assert!(!e.request_id.is_empty() && e.http_status >= 200);
        assert!(e.request_parameters.get("Signature").is_none_or(|v| v == "******"), "signature must be redacted");
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::ready(()))
    }
}

struct DenyAll;
impl Authorizer for DenyAll {
    fn authorize<'a>(&'a self, _: &'a Caller, _: &'a str, _: &'a [String]) -> BoxFut<'a, Decision> {
        Box::pin(async { Decision::ExplicitDeny })
    }
}

fn gateway_with(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    audit: Arc<Count>,
    echo: Arc<Echo>,
    authorizer: Arc<dyn Authorizer>,
    timeout: Duration,
) -> Gateway {
    let store = rt.block_on(Store::open(&format!("sqlite://{}", dir.join("s.db").display()))).expect("store");
    let mut reg = Registry::new();
    reg.register(echo);
    Gateway::new(
        GatewayConfig {
            region: Arc::new(Region::local_default()),
            max_body_bytes: 4096,
            request_timeout: timeout,
            timestamp_window: Duration::from_secs(900),
            throttle: ThrottleConfig { per_key_rps: 0, burst: 0 },
        },
        Arc::new(reg),
        Hooks { credentials: Arc::new(OneKey), authorizer, auditor: audit, sign_in: None, sealer: None },
        store,
    )
}

fn gateway(rt: &tokio::runtime::Runtime, dir: &std::path::Path, audit: Arc<Count>) -> Gateway {
    gateway_with(rt, dir, audit, Arc::new(Echo::default()), Arc::new(RootOnly), Duration::from_secs(5))
}

/// A correctly signed v1 query for `action` of the echo service with `params`.
fn signed_query(action: &str, params: &[(&str, &str)]) -> String {
    let nonce = uuid::Uuid::new_v4().to_string();
    let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut pairs: Vec<(String, String)> = [
        ("Action", action),
        ("Version", "2099-01-01"),
        ("AccessKeyId", "LTAItest"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", nonce.as_str()),
        ("Timestamp", ts.as_str()),
    ]
    .iter()
    .chain(params)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let sts = v1::string_to_sign("POST", pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    pairs.push(("Signature".into(), v1::sign("testsecret", &sts)));
    pairs.iter().map(|(k, v)| format!("{}={}", pct(k), pct(v))).collect::<Vec<_>>().join("&")
}

fn call(rt: &tokio::runtime::Runtime, gw: &Gateway, query: &str) -> (u16, Value) {
    let req = Request::post(format!("/?{query}")).body(Full::new(Bytes::new())).expect("request");
    let resp = rt.block_on(gw.handle(req, "127.0.0.1:9".parse().expect("addr"), false));
    let status = resp.status().as_u16();
    let body = rt.block_on(resp.into_body().collect()).expect("body").to_bytes();
    (status, serde_json::from_slice(&body).expect("json"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

#[test]
fn client_token_makes_write_calls_idempotent() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = gateway(&rt, dir.path(), Arc::new(Count::default()));
    let (s1, first) = call(&rt, &gw, &signed_query("Write", &[("ClientToken", "tok-1"), ("N", "1")]));
    assert_eq!(s1, 200, "{first}");
    // A retry (new nonce, new signature, same business parameters) gets the first answer back.
    let (s2, again) = call(&rt, &gw, &signed_query("Write", &[("ClientToken", "tok-1"), ("N", "1")]));
    assert_eq!((s2, &again["Nonce"]), (200, &first["Nonce"]), "replayed, not run again");
    assert_ne!(again["RequestId"], first["RequestId"]);
    let (s3, mismatch) = call(&rt, &gw, &signed_query("Write", &[("ClientToken", "tok-1"), ("N", "2")]));
    assert_eq!((s3, mismatch["Code"].as_str()), (400, Some("IdempotentParameterMismatch")));
    // Reads are not deduplicated.
    let (_, r1) = call(&rt, &gw, &signed_query("Read", &[("ClientToken", "tok-2")]));
    let (_, r2) = call(&rt, &gw, &signed_query("Read", &[("ClientToken", "tok-2")]));
    assert_ne!(r1["Nonce"], r2["Nonce"]);
    // A failed write releases its token: the corrected retry runs.
    let (s4, bad) = call(&rt, &gw, &signed_query("Write", &[("ClientToken", "tok-3"), ("N", "-5")]));
    assert_eq!((s4, bad["Code"].as_str()), (400, Some("InvalidN.Malformed")));
    let (s5, _) = call(&rt, &gw, &signed_query("Write", &[("ClientToken", "tok-3"), ("N", "-5")]));
    assert_eq!(s5, 400, "the same bad call fails the same way, it is not 'in flight'");
}

#[test]
fn denied_calls_never_reach_the_handler() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let (audit, echo) = (Arc::new(Count::default()), Arc::new(Echo::default()));
    let gw = gateway_with(&rt, dir.path(), audit.clone(), echo.clone(), Arc::new(DenyAll), Duration::from_secs(5));
    let (status, body) = call(&rt, &gw, &signed_query("Write", &[("N", "1")]));
    assert_eq!((status, body["Code"].as_str()), (403, Some("Forbidden.RAM")));
    assert_eq!(body["AccessDeniedDetail"]["AuthAction"], "echo:Write");
    assert_eq!(body["AccessDeniedDetail"]["NoPermissionType"], "ExplicitDeny");
    assert_eq!(echo.calls.load(Ordering::SeqCst), 0, "the handler never ran");
    assert_eq!(audit.0.load(Ordering::SeqCst), 1, "the denial is audited");
    let ev = audit.1.lock().expect("lock")[0].clone();
    assert_eq!(
        (ev.event_name.as_str(), ev.error_code.as_deref(), ev.http_status),
        ("Write", Some("Forbidden.RAM"), 403)
    );
    assert_eq!(ev.access_key_id.as_deref(), Some("LTAItest"));
    assert_eq!(ev.event_rw, "Write");
}

#[test]
fn failed_authentication_is_audited_with_what_was_claimed() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = Arc::new(Count::default());
    let gw = gateway(&rt, dir.path(), audit.clone());
    let forged = signed_query("Write", &[("N", "1"), ("Password", "hunter2")]).replace("N=1", "N=2");
    let (status, body) = call(&rt, &gw, &forged);
    assert_eq!((status, body["Code"].as_str()), (400, Some("SignatureDoesNotMatch")));
    let ev = audit.1.lock().expect("lock")[0].clone();
    assert_eq!((ev.event_name.as_str(), ev.error_code.as_deref()), ("Write", Some("SignatureDoesNotMatch")));
    assert_eq!(ev.request_parameters["N"], "2");
    assert_eq!(ev.request_parameters["Password"], "******");
    assert!(ev.account_id.is_none(), "an unproven caller is not attributed to the account");
}

/// Issue 13: `SignatureDoesNotMatch` quotes the server's string to sign, which holds every
/// parameter; the caller gets it, the audit record gets it with the secrets masked.
#[test]
fn a_bad_signature_s_string_to_sign_reaches_the_record_without_its_secrets() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = Arc::new(Count::default());
    let gw = gateway(&rt, dir.path(), audit.clone());
    let secrets = [
        ("Plaintext", "SUPERSECRET plain/text"),
        ("SecurityToken", "CAES+tokenSECRET=="),
        ("NewPassword", "hunter2-Secret!"),
    ];
    let mut params = vec![("N", "1")];
    params.extend(secrets);
    let forged = signed_query("Write", &params).replace("N=1", "N=2");
    let (status, body) = call(&rt, &gw, &forged);
    assert_eq!((status, body["Code"].as_str()), (400, Some("SignatureDoesNotMatch")));
    let answer = body["Message"].as_str().expect("message");
    assert!(answer.contains("server string to sign is:POST&%2F&"), "the SDKs compare it: {answer}");
    assert!(answer.contains("SUPERSECRET"), "the caller's own string to sign is theirs to see");
    // The same parameters in a form body: masked by the structure of the quoted string to sign.
    let forged = signed_query("Write", &params).replace("N=1", "N=2");
    let req = Request::post("/")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(forged)))
        .expect("request");
    let resp = rt.block_on(gw.handle(req, "127.0.0.1:9".parse().expect("addr"), false));
    let body = rt.block_on(resp.into_body().collect()).expect("body").to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("SUPERSECRET"), "the caller's own");
    let events = audit.1.lock().expect("lock").clone();
    assert_eq!(events.len(), 2);
    for ev in events {
        let recorded = serde_json::to_string(&ev).expect("json");
        for needle in ["SUPERSECRET", "tokenSECRET", "hunter2"] {
            assert!(!recorded.contains(needle), "{needle} reached the audit record: {recorded}");
        }
        assert_eq!(ev.error_code.as_deref(), Some("SignatureDoesNotMatch"));
        let message = ev.error_message.expect("message");
        assert!(message.contains("server string to sign is:POST&%2F&"), "{message}");
        assert!(message.contains("Plaintext%3D******") && message.contains("N%3D2"), "{message}");
    }
}

#[test]
fn a_stalled_upload_times_out() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = gateway_with(
        &rt,
        dir.path(),
        Arc::new(Count::default()),
        Arc::new(Echo::default()),
        Arc::new(RootOnly),
        Duration::from_millis(300),
    );
    // A body that announces bytes and never sends them.
    let (_tx, rx) = tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, std::io::Error>>(1);
    let body = http_body_util::StreamBody::new(tokio_stream_from(rx));
    let req = Request::post(format!("/?{}", signed_query("Read", &[])))
        .header("content-length", "100")
        .body(body)
        .expect("request");
    let resp = rt.block_on(gw.handle(req, "127.0.0.1:9".parse().expect("addr"), false));
    assert_eq!(resp.status(), 408);
    let bytes = rt.block_on(resp.into_body().collect()).expect("body").to_bytes();
    let v: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(v["Code"], "RequestTimeout");
}

/// A `Stream` over a channel receiver (what tokio-stream's `ReceiverStream` does).
fn tokio_stream_from<T: Send + 'static>(rx: tokio::sync::mpsc::Receiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

fn names() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Action".to_string()),
        Just("Version".to_string()),
        Just("AccessKeyId".to_string()),
        Just("Signature".to_string()),
        Just("SignatureMethod".to_string()),
        Just("SignatureNonce".to_string()),
        Just("Timestamp".to_string()),
        Just("Format".to_string()),
        Just("ClientToken".to_string()),
        Just("N".to_string()),
        "[A-Za-z.]{1,12}",
    ]
}

fn values() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Read".to_string()),
        Just("Write".to_string()),
        Just("2099-01-01".to_string()),
        Just("LTAItest".to_string()),
        Just("HMAC-SHA1".to_string()),
        Just("XML".to_string()),
        Just("7".to_string()),
        Just(String::new()),
        any::<String>(),
        "[0-9-:TZ]{0,25}",
    ]
}

#[derive(Debug, Clone)]
struct RandomRequest {
    method: &'static str,
    path: String,
    pairs: Vec<(String, String)>,
    sign: bool,
    authorization: Option<String>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

fn requests() -> impl Strategy<Value = RandomRequest> {
    (
        prop_oneof![Just("GET"), Just("POST"), Just("POST"), Just("PUT"), Just("DELETE"), Just("OPTIONS")],
        prop_oneof![Just("/".to_string()), Just("/".to_string()), "/[a-z/]{0,10}"],
        proptest::collection::vec((names(), values()), 0..12),
        any::<bool>(),
        proptest::option::of(prop_oneof![
            Just("ACS3-HMAC-SHA256 Credential=LTAItest,SignedHeaders=host,Signature=00".to_string()),
            "ACS3-[A-Z0-9-]{0,10} .{0,40}",
            ".{0,40}",
        ]),
        proptest::option::of(prop_oneof![Just("application/x-www-form-urlencoded"), Just("application/json")]),
        proptest::collection::vec(any::<u8>(), 0..6000),
    )
        .prop_map(|(method, path, pairs, sign, authorization, content_type, body)| RandomRequest {
            method,
            path,
            pairs,
            sign,
            authorization,
            content_type,
            body,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn every_request_gets_an_alibaba_shaped_answer(r in requests()) {
        let rt = runtime();
        let dir = tempfile::tempdir().expect("tempdir");
        let audit = Arc::new(Count::default());
        let gw = gateway(&rt, dir.path(), audit.clone());

        let mut pairs = r.pairs.clone();
        let mut r = r;
        if r.sign {
            // A signed case is a well-formed call (path, method, body that does not join the
            // signed set), so that what is random is the business input the handler sees.
            r.path = "/".into();
            r.method = if r.method == "GET" { "GET" } else { "POST" };
            r.authorization = None;
            if r.content_type == Some("application/x-www-form-urlencoded") { r.content_type = None; }
            r.body.truncate(1000);
            if !pairs.iter().any(|(k, v)| k == "Action" && (v == "Read" || v == "Write")) {
                pairs.retain(|(k, _)| k != "Action");
                pairs.push(("Action".into(), if r.body.len() % 2 == 0 { "Read".into() } else { "Write".into() }));
            }
            // Correct common parameters and signature, so random business input reaches the handler.
            pairs.retain(|(k, _)| !["AccessKeyId", "Signature", "SignatureMethod", "SignatureNonce", "Timestamp", "Version"].contains(&k.as_str()));
            pairs.extend([
                ("AccessKeyId".to_string(), "LTAItest".to_string()),
                ("SignatureMethod".to_string(), "HMAC-SHA1".to_string()),
                ("SignatureNonce".to_string(), uuid::Uuid::new_v4().to_string()),
                ("Timestamp".to_string(), chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                ("Version".to_string(), "2099-01-01".to_string()),
            ]);
            let sts = v1::string_to_sign(r.method, pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            pairs.push(("Signature".to_string(), v1::sign("testsecret", &sts)));
        }
        let query = pairs.iter().map(|(k, v)| format!("{}={}", pct(k), pct(v))).collect::<Vec<_>>().join("&");
        let mut b = Request::builder().method(r.method).uri(format!("{}?{query}", r.path));
        if let Some(a) = &r.authorization {
            b = b.header("authorization", a.as_str());
        }
        if let Some(ct) = r.content_type {
            b = b.header("content-type", ct);
        }
        let Ok(req) = b.body(Full::new(Bytes::from(r.body.clone()))) else { return Ok(()) };

        let resp = rt.block_on(gw.handle(req, "127.0.0.1:9".parse().expect("addr"), false));
        let status = resp.status().as_u16();
        // NIMBUS_PROPTEST_TRACE=1 prints each status, to check the mix of cases still reaches the handler.
        if std::env::var_os("NIMBUS_PROPTEST_TRACE").is_some() { eprintln!("STATUS {status}"); }
        prop_assert!(status == 200 || (400..600).contains(&status), "status {}", status);
        prop_assert!(resp.headers().contains_key("x-acs-request-id"));
        let body = rt.block_on(resp.into_body().collect()).expect("body").to_bytes();
        let text = String::from_utf8(body.to_vec()).expect("utf-8 body");
        if text.starts_with("<?xml") {
            prop_assert!(text.contains("<RequestId>"));
            if status >= 400 { prop_assert!(text.contains("<Code>")); }
        } else {
            let v: Value = serde_json::from_str(&text).expect("JSON body");
            prop_assert!(v["RequestId"].is_string());
            if status >= 400 {
                prop_assert!(v["Code"].is_string() && v["Message"].is_string() && v["HostId"].is_string(), "{}", text);
            }
        }
        prop_assert_eq!(audit.0.load(Ordering::SeqCst), 1, "exactly one audit event per request");
    }
}
