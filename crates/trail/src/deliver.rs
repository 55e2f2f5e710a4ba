//! Trail delivery: for every trail that is logging, the account's new events (of the trail's
//! EventRW) go to `<dir>/<account>/<trail>/events-<first>-<last>.jsonl`, with a digest file beside
//! it: the events file's SHA-256, its range and count, and the previous digest's SHA-256, signed with
//! the trail key. Until OSS exists, `<dir>` is `DIR/trails`; OSS delivery will write the same files
//! to the trail's bucket.
//!
//! [`verify_delivered`] checks a trail folder: every digest's signature, the digest chain, and each
//! events file against its digest, and names the first bad file.

use crate::model::{Logging, TrailKind};
use crate::signer::{TrailKey, verify_signature};
use nimbus_core::clock::{iso8601, now_millis};
use nimbus_core::secret::write_private_file;
use nimbus_store::trail::TrailKey as Column;
use nimbus_store::{Store, StoreError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;

const BATCH: i64 = 10_000;

/// Delivers every logging trail's new events; errors are recorded on the trail.
pub async fn deliver(store: &Store, key: &TrailKey, root: &Path) {
    let trails = match store.repo::<TrailKind>().all_accounts().await {
        Ok(t) => t,
        Err(e) => return tracing::error!(error = %e, "listing trails for delivery"),
    };
    for t in trails.into_iter().filter(|t| t.spec.logging.status == Logging::Enable) {
        let name = t.spec.settings.name.clone();
        let rw = t.spec.settings.event_rw.clone();
        let filters = if rw == "All" { vec![] } else { vec![(Column::EventRw, rw)] };
        let after = t.spec.delivered_seq;
        let rows = match store.lookup_trail(&t.account_id, 0, i64::MAX, &filters, Some(after), true, BATCH).await {
            Ok(r) if !r.is_empty() => r,
            Ok(_) => continue,
            Err(e) => {
                tracing::error!(error = %e, trail = name, "reading events for delivery");
                continue;
            }
        };
        let (first, last) = (rows[0].seq, rows[rows.len() - 1].seq);
        let folder = root.join(&t.account_id).join(&name);
        let events_name = format!("events-{first:012}-{last:012}.jsonl");
        let mut events = String::new();
        for r in &rows {
            events.push_str(&r.body);
            events.push('\n');
        }
        let digest = json!({
            "trail": name, "accountId": t.account_id, "file": events_name,
            "sha256": hex::encode(Sha256::digest(events.as_bytes())), "firstSeq": first, "lastSeq": last, "count": rows.len(),
            "previousDigestSha256": t.spec.previous_digest_sha256, "createdAt": iso8601(now_millis()), "publicKey": key.public_hex(),
        })
        .to_string();
        let signed = json!({"digest": digest, "signature": key.sign(digest.as_bytes())}).to_string();
        let written = std::fs::create_dir_all(&folder)
            .and_then(|_| write_private_file(&folder.join(&events_name), events.as_bytes()))
            .and_then(|_| {
                write_private_file(&folder.join(format!("digest-{first:012}-{last:012}.json")), signed.as_bytes())
            });
        let digest_sha = hex::encode(Sha256::digest(signed.as_bytes()));
        let recorded = store
            .repo::<TrailKind>()
            .update_with(&t.account_id, &t.id, |fresh| {
                // Restarted meanwhile (StopLogging, StartLogging): its cursor moved; leave it.
                if fresh.spec.delivered_seq != after {
                    return Ok(());
                }
                match &written {
                    Ok(()) => {
                        fresh.spec.delivered_seq = last;
                        fresh.spec.previous_digest_sha256 = digest_sha.clone();
                        fresh.spec.logging.latest_delivery_time = iso8601(now_millis());
                        fresh.spec.logging.latest_delivery_error = String::new();
                    }
                    Err(e) => fresh.spec.logging.latest_delivery_error = e.to_string(),
                }
                Ok::<_, StoreError>(())
            })
            .await;
        if let Err(e) = recorded {
            tracing::error!(error = %e, trail = name, "recording the delivery");
        }
    }
}

/// Checks a delivered trail folder; `Ok(files checked)` or `Err(first problem)`.
pub fn verify_delivered(folder: &Path, public_hex: &str) -> Result<usize, String> {
    let mut digests: Vec<String> = std::fs::read_dir(folder)
        .map_err(|e| format!("{}: {e}", folder.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("digest-") && n.ends_with(".json"))
        .collect();
    digests.sort();
    let mut events_files: Vec<String> = std::fs::read_dir(folder)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("events-"))
        .collect();
    events_files.sort();
    let (mut prev_sha, mut prev_last) = (String::new(), 0i64);
    for d in &digests {
        let raw = std::fs::read(folder.join(d)).map_err(|e| format!("{d}: {e}"))?;
        let outer: Value = serde_json::from_slice(&raw).map_err(|_| format!("{d}: not a digest file"))?;
        let body = outer["digest"].as_str().unwrap_or_default();
        if !verify_signature(public_hex, body.as_bytes(), outer["signature"].as_str().unwrap_or_default()) {
            return Err(format!("{d}: invalid signature (forged or edited)"));
        }
        let digest: Value = serde_json::from_str(body).map_err(|_| format!("{d}: unreadable"))?;
        if digest["previousDigestSha256"].as_str() != Some(prev_sha.as_str()) {
            return Err(format!("{d}: does not follow the previous digest (a digest was removed or reordered)"));
        }
        let first = digest["firstSeq"].as_i64().unwrap_or(0);
        if first <= prev_last {
            return Err(format!("{d}: overlaps the previous delivery"));
        }
        let file = digest["file"].as_str().unwrap_or_default();
        let content = std::fs::read(folder.join(file)).map_err(|_| format!("{file}: missing (deleted)"))?;
        if hex::encode(Sha256::digest(&content)) != digest["sha256"].as_str().unwrap_or_default() {
            return Err(format!("{file}: altered (edited, reordered or truncated events)"));
        }
        events_files.retain(|f| f != file);
        prev_sha = hex::encode(Sha256::digest(&raw));
        prev_last = digest["lastSeq"].as_i64().unwrap_or(0);
    }
    if let Some(orphan) = events_files.first() {
        return Err(format!("{orphan}: no signed digest covers it (its digest was removed)"));
    }
    Ok(digests.len())
}
