//! ECS action handlers.

use crate::model::{DISK_CATEGORIES, INSTANCE_TYPES, RESOURCE_TYPES};
use crate::security_group as sg;
use nimbus_api::{ActionSpec, ApiError, BoxFut, CallContext, Params, Service};
use serde_json::{Value, json};

pub struct Ecs;

const ACTIONS: &[ActionSpec] = nimbus_api::actions!["ecs:";
    "DescribeRegions" => Read, "DescribeZones" => Read,
    "CreateSecurityGroup" => Write, "DescribeSecurityGroups" => Read, "DescribeSecurityGroupAttribute" => Read,
    "AuthorizeSecurityGroup" => Write, "AuthorizeSecurityGroupEgress" => Write,
    "RevokeSecurityGroup" => Write, "RevokeSecurityGroupEgress" => Write, "DeleteSecurityGroup" => Write,
    "CreateKeyPair" => Write, "ImportKeyPair" => Write, "DescribeKeyPairs" => Read, "DeleteKeyPairs" => Write,
];

impl Service for Ecs {
    fn product(&self) -> &'static str {
        "Ecs"
    }
    fn code(&self) -> &'static str {
        "ecs"
    }
    fn version(&self) -> &'static str {
        "2014-05-26"
    }
    fn actions(&self) -> &'static [ActionSpec] {
        ACTIONS
    }

    fn resources(&self, ctx: &CallContext, _action: &ActionSpec, p: &Params) -> Vec<String> {
        if let Some(id) = p.get("SecurityGroupId").filter(|v| !v.is_empty()) {
            return vec![ctx.arn("ecs", &format!("securitygroup/{id}"))];
        }
        if let Some(name) = p.get("KeyPairName").filter(|v| !v.is_empty()) {
            return vec![ctx.arn("ecs", &format!("keypair/{name}"))];
        }
        vec![ctx.arn("ecs", "*")]
    }

    fn handle<'a>(
        &'a self,
        ctx: &'a CallContext,
        action: &'a ActionSpec,
        params: &'a Params,
    ) -> BoxFut<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            match action.name {
                "DescribeRegions" => Ok(describe_regions(ctx)),
                "DescribeZones" => describe_zones(ctx, params),
                "CreateKeyPair" | "ImportKeyPair" | "DescribeKeyPairs" | "DeleteKeyPairs" => {
                    ctx.require_region(params)?;
                    match action.name {
                        "CreateKeyPair" => crate::key_pair::create(ctx, params).await,
                        "ImportKeyPair" => crate::key_pair::import(ctx, params).await,
                        "DescribeKeyPairs" => crate::key_pair::describe(ctx, params).await,
                        _ => crate::key_pair::delete(ctx, params).await,
                    }
                }
                name if name.contains("SecurityGroup") => {
                    ctx.require_region(params)?;
                    match name {
                        "CreateSecurityGroup" => sg::create(ctx, params).await,
                        "DescribeSecurityGroups" => sg::describe(ctx, params).await,
                        "DescribeSecurityGroupAttribute" => sg::attribute(ctx, params).await,
                        "AuthorizeSecurityGroup" => sg::authorize(ctx, params, true).await,
                        "AuthorizeSecurityGroupEgress" => sg::authorize(ctx, params, false).await,
                        "RevokeSecurityGroup" => sg::revoke(ctx, params, true).await,
                        "RevokeSecurityGroupEgress" => sg::revoke(ctx, params, false).await,
                        _ => sg::delete(ctx, params).await,
                    }
                }
                other => Err(ApiError::new(404, "InvalidAction.NotFound", format!("ECS has no action {other}."))),
            }
        })
    }
}

/// `DescribeRegions`: this region, with its endpoint. `RegionId` is optional and not checked: the
/// v1 SDK sends whatever region the client was configured with.
fn describe_regions(ctx: &CallContext) -> Value {
    let r = &ctx.region;
    json!({
        "Regions": {"Region": [{
            "RegionId": r.id,
            "LocalName": r.local_name,
            "RegionEndpoint": r.endpoint_host("ecs"),
            "Status": "available",
        }]}
    })
}

/// `DescribeZones`: the region's zones and what each offers. `RegionId` is required.
fn describe_zones(ctx: &CallContext, params: &Params) -> Result<Value, ApiError> {
    ctx.require_region(params)?;
    let types: Vec<&str> = INSTANCE_TYPES.iter().map(|t| t.0).collect();
    let zones: Vec<Value> = ctx
        .region
        .zones
        .iter()
        .map(|z| {
            json!({
                "ZoneId": z.id,
                "LocalName": z.local_name,
                "AvailableInstanceTypes": {"InstanceTypes": types},
                "AvailableDiskCategories": {"DiskCategories": DISK_CATEGORIES},
                "AvailableResourceCreation": {"ResourceTypes": RESOURCE_TYPES},
            })
        })
        .collect();
    Ok(json!({"Zones": {"Zone": zones}}))
}
