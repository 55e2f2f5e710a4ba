//! Services and the registry the gateway routes through.

use crate::resolve::{Canonical, Resolved, ResourceParam};
use crate::{ApiError, Caller, Params};
use nimbus_core::region::Region;
use nimbus_store::Store;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "Read",
            Access::Write => "Write",
        }
    }
}

/// Builds a `&'static [ActionSpec]` whose RAM actions are `<prefix><Name>`:
/// `actions!("kms:"; "Encrypt" => Read, "CreateKey" => Write)`.
#[macro_export]
macro_rules! actions {
    ($prefix:literal; $($name:literal => $access:ident),* $(,)?) => {
        &[$($crate::ActionSpec { name: $name, ram_action: concat!($prefix, $name), access: $crate::Access::$access }),*]
    };
}

/// One action a service answers.
#[derive(Clone, Copy, Debug)]
pub struct ActionSpec {
    /// The wire name, e.g. `DescribeRegions`.
    pub name: &'static str,
    /// The RAM action the authorizer checks, e.g. `ecs:DescribeRegions`.
    pub ram_action: &'static str,
    pub access: Access,
}

/// Everything a handler may use for one call.
pub struct CallContext {
    pub request_id: String,
    pub caller: Caller,
    pub region: Arc<Region>,
    pub store: Store,
}

impl CallContext {
    /// `RegionId` must name this region (`InvalidRegionId.NotFound` otherwise).
    pub fn require_region(&self, params: &Params) -> Result<(), ApiError> {
        let r = params.require("RegionId")?;
        if r == self.region.id {
            Ok(())
        } else {
            Err(ApiError::new(
                404,
                "InvalidRegionId.NotFound",
                format!("The specified RegionId \"{r}\" does not exist."),
            ))
        }
    }

    /// `acs:<service>:<region>:<account>:<relative>`.
    pub fn arn(&self, service: &str, relative: &str) -> String {
        format!("acs:{service}:{}:{}:{relative}", self.region.id, self.caller.account_id)
    }
}

pub trait Service: Send + Sync + 'static {
    /// Product name as SDKs spell it, e.g. `Ecs`.
    fn product(&self) -> &'static str;
    /// Lowercase code: the RAM service prefix and endpoint label, e.g. `ecs`.
    fn code(&self) -> &'static str;
    /// API version, e.g. `2014-05-26`.
    fn version(&self) -> &'static str;
    fn actions(&self) -> &'static [ActionSpec];

    /// The parameters of `action` that name resources (see [`crate::resolve`]). Every parameter
    /// a handler reads as an identifier must be declared here: the handler sees only the
    /// canonical, authorized values of declared parameters.
    fn resource_params(&self, _action: &ActionSpec) -> &'static [ResourceParam] {
        &[]
    }

    /// One raw identifier of `kind` as the service compares it, with the ARNs to authorize.
    /// Default: the identifier as sent, `acs:<code>:<region>:<account>:<kind>/<id>`.
    fn canonical<'a>(
        &'a self,
        ctx: &'a CallContext,
        kind: &'static str,
        raw: String,
    ) -> BoxFut<'a, Result<Canonical, ApiError>> {
        let arn = ctx.arn(self.code(), &format!("{kind}/{raw}"));
        Box::pin(async move { Ok(Canonical::new(raw, arn)) })
    }

    /// The ARN of an action that names no resource: everything of this service in the account.
    fn account_arn(&self, ctx: &CallContext) -> String {
        ctx.arn(self.code(), "*")
    }

    /// Resolves a call before authorization (default: the declared parameters through
    /// [`Service::canonical`]). The gateway authorizes every check and hands the handler
    /// [`Resolved::params`].
    fn resolve<'a>(
        &'a self,
        ctx: &'a CallContext,
        action: &'a ActionSpec,
        params: &'a Params,
    ) -> BoxFut<'a, Result<Resolved, ApiError>> {
        Box::pin(crate::resolve::resolve_declared(self, ctx, action, params))
    }

    /// The code and status of an authorization denial. Most products answer `Forbidden.RAM` 403;
    /// RAM and STS answer `NoPermission` 403.
    fn deny_code(&self) -> &'static str {
        "Forbidden.RAM"
    }

    /// Runs an authorized call with its resolved parameters; returns the response body without `RequestId` (the gateway adds it).
    fn handle<'a>(
        &'a self,
        ctx: &'a CallContext,
        action: &'a ActionSpec,
        params: &'a Params,
    ) -> BoxFut<'a, Result<Value, ApiError>>;
}

/// Every service of the region, found by API version. Versions are unique across Alibaba's products.
#[derive(Default)]
pub struct Registry {
    services: Vec<Arc<dyn Service>>,
    by_version: HashMap<&'static str, usize>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `svc`. Panics on a duplicate version: that is a programming error found at start-up.
    pub fn register(&mut self, svc: Arc<dyn Service>) {
        let v = svc.version();
        assert!(!self.by_version.contains_key(v), "two services claim API version {v}");
        self.by_version.insert(v, self.services.len());
        self.services.push(svc);
    }

    pub fn by_version(&self, version: &str) -> Option<&Arc<dyn Service>> {
        self.by_version.get(version).map(|&i| &self.services[i])
    }

    pub fn services(&self) -> &[Arc<dyn Service>] {
        &self.services
    }

    /// Every (service, action) pair: what registry-wide tests walk.
    pub fn all_actions(&self) -> impl Iterator<Item = (&Arc<dyn Service>, &'static ActionSpec)> {
        self.services.iter().flat_map(|s| s.actions().iter().map(move |a| (s, a)))
    }
}
