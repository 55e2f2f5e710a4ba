//! The audit hook. Every request that reaches the pipeline produces one [`AuditEvent`], allowed,
//! denied or failed. The ActionTrail issue stores them in a hash chain; until then [`LogAuditor`]
//! writes them as structured log lines.

use crate::{ApiError, BoxFut, Caller, Params};
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub event_id: String,
    pub event_time: String,
    /// The action, e.g. `DescribeRegions` (empty when the request never named one).
    pub event_name: String,
    /// The endpoint host of the product, e.g. `ecs.local-1.nimbus.internal`.
    pub event_source: String,
    pub service_name: String,
    pub api_version: String,
    /// `Read` or `Write`.
    pub event_rw: String,
    pub acs_region: String,
    pub request_id: String,
    pub source_ip_address: String,
    pub user_agent: Option<String>,
    pub account_id: Option<String>,
    pub principal_type: Option<String>,
    pub principal_id: Option<String>,
    pub principal_name: Option<String>,
    pub access_key_id: Option<String>,
    /// Parameters with secrets replaced by `******`.
    pub request_parameters: Map<String, Value>,
    pub resources: Vec<String>,
    pub http_status: u16,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

impl AuditEvent {
    /// The event of a request as it arrives: who sent it from where, to which endpoint; the
    /// rest is filled in as the request is understood.
    pub fn incoming(
        event_source: String,
        acs_region: &str,
        request_id: &str,
        source_ip: std::net::IpAddr,
        user_agent: Option<&str>,
    ) -> Self {
        AuditEvent {
            event_id: nimbus_core::ids::request_id().to_lowercase(),
            event_time: nimbus_core::clock::iso8601(nimbus_core::clock::now_millis()),
            event_name: String::new(),
            event_source,
            service_name: String::new(),
            api_version: String::new(),
            event_rw: String::new(),
            acs_region: acs_region.to_string(),
            request_id: request_id.to_string(),
            source_ip_address: source_ip.to_string(),
            user_agent: user_agent.map(str::to_string),
            account_id: None,
            principal_type: None,
            principal_id: None,
            principal_name: None,
            access_key_id: None,
            request_parameters: Default::default(),
            resources: vec![],
            http_status: 0,
            error_code: None,
            error_message: None,
        }
    }

    /// Files the failure: its code, and its message through [`redact_message`] with the raw
    /// `params` the request carried (the wire answer may quote them; the record must not).
    pub fn set_error(&mut self, e: &ApiError, params: &[(String, String)]) {
        self.error_code = Some(e.code.to_string());
        self.error_message = Some(redact_message(&e.message, params));
    }

    /// The redaction every sink applies before an event is persisted or logged (idempotent):
    /// secret parameters masked, and the secrets an error message quotes.
    pub fn redact(&mut self) {
        for (k, v) in self.request_parameters.iter_mut() {
            if is_secret_name(k) {
                *v = Value::from(MASK);
            }
        }
        if let Some(m) = &self.error_message {
            self.error_message = Some(redact_message(m, &[]));
        }
    }

    pub fn set_caller(&mut self, c: &Caller) {
        self.account_id = Some(c.account_id.clone());
        self.principal_type = Some(c.principal_type.as_str().to_string());
        self.principal_id = Some(c.principal_id.clone());
        self.principal_name = Some(c.principal_name.clone());
        self.access_key_id = Some(c.access_key_id.clone());
    }
}

pub trait Auditor: Send + Sync {
    /// Records `event`; the gateway awaits it before answering, so an acknowledged call always has
    /// its record (ActionTrail commits in groups to keep that cheap).
    fn record(&self, event: AuditEvent) -> BoxFut<'_, ()>;
}

/// Writes each event as one JSON log line on target `nimbus::audit`.
pub struct LogAuditor;

impl Auditor for LogAuditor {
    fn record(&self, mut event: AuditEvent) -> BoxFut<'_, ()> {
        event.redact();
        match serde_json::to_string(&event) {
            Ok(line) => tracing::info!(target: "nimbus::audit", "{line}"),
            Err(e) => {
                tracing::error!(target: "nimbus::audit", error = %e, "could not serialize audit event")
            }
        }
        Box::pin(std::future::ready(()))
    }
}

/// Parameter names whose values are never written anywhere (case-insensitive substrings).
const SECRET_MARKERS: &[&str] = &[
    "secret",
    "password",
    "signature",
    "securitytoken",
    "plaintext",
    "privatekey",
    "token",
    "authenticationcode",
    "mfacode",
];

/// Whether a response holds a secret anywhere (an object key naming one: `AccessKeySecret`,
/// `PrivateKeyBody`, `Plaintext`, `SecurityToken`, …), so it must not be stored as it is.
pub fn contains_secret(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(m) => m.iter().any(|(k, v)| {
            let lower = k.to_ascii_lowercase();
            (SECRET_MARKERS.iter().any(|m| lower.contains(m)) && !lower.starts_with("signature")) || contains_secret(v)
        }),
        serde_json::Value::Array(a) => a.iter().any(contains_secret),
        _ => false,
    }
}

const MASK: &str = "******";

/// Whether a parameter of this name carries a secret (the signing parameters that merely name a
/// method, version, nonce or type do not).
fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_MARKERS.iter().any(|m| lower.contains(m))
        && !matches!(lower.as_str(), "signaturemethod" | "signatureversion" | "signaturenonce" | "signaturetype")
}

/// The parameters with every secret-bearing value replaced by `******`.
pub fn redact_params(p: &Params) -> Map<String, Value> {
    p.iter().map(|(k, v)| (k.to_string(), Value::from(if is_secret_name(k) { MASK } else { v }))).collect()
}

/// Secret values shorter than this are not searched for in free text (they would mask every
/// digit of a message); a quoted string to sign is masked by structure whatever their length.
const MIN_SECRET_LEN: usize = 3;

/// What may be persisted or logged of an error message. A quoted v1 string to sign
/// (`… string to sign is:GET&%2F&AccessKeyId%3D…`, as `SignatureDoesNotMatch` says) keeps its
/// shape with every secret parameter's value masked; then each secret value in `params` found
/// anywhere, as sent or percent-encoded once or twice, is masked too.
pub fn redact_message(message: &str, params: &[(String, String)]) -> String {
    const QUOTED: &str = "string to sign is:";
    let mut out = match message.find(QUOTED) {
        Some(i) => {
            let (head, tail) = message.split_at(i + QUOTED.len());
            format!("{head}{}", redact_v1_string_to_sign(tail))
        }
        None => message.to_string(),
    };
    for (k, v) in params {
        if v.len() < MIN_SECRET_LEN || !is_secret_name(k) {
            continue;
        }
        let once = pct(v);
        for form in [pct(&once), once, v.clone()] {
            out = out.replace(&form, MASK);
        }
    }
    out
}

/// `METHOD&ENC(path)&ENC(k1=v1&k2=v2…)` with each pair's name and value encoded twice.
fn redact_v1_string_to_sign(sts: &str) -> String {
    let mut parts = sts.splitn(3, '&');
    let (Some(method), Some(path), Some(query)) = (parts.next(), parts.next(), parts.next()) else {
        return sts.to_string();
    };
    let pairs: Vec<String> = query
        .split("%26")
        .map(|pair| match pair.split_once("%3D") {
            Some((k, _)) if is_secret_name(&pct_decode(&pct_decode(k))) => format!("{k}%3D{MASK}"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{method}&{path}&{}", pairs.join("%26"))
}

/// RFC 3986 percent-encoding, as the signatures quote values (unreserved characters kept).
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_secrets_anywhere_in_a_reply() {
        use serde_json::json;
        assert!(contains_secret(&json!({"AccessKey": {"AccessKeyId": "LTAI", "AccessKeySecret": "s"}})));
        assert!(contains_secret(&json!({"KeyPairName": "k", "PrivateKeyBody": "-----BEGIN"})));
        assert!(contains_secret(&json!({"Items": [{"Plaintext": "x"}]})));
        assert!(contains_secret(&json!({"Credentials": {"SecurityToken": "t"}})));
        assert!(!contains_secret(
            &json!({"VpcId": "vpc-1", "Items": [{"KeyId": "k"}], "SignatureMethod": "HMAC-SHA1"})
        ));
    }

    #[test]
    fn messages_lose_the_secrets_they_quote() {
        // A v1 string to sign as SignatureDoesNotMatch quotes it: pairs encoded twice.
        let sts = "POST&%2F&AccessKeyId%3DLTAI%26Action%3DEncrypt%26NewPassword%3Dpw%26Plaintext%3DSUPER%2520SECRET\
                   %26SecurityToken%3DTOK%252Bx%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3Dn1";
        let m = format!("Specified signature is not matched with our calculation. server string to sign is:{sts}");
        let r = redact_message(&m, &[]);
        assert_eq!(
            r,
            "Specified signature is not matched with our calculation. server string to sign is:POST&%2F&\
             AccessKeyId%3DLTAI%26Action%3DEncrypt%26NewPassword%3D******%26Plaintext%3D******\
             %26SecurityToken%3D******%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3Dn1"
        );
        assert_eq!(redact_message(&r, &[]), r, "idempotent");
        // Secrets known by value are masked anywhere, as sent or encoded once or twice.
        let p = [("Password", "hunter2 pw"), ("RegionId", "local-1"), ("Token", "ab")]
            .map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(
            redact_message("bad \"hunter2 pw\", hunter2%20pw, hunter2%2520pw in local-1 (ab)", &p),
            "bad \"******\", ******, ****** in local-1 (ab)"
        );
        assert_eq!(
            redact_message("A V3 string to sign is:ACS3-HMAC-SHA256\nabc", &[]),
            "A V3 string to sign is:ACS3-HMAC-SHA256\nabc"
        );
    }

    #[test]
    fn sinks_redact_whatever_the_producer_did() {
        let mut e = AuditEvent::incoming("x".into(), "local-1", "r", std::net::IpAddr::from([127, 0, 0, 1]), None);
        e.request_parameters.insert("Plaintext".into(), Value::from("SECRET"));
        e.request_parameters.insert("KeyId".into(), Value::from("k"));
        e.error_message = Some("server string to sign is:GET&%2F&Plaintext%3DSECRET".into());
        e.redact();
        assert_eq!(
            (e.request_parameters["Plaintext"].as_str(), e.request_parameters["KeyId"].as_str()),
            (Some("******"), Some("k"))
        );
        assert_eq!(e.error_message.as_deref(), Some("server string to sign is:GET&%2F&Plaintext%3D******"));
    }

    #[test]
    fn redacts_secrets_keeps_the_rest() {
        let p = Params::from_pairs(
            [
                ("Signature", "abc"),
                ("Password", "pw"),
                ("AccessKeySecret", "s"),
                ("SecurityToken", "t"),
                ("SignatureMethod", "HMAC-SHA1"),
                ("RegionId", "local-1"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let r = redact_params(&p);
        for k in ["Signature", "Password", "AccessKeySecret", "SecurityToken"] {
            assert_eq!(r[k], "******", "{k}");
        }
        assert_eq!(r["SignatureMethod"], "HMAC-SHA1");
        assert_eq!(r["RegionId"], "local-1");
    }
}
