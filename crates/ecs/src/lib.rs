//! ECS, API version 2014-05-26.
//!
//! - [`api`]: one handler per action.
//! - [`model`]: the instance-type and disk catalog this region offers.
//! - [`security_group`]: security groups and their rules.
//! - [`key_pair`]: SSH key pairs (public halves only are kept).

pub mod api;
pub mod key_pair;
pub mod model;
pub mod security_group;

pub use api::Ecs;
