//! Jobs as services see them: a [`JobHandler`] runs one kind of job, checkpointing through its
//! [`JobControl`]. The runner that leases jobs and calls handlers is the binary's (`worker.rs`);
//! handlers live with the service whose work they do and are handed over in its
//! [`crate::Bundle`].

use crate::BoxFut;
use nimbus_store::{Job, Store};
use serde_json::Value;

/// How long a lease lasts; a handler heartbeats well within it.
pub const LEASE_MS: i64 = 30_000;

#[derive(Debug)]
pub enum JobError {
    /// Worth another attempt later.
    Retry(String),
    /// Will never succeed: fail the job now.
    Permanent(String),
    /// Another worker holds the job now; stop quietly.
    LeaseLost,
}

impl<E: std::fmt::Display> From<E> for JobError {
    fn from(e: E) -> Self {
        JobError::Retry(e.to_string())
    }
}

/// What a running handler may do with its job.
pub struct JobControl {
    store: Store,
    owner: String,
    job_id: String,
}

impl JobControl {
    /// The control of job `job_id`, leased by `owner` (the worker's node id).
    pub fn new(store: Store, owner: String, job_id: String) -> Self {
        JobControl { store, owner, job_id }
    }

    /// Saves progress (0–100) and a checkpoint to resume from, and extends the lease.
    pub async fn heartbeat(&self, progress: i64, checkpoint: &Value) -> Result<(), JobError> {
        match self.store.heartbeat_job(&self.job_id, &self.owner, progress, Some(checkpoint), LEASE_MS).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(JobError::LeaseLost),
            Err(e) => Err(JobError::Retry(e.to_string())),
        }
    }
}

/// Runs the jobs of one kind. The handler holds what it needs (store, drivers), given to it
/// when its bundle was built.
pub trait JobHandler: Send + Sync {
    /// The job kind it runs, e.g. `vpc.reconcile`.
    fn kind(&self) -> &'static str;
    /// Runs (or resumes, from `job.checkpoint`) the job; returns its result.
    fn run<'a>(&'a self, job: &'a Job, ctl: &'a JobControl) -> BoxFut<'a, Result<Value, JobError>>;
}
