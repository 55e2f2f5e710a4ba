//! The job runner of a node: leases jobs from the store's queue and runs their handlers.
//!
//! Leases are held in the node's name (`DIR/node-id`). On start the node first reclaims whatever it
//! held before (that process is gone), so a `kill -9` costs no lease wait on a single node; on a
//! cluster, another node takes the job when the lease runs out. Handlers checkpoint through
//! [`JobControl::heartbeat`], which also extends the lease and stops them if the lease was lost.

pub use nimbus_api::{JobControl, JobError, JobHandler, LEASE_MS};
use nimbus_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const IDLE_POLL: Duration = Duration::from_millis(300);

/// Runs jobs until `shutdown` turns true. A job interrupted by shutdown is put back in the queue.
pub async fn run(store: Store, owner: String, handlers: Vec<Arc<dyn JobHandler>>, mut shutdown: watch::Receiver<bool>) {
    match store.reclaim_jobs(&owner).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(jobs = n, "resuming jobs this node was running when it stopped"),
        Err(e) => tracing::error!(error = %e, "could not reclaim this node's jobs"),
    }
    let kinds: Vec<&str> = handlers.iter().map(|h| h.kind()).collect();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let job = match store.lease_job(&owner, &kinds, LEASE_MS).await {
            Ok(Some(j)) => j,
            Ok(None) => {
                tokio::select! { _ = shutdown.changed() => break, _ = tokio::time::sleep(IDLE_POLL) => continue }
            }
            Err(e) => {
                tracing::error!(error = %e, "leasing a job failed");
                tokio::select! { _ = shutdown.changed() => break, _ = tokio::time::sleep(Duration::from_secs(2)) => continue }
            }
        };
        let Some(handler) = handlers.iter().find(|h| h.kind() == job.kind) else {
            continue;
        };
        tracing::info!(job = job.id, kind = job.kind, attempt = job.attempts, "job started");
        let ctl = JobControl::new(store.clone(), owner.clone(), job.id.clone());
        let outcome = tokio::select! {
            r = handler.run(&job, &ctl) => Some(r),
            _ = shutdown.changed() => None,
        };
        let recorded = match outcome {
            None => {
                tracing::info!(
                    job = job.id,
                    "shutting down: job goes back to the queue and resumes from its checkpoint"
                );
                store.reclaim_jobs(&owner).await.map(|_| true)
            }
            Some(Ok(result)) => {
                tracing::info!(job = job.id, "job succeeded");
                store.complete_job(&job.id, &owner, &result).await
            }
            Some(Err(JobError::LeaseLost)) => {
                tracing::warn!(job = job.id, "lost the job's lease; another worker has it");
                Ok(true)
            }
            Some(Err(JobError::Retry(msg))) => {
                tracing::warn!(job = job.id, error = msg, "job attempt failed; will retry");
                let backoff = 1000 * (1 << job.attempts.clamp(0, 6));
                store.fail_job(&job.id, &owner, &msg, backoff, false).await
            }
            Some(Err(JobError::Permanent(msg))) => {
                tracing::error!(job = job.id, error = msg, "job failed");
                store.fail_job(&job.id, &owner, &msg, 0, true).await
            }
        };
        if let Err(e) = recorded {
            tracing::error!(job = job.id, error = %e, "could not record the job's outcome");
        }
    }
}
