//! The authorization hook. The RAM issue replaces [`RootOnly`] with the full policy evaluator.

use crate::{BoxFut, Caller, PrincipalType};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// No statement allowed it.
    ImplicitDeny,
    /// A statement denied it.
    ExplicitDeny,
}

pub trait Authorizer: Send + Sync {
    /// May `caller` perform `ram_action` (e.g. `ecs:DescribeRegions`) on every ARN in `resources`?
    fn authorize<'a>(
        &'a self,
        caller: &'a Caller,
        ram_action: &'a str,
        resources: &'a [String],
    ) -> BoxFut<'a, Decision>;
}

/// Until RAM exists: an account's root identity may do anything within its own account; every
/// other principal is implicitly denied. Resources are always scoped to the caller's account by
/// the services themselves.
pub struct RootOnly;

impl Authorizer for RootOnly {
    fn authorize<'a>(
        &'a self,
        caller: &'a Caller,
        _ram_action: &'a str,
        _resources: &'a [String],
    ) -> BoxFut<'a, Decision> {
        let d = if caller.principal_type == PrincipalType::Root { Decision::Allow } else { Decision::ImplicitDeny };
        Box::pin(async move { d })
    }
}
