//! VPC, API version 2016-04-28.
//!
//! - [`api`]: the handlers. They write the desired state (resources in the store) and queue a
//!   `vpc.reconcile` job; they never touch the host.
//! - [`bundle`]: the API, the `vpc.reconcile` job and the start-up pass, as `nimbus up` runs them.
//! - [`eip`]: elastic IP addresses from the region's pool.
//! - [`route`]: each VPC's system route table (its vSwitches' blocks).
//! - [`model`]: the stored rows as typed state (`nimbus_store::Repo`); read-only views of ECS rows.
//! - [`cidr`]: address-block rules (what a VPC or vSwitch may use, containment, overlap).
//! - [`reconcile`]: makes the host match the store for one VPC (namespace, one bridge per
//!   vSwitch), run by the job worker; idempotent, so a crash mid-way converges on the next run.

pub mod api;
pub mod bundle;
pub mod cidr;
pub mod eip;
pub mod model;
pub mod reconcile;
pub mod route;

pub use api::Vpc;
pub use bundle::{VpcBundle, VpcPorts};

/// Resource kinds in the store (their schema: [`model`]).
pub const VPC: &str = <model::VpcKind as nimbus_store::Kind>::KIND;
pub const VSWITCH: &str = <model::VSwitchKind as nimbus_store::Kind>::KIND;
/// The job that reconciles one VPC (payload `{"VpcId": …}`).
pub const RECONCILE_JOB: &str = "vpc.reconcile";

/// Queues the reconciliation of one VPC's data plane (every API change to a VPC, its vSwitches,
/// EIPs, routes, security groups or instance addresses ends here).
pub async fn reconcile_later(ctx: &nimbus_api::CallContext, vpc_id: &str) -> Result<(), nimbus_api::ApiError> {
    ctx.store
        .enqueue_job(&nimbus_store::NewJob {
            kind: RECONCILE_JOB.into(),
            account_id: ctx.caller.account_id.clone(),
            payload: serde_json::json!({"VpcId": vpc_id}),
            max_attempts: 20,
        })
        .await?;
    Ok(())
}
