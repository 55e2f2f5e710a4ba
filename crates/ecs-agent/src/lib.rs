//! The ECS host agent: what runs ECS instances on this machine.
//!
//! - [`agent`]: builds the system images, runs instances as QEMU VMs in their VPC's namespace,
//!   keeps each VPC's ports (anti-spoofing, security groups, EIP NAT) in step with the store,
//!   supervises instances; the `ecs.instance`, `ecs.build_image` and `ecs.create_image` jobs.
//! - [`metadata`]: the instance metadata service at 169.254.169.254 (and 100.100.100.200).
//! - [`bundle`]: [`bundle()`] builds ECS's [`nimbus_ecs::EcsBundle`] with this agent inside, from
//!   the dependencies `nimbus up` hands it.
//!
//! The machine itself changes only through `nimbus-host`.

pub mod agent;
pub mod bundle;
pub mod metadata;

pub use agent::{Agent, BUILD_IMAGE_JOB, DEBIAN_IMAGE_ID, SYSTEM_IMAGES, SystemImage, SystemImageKind};
pub use bundle::{AgentConfig, EcsHostAgent, bundle};
