//! ECS, API version 2014-05-26.
//!
//! - [`api`]: one handler per action.
//! - [`bundle`]: the API and the host agent, as `nimbus up` runs them.
//! - [`model`]: the instance-type and disk catalog this region offers.
//! - [`security_group`]: security groups and their rules.
//! - [`image`]: images kept as OSS objects with SHA-256 digests, verified before every boot.
//! - [`instance`]: instances; the host agent (`nimbus-ecs-agent`) runs them as QEMU VMs.
//! - [`key_pair`]: SSH key pairs (public halves only are kept).
//! - [`ram_role`]: instance RAM roles, whose STS credentials the metadata service hands out.

pub mod api;
pub mod bundle;
pub mod image;
pub mod instance;
pub mod key_pair;
pub mod model;
pub mod ram_role;
pub mod security_group;

pub use api::Ecs;
pub use bundle::EcsBundle;
