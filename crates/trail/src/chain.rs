//! Event bodies and chain hashes.

use nimbus_api::AuditEvent;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The event as ActionTrail shows it (camelCase fields; `userIdentity` nested). Serialized with
/// keys in this fixed order, so the same event always yields the same bytes.
pub fn event_body(e: &AuditEvent) -> Value {
    let identity_type = e.principal_type.clone().unwrap_or_else(|| "anonymous".into());
    json!({
        "eventId": e.event_id,
        "eventVersion": "1",
        "eventType": if e.event_name == "ConsoleSignin" { "ConsoleSignin" } else { "ApiCall" },
        "eventName": e.event_name,
        "eventSource": e.event_source,
        "eventTime": e.event_time,
        "eventRW": e.event_rw,
        "serviceName": e.service_name,
        "apiVersion": e.api_version,
        "acsRegion": e.acs_region,
        "requestId": e.request_id,
        "sourceIpAddress": e.source_ip_address,
        "userAgent": e.user_agent,
        "userIdentity": {
            "type": identity_type,
            "principalId": e.principal_id,
            "accountId": e.account_id,
            "accessKeyId": e.access_key_id,
            "userName": e.principal_name,
        },
        "requestParameters": e.request_parameters,
        "resourceName": e.resources.join(";"),
        "resourceType": e.resources.first().and_then(|r| r.rsplit(':').next()).and_then(|rel| rel.split('/').next()).unwrap_or_default(),
        "httpStatus": e.http_status,
        "errorCode": e.error_code,
        "errorMessage": e.error_message,
    })
}

/// `hex(SHA-256(prev_hash "\n" seq "\n" body))`: covers position and content.
pub fn event_hash(prev_hash: &str, seq: i64, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(seq.to_string().as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    hex::encode(h.finalize())
}
