//! A service as the region runs it: one [`Bundle`] exports everything the service runs — its API
//! [`Service`]s, its [`ObjectService`] if it has one, its [`JobHandler`]s, a start-up
//! convergence pass, background tasks and its [`HostAgent`] if it has one. `nimbus up` iterates
//! bundles and nothing else, so adding a service is adding one bundle.
//!
//! A bundle receives its dependencies (store, key provider, OSS handle, region, configuration
//! values) when it is built, as fields; nothing is handed over through process-wide statics.

use crate::{BoxFut, JobHandler, ObjectService, Service};
use std::sync::Arc;

/// Turns `true` once, when the region shuts down. Background tasks end when it does.
pub type Shutdown = tokio::sync::watch::Receiver<bool>;

/// A long-running future: spawned at start, awaited at shutdown.
pub type Background = BoxFut<'static, ()>;

/// Everything one service runs in a region.
///
/// Order of use by `nimbus up`: every bundle's [`services`](Bundle::services) (the registry, in
/// bundle order) and [`object_service`](Bundle::object_service); job handlers of bundles and
/// host agents; [`converge`](Bundle::converge) of every bundle in order, then of every host
/// agent; background tasks of both; then the job worker. At shutdown, after the listeners, the
/// worker and the background tasks have ended, [`HostAgent::stop`].
pub trait Bundle: Send + Sync {
    /// A short name for logs, e.g. `ecs`.
    fn name(&self) -> &'static str;

    /// The RPC services, registered in the gateway's [`crate::Registry`] (and listed by `nimbus
    /// admin actions`).
    fn services(&self) -> Vec<Arc<dyn Service>> {
        vec![]
    }

    /// The REST object service behind the object front door, if this bundle has one (OSS).
    fn object_service(&self) -> Option<Arc<dyn ObjectService>> {
        None
    }

    /// Handlers of the jobs this service queues (its host agent's come from the agent).
    fn job_handlers(&self) -> Vec<Arc<dyn JobHandler>> {
        vec![]
    }

    /// Run once at start, before the job worker and the background tasks: make the world match
    /// the store after a restart or a crash. An error is logged; the region starts anyway.
    fn converge(&self) -> BoxFut<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    /// Long-running tasks (timers, supervisors), each ending soon after `shutdown` turns true.
    fn background(&self, _shutdown: Shutdown) -> Vec<Background> {
        vec![]
    }

    /// The part of the service that runs on this host, if any (built only by `nimbus up`).
    fn host_agent(&self) -> Option<Arc<dyn HostAgent>> {
        None
    }
}

/// The part of a service that drives this machine (through `nimbus-host`): it runs jobs,
/// converges at start after every bundle has, and may keep watch in the background.
pub trait HostAgent: Send + Sync {
    fn name(&self) -> &'static str;

    fn job_handlers(&self) -> Vec<Arc<dyn JobHandler>> {
        vec![]
    }

    /// Run once at start, after every bundle's own [`Bundle::converge`].
    fn converge(&self) -> BoxFut<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn background(&self, _shutdown: Shutdown) -> Vec<Background> {
        vec![]
    }

    /// Called once at shutdown, after the job worker and every background task have ended.
    fn stop(&self) {}
}

/// A bundle of API services only (no jobs, no background work): what RAM/STS, KMS and
/// ActionTrail export today.
pub struct ApiBundle {
    pub name: &'static str,
    pub services: Vec<Arc<dyn Service>>,
}

impl Bundle for ApiBundle {
    fn name(&self) -> &'static str {
        self.name
    }
    fn services(&self) -> Vec<Arc<dyn Service>> {
        self.services.clone()
    }
}

/// The registry of `bundles`' services, in bundle order.
pub fn registry_of(bundles: &[Box<dyn Bundle>]) -> crate::Registry {
    let mut r = crate::Registry::new();
    for b in bundles {
        for s in b.services() {
            r.register(s);
        }
    }
    r
}
