//! The audit hook. Every request that reaches the pipeline produces one [`AuditEvent`], allowed,
//! denied or failed. The ActionTrail issue stores them in a hash chain; until then [`LogAuditor`]
//! writes them as structured log lines.

use crate::{BoxFut, Caller, Params};
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
    fn record(&self, event: AuditEvent) -> BoxFut<'_, ()> {
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

/// The parameters with every secret-bearing value replaced by `******`.
pub fn redact_params(p: &Params) -> Map<String, Value> {
    p.iter()
        .map(|(k, v)| {
            let lower = k.to_ascii_lowercase();
            let hidden = SECRET_MARKERS.iter().any(|m| lower.contains(m))
                && lower != "signaturemethod"
                && lower != "signatureversion"
                && lower != "signaturenonce"
                && lower != "signaturetype";
            (k.to_string(), Value::from(if hidden { "******" } else { v }))
        })
        .collect()
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
