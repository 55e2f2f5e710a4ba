//! The scrubber: every block of every replica of every object (and of parts of unfinished
//! uploads) is read and checked; rot and lost copies are rewritten from a good replica. Run in
//! the background by the region and on demand by `nimbus oss fsck`.

use crate::data::Segment;
use crate::engine::{Engine, FsckReport, StoredObject};
use crate::model::{ObjectMeta, PartMeta};
use nimbus_store::{Store, StoreError};
use std::sync::Arc;

/// Checks and heals everything the metadata points at; with `orphan_grace`, then removes replica
/// files nothing points at that are older than it.
pub async fn scrub(
    store: &Store,
    engine: &Arc<Engine>,
    orphan_grace: Option<std::time::Duration>,
) -> Result<FsckReport, StoreError> {
    let mut total = FsckReport::default();
    let mut referenced = std::collections::HashSet::new();
    let mut bucket_marker = String::new();
    loop {
        let buckets = store.list_buckets_all(&bucket_marker, 100).await?;
        let Some(last) = buckets.last() else { break };
        bucket_marker = last.name.clone();
        for b in &buckets {
            // Every version of every key (the current ones included).
            let (mut key_marker, mut version_marker) = (String::new(), String::new());
            loop {
                let page = store.list_object_versions(&b.name, "", &key_marker, &version_marker, "", 1000).await?;
                let stored: Vec<StoredObject> = page
                    .entries
                    .iter()
                    .filter(|e| !e.delete_marker)
                    .filter_map(|e| serde_json::from_value::<ObjectMeta>(e.row.meta.clone()).ok())
                    .flat_map(|m| m.segments.into_iter().map(|s| s.stored))
                    .collect();
                merge(&mut total, check(engine, stored, &mut referenced).await);
                match page.next {
                    Some((k, v)) => (key_marker, version_marker) = (k, v.unwrap_or_default()),
                    None => break,
                }
            }
            let (mut key_marker, mut id_marker) = (String::new(), String::new());
            loop {
                let uploads = store.list_uploads(&b.name, "", &key_marker, &id_marker, 100).await?;
                let Some(last) = uploads.last() else { break };
                (key_marker, id_marker) = (last.key.clone(), last.upload_id.clone());
                for u in &uploads {
                    let parts = store.list_parts(&u.upload_id, 0, 10_001).await?;
                    let stored: Vec<StoredObject> = parts
                        .iter()
                        .filter_map(|p| serde_json::from_value::<PartMeta>(p.meta.clone()).ok())
                        .map(|p: PartMeta| Segment::clone(&p.segment).stored)
                        .collect();
                    merge(&mut total, check(engine, stored, &mut referenced).await);
                }
            }
        }
    }
    if let Some(grace) = orphan_grace {
        let engine = engine.clone();
        total.orphans_removed =
            tokio::task::spawn_blocking(move || engine.sweep_orphans(&referenced, grace)).await.unwrap_or_default();
    }
    Ok(total)
}

async fn check(
    engine: &Arc<Engine>,
    stored: Vec<StoredObject>,
    referenced: &mut std::collections::HashSet<String>,
) -> FsckReport {
    referenced.extend(stored.iter().map(|s| s.id.clone()));
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || engine.fsck(stored.iter())).await.unwrap_or_default()
}

fn merge(total: &mut FsckReport, r: FsckReport) {
    total.objects += r.objects;
    total.blocks_checked += r.blocks_checked;
    total.repaired += r.repaired;
    total.lost.extend(r.lost);
    total.orphans_removed += r.orphans_removed;
}
