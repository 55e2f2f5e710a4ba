//! ECS, API version 2014-05-26.
//!
//! - [`api`]: one handler per action.
//! - [`model`]: the instance-type and disk catalog this region offers.

pub mod api;
pub mod model;

pub use api::Ecs;
