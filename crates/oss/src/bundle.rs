//! OSS as the region runs it: the object service behind the object front door, and its
//! background work (lifecycle expiration and the scrubber).

use crate::Oss;
use nimbus_api::{Background, Bundle, ObjectService, Shutdown};
use nimbus_core::clock::now_millis;
use std::sync::Arc;
use std::time::Duration;

/// Replica files unreferenced for this long are leftovers of a crash, not uploads in flight.
const ORPHAN_GRACE: Duration = Duration::from_secs(3600);

pub struct OssBundle {
    pub oss: Arc<Oss>,
    /// `--oss-lifecycle-secs`: how often lifecycle rules are applied.
    pub lifecycle_every: Duration,
    /// `--oss-scrub-secs`: how often every replica block is checked.
    pub scrub_every: Duration,
}

impl Bundle for OssBundle {
    fn name(&self) -> &'static str {
        "oss"
    }
    fn object_service(&self) -> Option<Arc<dyn ObjectService>> {
        Some(self.oss.clone())
    }
    fn background(&self, shutdown: Shutdown) -> Vec<Background> {
        vec![Box::pin(maintain(self.oss.clone(), self.lifecycle_every, self.scrub_every, shutdown))]
    }
}

pub async fn maintain(oss: Arc<Oss>, lifecycle_every: Duration, scrub_every: Duration, mut stop: Shutdown) {
    let mut lifecycle = tokio::time::interval(lifecycle_every);
    let mut scrub = tokio::time::interval(scrub_every);
    // The first tick of an interval is immediate; let the region finish starting first.
    lifecycle.tick().await;
    scrub.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = lifecycle.tick() => match oss.expire_once(now_millis()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "OSS lifecycle: expired objects deleted"),
                Err(e) => tracing::warn!(error = %e, "OSS lifecycle pass failed"),
            },
            _ = scrub.tick() => match crate::scrub::scrub(oss.store(), oss.engine(), Some(ORPHAN_GRACE)).await {
                Ok(r) if r.repaired > 0 || !r.lost.is_empty() || r.orphans_removed > 0 => {
                    tracing::warn!(objects = r.objects, repaired = r.repaired, lost = r.lost.len(), orphans = r.orphans_removed, "OSS scrub healed replicas");
                }
                Ok(r) => tracing::info!(objects = r.objects, blocks = r.blocks_checked, "OSS scrub: all replicas intact"),
                Err(e) => tracing::warn!(error = %e, "OSS scrub failed"),
            },
        }
    }
}
