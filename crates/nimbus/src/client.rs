//! A signed RPC client (signature v1, HMAC-SHA1, as `aliyun-python-sdk-core` signs), used by the
//! CLI and by the integration tests.

use anyhow::{Context, Result, bail};
use nimbus_core::secret::Secret;
use nimbus_gateway::signature::{pct, v1};
use serde_json::Value;
use std::sync::Arc;

/// Product code → API version of every product this build serves, for `nimbus <product> <Action>`
/// and the CLI's help (a unit test in `up.rs` keeps it equal to the registry; a new service's
/// bundle adds its line here).
pub const PRODUCTS: &[(&str, &str)] = &[
    ("ecs", "2014-05-26"),
    ("ram", "2015-05-01"),
    ("sts", "2015-04-01"),
    ("actiontrail", "2020-07-06"),
    ("kms", "2016-01-20"),
    ("vpc", "2016-04-28"),
];

/// `ecs, ram, …` for messages and help.
pub fn product_list() -> String {
    PRODUCTS.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(", ")
}

pub fn version_of(product: &str) -> Option<&'static str> {
    PRODUCTS.iter().find(|(p, _)| p.eq_ignore_ascii_case(product)).map(|(_, v)| *v)
}

/// A response: HTTP status and JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> Option<&str> {
        self.body.get("Code").and_then(Value::as_str)
    }
}

pub struct RpcClient {
    /// `http://host:port` or `https://host:port`.
    endpoint: String,
    access_key_id: String,
    secret: Secret,
    /// STS SecurityToken, sent as the `SecurityToken` parameter (signed like the others).
    security_token: Option<Secret>,
    agent: ureq::Agent,
}

/// The endpoint (no trailing `/`, checked to be http(s)) and an HTTP agent that trusts `ca_pem`
/// when given (a Nimbus region's `ca.pem`) and hands non-2xx answers back instead of failing.
pub(crate) fn agent(
    endpoint: &str,
    timeout: std::time::Duration,
    ca_pem: Option<&[u8]>,
) -> Result<(String, ureq::Agent)> {
    let endpoint = endpoint.trim_end_matches('/').to_string();
    if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
        bail!("endpoint {endpoint:?} must start with http:// or https://");
    }
    let mut cfg = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(timeout));
    if let Some(pem) = ca_pem {
        let mut certs = vec![];
        for item in ureq::tls::parse_pem(pem) {
            if let ureq::tls::PemItem::Certificate(c) = item.context("reading the CA file")? {
                certs.push(c);
            }
        }
        if certs.is_empty() {
            bail!("the CA file holds no certificate");
        }
        cfg = cfg.tls_config(
            ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs))).build(),
        );
    }
    Ok((endpoint, cfg.build().into()))
}

impl RpcClient {
    /// `ca_pem`: the CA to trust for `https://` endpoints (a Nimbus region's `ca.pem`).
    pub fn new(endpoint: &str, access_key_id: &str, secret: &str, ca_pem: Option<&[u8]>) -> Result<Self> {
        let (endpoint, agent) = agent(endpoint, std::time::Duration::from_secs(60), ca_pem)?;
        Ok(RpcClient {
            endpoint,
            access_key_id: access_key_id.to_string(),
            secret: Secret::new(secret),
            security_token: None,
            agent,
        })
    }

    /// Uses temporary STS credentials: `access_key_id` is the `STS.…` key, `token` its SecurityToken.
    pub fn with_security_token(mut self, token: &str) -> Self {
        self.security_token = Some(Secret::new(token));
        self
    }

    /// The signed query string for one call, with the given nonce and timestamp (tests pin them).
    pub fn signed_query(
        &self,
        method: &str,
        version: &str,
        action: &str,
        params: &[(String, String)],
        nonce: &str,
        timestamp: &str,
    ) -> String {
        let mut all: Vec<(String, String)> = vec![
            ("Action".into(), action.into()),
            ("Version".into(), version.into()),
            ("Format".into(), "JSON".into()),
            ("AccessKeyId".into(), self.access_key_id.clone()),
            ("SignatureMethod".into(), "HMAC-SHA1".into()),
            ("SignatureVersion".into(), "1.0".into()),
            ("SignatureNonce".into(), nonce.into()),
            ("Timestamp".into(), timestamp.into()),
        ];
        if let Some(t) = &self.security_token {
            all.push(("SecurityToken".into(), t.expose().to_string()));
        }
        all.extend(params.iter().cloned());
        let sts = v1::string_to_sign(method, all.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        all.push(("Signature".into(), v1::sign(self.secret.expose(), &sts)));
        all.iter().map(|(k, v)| format!("{}={}", pct(k), pct(v))).collect::<Vec<_>>().join("&")
    }

    /// Calls `action` of API `version` with `params` (POST, parameters in the query, as the SDKs do).
    pub fn call(&self, version: &str, action: &str, params: &[(String, String)]) -> Result<Reply> {
        let nonce = uuid::Uuid::new_v4().to_string();
        let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let q = self.signed_query("POST", version, action, params, &nonce, &ts);
        self.send("POST", &q)
    }

    /// Sends a prepared query string.
    pub fn send(&self, method: &str, query: &str) -> Result<Reply> {
        let url = format!("{}/?{query}", self.endpoint);
        let mut resp = match method {
            "GET" => self.agent.get(&url).call(),
            _ => self.agent.post(&url).send_empty(),
        }
        .with_context(|| format!("calling {}", self.endpoint))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().context("reading the response")?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Reply { status, body })
    }
}
