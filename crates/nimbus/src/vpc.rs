//! VPC in a running region: the reconcile job handler, and the start-up pass that makes the host
//! match the store after a restart or a crash (namespaces of deleted VPCs go, every VPC is
//! reconciled again).

use crate::worker::{JobControl, JobError, JobHandler};
use nimbus_api::BoxFut;
use nimbus_host::net::NetDriver;
use nimbus_store::{Job, NewJob, Store};
use serde_json::{Value, json};

pub struct ReconcileJob {
    pub store: Store,
    pub net: NetDriver,
    /// Ports of instances (security groups, EIP NAT, metadata), once ECS runs on this host.
    pub agent: Option<std::sync::Arc<crate::ecs::Agent>>,
}

impl JobHandler for ReconcileJob {
    fn kind(&self) -> &'static str {
        nimbus_vpc::RECONCILE_JOB
    }

    fn run<'a>(&'a self, job: &'a Job, _ctl: &'a JobControl) -> BoxFut<'a, Result<Value, JobError>> {
        Box::pin(async move {
            let vpc =
                job.payload["VpcId"].as_str().ok_or_else(|| JobError::Permanent("payload has no VpcId".into()))?;
            nimbus_vpc::reconcile::reconcile(&self.store, &self.net, &job.account_id, vpc)
                .await
                .map_err(JobError::Retry)?;
            let exists = self.store.get_resource(&job.account_id, vpc).await.is_ok();
            if let (Some(agent), true) = (&self.agent, exists) {
                agent.refresh_vpc(&job.account_id, vpc).await?;
            }
            Ok(json!({"VpcId": vpc}))
        })
    }
}

/// Removes namespaces no VPC owns and queues a reconcile of every VPC.
pub async fn converge_at_start(store: &Store, net: &NetDriver) -> anyhow::Result<usize> {
    let vpcs = store.all_resources_all_accounts(nimbus_vpc::VPC).await?;
    let owned: Vec<String> = vpcs.iter().map(|v| net.namespace(&v.id)).collect();
    let net2 = net.clone();
    let stray = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        let mut n = 0;
        for ns in net2.namespaces()? {
            if !owned.contains(&ns) {
                net2.remove_namespace(&ns)?;
                n += 1;
            }
        }
        Ok(n)
    })
    .await??;
    if stray > 0 {
        tracing::warn!(removed = stray, "removed network namespaces no VPC owns");
    }
    for v in &vpcs {
        store
            .enqueue_job(&NewJob {
                kind: nimbus_vpc::RECONCILE_JOB.into(),
                account_id: v.account_id.clone(),
                payload: json!({"VpcId": v.id}),
                max_attempts: 20,
            })
            .await?;
    }
    Ok(vpcs.len())
}
