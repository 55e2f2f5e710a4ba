//! ECS as the region runs it: the API and, on a host that runs instances, the host agent
//! (`nimbus-ecs-agent`, which builds this bundle with itself inside).

use crate::Ecs;
use nimbus_api::{Bundle, HostAgent, Service};
use std::sync::Arc;

pub struct EcsBundle {
    pub api: Arc<Ecs>,
    /// The host agent (instances as VMs, images, VPC ports, metadata service), if this process
    /// runs one.
    pub agent: Option<Arc<dyn HostAgent>>,
}

impl EcsBundle {
    /// The API alone (what `nimbus admin actions` describes): no image store, console or
    /// memory limit, no agent.
    pub fn api_only() -> Self {
        EcsBundle { api: Arc::new(Ecs::default()), agent: None }
    }
}

impl Bundle for EcsBundle {
    fn name(&self) -> &'static str {
        "ecs"
    }
    fn services(&self) -> Vec<Arc<dyn Service>> {
        vec![self.api.clone()]
    }
    fn host_agent(&self) -> Option<Arc<dyn HostAgent>> {
        self.agent.clone()
    }
}
