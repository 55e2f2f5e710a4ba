//! Verification of the chain and its digests.
//!
//! What it catches: an edited event (its hash no longer matches), a deleted event (a gap in the
//! sequence), reordered events (the previous-hash links break), edited lookup columns (they disagree
//! with the hashed body), a rewritten tail (it disagrees with the signed digest), forged, removed or
//! reordered digests (signatures and the digest chain), and a truncated trail (a digest covers
//! events that are gone). What it cannot catch: changes to events written after the last digest
//! that also recompute every later hash; digests are written every interval, and at shutdown.

use crate::chain::event_hash;
use crate::signer::verify_signature;
use nimbus_store::{Store, StoreError};
use serde_json::Value;
use std::collections::HashMap;

/// The first thing found wrong, in trail order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `event` or `digest`.
    pub record: &'static str,
    pub seq: i64,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.record, self.seq, self.what)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub events: i64,
    pub digests: usize,
    pub problem: Option<Problem>,
}

fn problem(record: &'static str, seq: i64, what: impl Into<String>) -> Option<Problem> {
    Some(Problem { record, seq, what: what.into() })
}

/// Verifies everything in `store` against the trail public key `public_hex`.
pub async fn verify(store: &Store, public_hex: &str) -> Result<Report, StoreError> {
    // Digests first: they are few, and they say what the events must be.
    let digests = store.digests().await?;
    let mut signed_end: HashMap<i64, (i64, String)> = HashMap::new();
    let mut digest_problem = None;
    let (mut prev_sig, mut prev_end) = (String::new(), 0i64);
    for (i, d) in digests.iter().enumerate() {
        let expect = i as i64 + 1;
        let body: Value = serde_json::from_str(&d.body).unwrap_or(Value::Null);
        let bad = if d.seq != expect {
            problem("digest", expect, "is missing")
        } else if !verify_signature(public_hex, d.body.as_bytes(), &d.signature) {
            problem("digest", d.seq, "has an invalid signature (forged or edited)")
        } else if body["previousDigestSignature"].as_str() != Some(prev_sig.as_str()) {
            problem("digest", d.seq, "does not follow the previous digest")
        } else if body["startSeq"].as_i64() != Some(prev_end + 1) {
            problem("digest", d.seq, "does not start where the previous digest ended")
        } else {
            None
        };
        if bad.is_some() {
            digest_problem = bad;
            break;
        }
        let end = body["endSeq"].as_i64().unwrap_or(0);
        signed_end.insert(end, (d.seq, body["endHash"].as_str().unwrap_or_default().to_string()));
        prev_sig = d.signature.clone();
        prev_end = end;
    }

    let (mut expected, mut prev_hash) = (1i64, String::new());
    let mut event_problem = None;
    'walk: loop {
        let page = store.trail_range(expected - 1, 1000).await?;
        if page.is_empty() {
            break;
        }
        for r in &page {
            let bad = if r.seq != expected {
                problem("event", expected, "is missing (deleted)")
            } else if r.prev_hash != prev_hash {
                problem("event", r.seq, "does not follow the previous event (removed, inserted or reordered)")
            } else if event_hash(&prev_hash, r.seq, &r.body) != r.hash {
                problem("event", r.seq, "was altered (its hash does not match its contents)")
            } else if !columns_match(r) {
                problem("event", r.seq, "has lookup columns that disagree with its contents")
            } else if let Some((d, _)) = signed_end.get(&r.seq).filter(|(_, h)| *h != r.hash) {
                problem("event", r.seq, format!("differs from what digest {d} signed (the chain was rewritten)"))
            } else {
                None
            };
            if bad.is_some() {
                event_problem = bad;
                break 'walk;
            }
            prev_hash = r.hash.clone();
            expected += 1;
        }
    }
    let last = expected - 1;
    if event_problem.is_none() && prev_end > last {
        event_problem = problem(
            "event",
            last + 1,
            format!("and later are gone: digest covers events up to {prev_end} (truncated)"),
        );
    }
    Ok(Report { events: last, digests: digests.len(), problem: event_problem.or(digest_problem) })
}

/// The indexed columns must say what the hashed body says.
fn columns_match(r: &nimbus_store::trail::TrailRow) -> bool {
    let Ok(b) = serde_json::from_str::<Value>(&r.body) else { return false };
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    b["eventId"].as_str() == Some(r.event_id.as_str())
        && s(&b["eventName"]) == r.event_name
        && s(&b["serviceName"]) == r.service_name
        && s(&b["eventRW"]) == r.event_rw
        && s(&b["userIdentity"]["accountId"]) == r.account_id
        && s(&b["userIdentity"]["accessKeyId"]) == r.access_key_id
        && s(&b["userIdentity"]["userName"]) == r.user_name
        && s(&b["errorCode"]) == r.error_code
        && s(&b["resourceName"]).split(';').next().unwrap_or_default() == r.resource_name
}
