//! OSS background work in a running region: lifecycle expiration and the scrubber.

use nimbus_core::clock::now_millis;
use nimbus_oss::Oss;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Replica files unreferenced for this long are leftovers of a crash, not uploads in flight.
const ORPHAN_GRACE: Duration = Duration::from_secs(3600);

pub async fn maintain(
    oss: Arc<Oss>,
    lifecycle_every: Duration,
    scrub_every: Duration,
    mut stop: watch::Receiver<bool>,
) {
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
            _ = scrub.tick() => match nimbus_oss::scrub::scrub(oss.store(), oss.engine(), Some(ORPHAN_GRACE)).await {
                Ok(r) if r.repaired > 0 || !r.lost.is_empty() || r.orphans_removed > 0 => {
                    tracing::warn!(objects = r.objects, repaired = r.repaired, lost = r.lost.len(), orphans = r.orphans_removed, "OSS scrub healed replicas");
                }
                Ok(r) => tracing::info!(objects = r.objects, blocks = r.blocks_checked, "OSS scrub: all replicas intact"),
                Err(e) => tracing::warn!(error = %e, "OSS scrub failed"),
            },
        }
    }
}
