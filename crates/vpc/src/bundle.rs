//! VPC as the region runs it: the API, the `vpc.reconcile` job handler, and the start-up pass
//! that makes the host match the store after a restart or a crash (namespaces of deleted VPCs
//! go, every VPC is reconciled again).

use crate::{RECONCILE_JOB, VPC, Vpc};
use nimbus_api::{BoxFut, Bundle, JobControl, JobError, JobHandler, Service};
use nimbus_host::net::NetDriver;
use nimbus_store::{Job, NewJob, Store};
use serde_json::{Value, json};
use std::sync::Arc;

/// What else lives on a VPC's ports and must follow a reconcile: ECS instances' security
/// groups, EIP NAT and metadata service (the ECS host agent implements it).
pub trait VpcPorts: Send + Sync {
    fn refresh_vpc<'a>(&'a self, account: &'a str, vpc: &'a str) -> BoxFut<'a, Result<(), JobError>>;
}

pub struct VpcBundle {
    /// The data plane on this host (`None`: the API alone, as `nimbus admin actions` needs).
    data_plane: Option<Arc<ReconcileJob>>,
}

impl VpcBundle {
    pub fn api_only() -> Self {
        VpcBundle { data_plane: None }
    }

    /// The API and the data plane driven through `net`. `eip_pool` is `--eip-pool` (default
    /// 100.64.0.0/16); `ports` is the ECS host agent, when instances run here.
    pub fn new(
        store: Store,
        net: NetDriver,
        eip_pool: Option<ipnet::Ipv4Net>,
        ports: Option<Arc<dyn VpcPorts>>,
    ) -> Self {
        if let Some(pool) = eip_pool {
            crate::eip::set_pool(pool);
        }
        VpcBundle { data_plane: Some(Arc::new(ReconcileJob { store, net, ports })) }
    }
}

impl Bundle for VpcBundle {
    fn name(&self) -> &'static str {
        "vpc"
    }
    fn services(&self) -> Vec<Arc<dyn Service>> {
        vec![Arc::new(Vpc)]
    }
    fn job_handlers(&self) -> Vec<Arc<dyn JobHandler>> {
        self.data_plane.iter().map(|j| j.clone() as Arc<dyn JobHandler>).collect()
    }
    fn converge(&self) -> BoxFut<'_, Result<(), String>> {
        Box::pin(async move {
            let Some(dp) = &self.data_plane else { return Ok(()) };
            match converge_at_start(&dp.store, &dp.net).await {
                Ok(n) => {
                    tracing::info!(vpcs = n, prefix = dp.net.prefix(), "VPC data plane: reconciling every VPC");
                    Ok(())
                }
                Err(e) => Err(format!(
                    "VPC data plane could not be checked at start (are we root, is iproute2 installed?): {e}"
                )),
            }
        })
    }
}

/// The `vpc.reconcile` job: one VPC's namespace and bridges, then its ports.
pub struct ReconcileJob {
    pub store: Store,
    pub net: NetDriver,
    pub ports: Option<Arc<dyn VpcPorts>>,
}

impl JobHandler for ReconcileJob {
    fn kind(&self) -> &'static str {
        RECONCILE_JOB
    }

    fn run<'a>(&'a self, job: &'a Job, _ctl: &'a JobControl) -> BoxFut<'a, Result<Value, JobError>> {
        Box::pin(async move {
            let vpc =
                job.payload["VpcId"].as_str().ok_or_else(|| JobError::Permanent("payload has no VpcId".into()))?;
            crate::reconcile::reconcile(&self.store, &self.net, &job.account_id, vpc).await.map_err(JobError::Retry)?;
            let exists = self.store.get_resource(&job.account_id, vpc).await.is_ok();
            if let (Some(ports), true) = (&self.ports, exists) {
                ports.refresh_vpc(&job.account_id, vpc).await?;
            }
            Ok(json!({"VpcId": vpc}))
        })
    }
}

/// Removes namespaces no VPC owns and queues a reconcile of every VPC.
pub async fn converge_at_start(store: &Store, net: &NetDriver) -> Result<usize, String> {
    let vpcs = store.all_resources_all_accounts(VPC).await.map_err(|e| e.to_string())?;
    let owned: Vec<String> = vpcs.iter().map(|v| net.namespace(&v.id)).collect();
    let net2 = net.clone();
    let stray = tokio::task::spawn_blocking(move || -> Result<usize, nimbus_host::net::NetError> {
        let mut n = 0;
        for ns in net2.namespaces()? {
            if !owned.contains(&ns) {
                net2.remove_namespace(&ns)?;
                n += 1;
            }
        }
        Ok(n)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    if stray > 0 {
        tracing::warn!(removed = stray, "removed network namespaces no VPC owns");
    }
    for v in &vpcs {
        store
            .enqueue_job(&NewJob {
                kind: RECONCILE_JOB.into(),
                account_id: v.account_id.clone(),
                payload: json!({"VpcId": v.id}),
                max_attempts: 20,
            })
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(vpcs.len())
}
