//! ECS action handlers.

use crate::image::{self, ImageObjects};
use crate::instance;
use crate::model::{DISK_CATEGORIES, INSTANCE_TYPES, RESOURCE_TYPES};
use crate::security_group as sg;
use nimbus_api::{ActionSpec, ApiError, BoxFut, CallContext, Params, Service};
use serde_json::{Value, json};
use std::sync::Arc;

const ACTIONS: &[ActionSpec] = nimbus_api::actions!["ecs:";
    "DescribeRegions" => Read, "DescribeZones" => Read,
    "CreateSecurityGroup" => Write, "DescribeSecurityGroups" => Read, "DescribeSecurityGroupAttribute" => Read,
    "AuthorizeSecurityGroup" => Write, "AuthorizeSecurityGroupEgress" => Write,
    "RevokeSecurityGroup" => Write, "RevokeSecurityGroupEgress" => Write, "DeleteSecurityGroup" => Write,
    "CreateKeyPair" => Write, "ImportKeyPair" => Write, "DescribeKeyPairs" => Read, "DeleteKeyPairs" => Write,
    "DescribeImages" => Read, "DeleteImage" => Write, "CreateImage" => Write, "ModifyImageSharePermission" => Write,
    "DescribeImageSharePermission" => Read, "DescribeInstanceTypes" => Read,
    "RunInstances" => Write, "CreateInstance" => Write, "DescribeInstances" => Read,
    "DescribeInstanceAttribute" => Read, "DescribeInstanceStatus" => Read, "StartInstance" => Write,
    "StartInstances" => Write, "StopInstance" => Write, "StopInstances" => Write, "RebootInstance" => Write,
    "DeleteInstance" => Write, "DeleteInstances" => Write, "ModifyInstanceAttribute" => Write,
    "GetInstanceConsoleOutput" => Read, "AllocatePublicIpAddress" => Write,
    "AttachInstanceRamRole" => Write, "DetachInstanceRamRole" => Write, "DescribeInstanceRamRole" => Read,
    "ModifyInstanceMetadataOptions" => Write,
];

/// Reads an instance's console log (the host agent keeps it): GetInstanceConsoleOutput.
pub type ConsoleReader = Box<dyn Fn(&str) -> String + Send + Sync>;

/// The ECS API, with what a running region gives it (see [`crate::EcsBundle`]).
#[derive(Default)]
pub struct Ecs {
    /// The region's image store (OSS). Without it RunInstances cannot verify images before
    /// making instances (the host agent verifies them again before every boot).
    pub images: Option<Arc<dyn ImageObjects>>,
    /// The host agent's console logs; without it the console output is empty.
    pub console: Option<ConsoleReader>,
    /// The guest memory this region's host offers (`nimbus up --instance-memory-mib`); `None`
    /// means no limit beyond the per-account quota.
    pub memory_capacity_mib: Option<u64>,
}

/// A vSwitch's gateway: its CIDR's first host.
pub fn gateway_of(cidr: ipnet::Ipv4Net) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(u32::from(cidr.network()) + 1)
}

use nimbus_api::ResourceParam as R;

/// The parameters of each action that name resources. Group peers in rules are resources too:
/// a rule that lets another group in names that group.
fn resource_params(action: &str) -> &'static [R] {
    const SG: R = R::one("SecurityGroupId", "securitygroup");
    const INSTANCE: R = R::one("InstanceId", "instance");
    const INSTANCES_JSON: R = R::json("InstanceIds", "instance");
    const INSTANCES_N: R = R::repeat("InstanceId", "instance");
    const IMAGE: R = R::one("ImageId", "image");
    const KEYPAIR: R = R::one("KeyPairName", "keypair");
    const ROLE: R = R::passed_role("RamRoleName");
    match action {
        "DescribeSecurityGroups" => nimbus_api::resource_params![SG, R::json("SecurityGroupIds", "securitygroup")],
        "AuthorizeSecurityGroup" | "RevokeSecurityGroup" => {
            nimbus_api::resource_params![SG, R::one("SourceGroupId", "securitygroup")]
        }
        "AuthorizeSecurityGroupEgress" | "RevokeSecurityGroupEgress" => {
            nimbus_api::resource_params![SG, R::one("DestGroupId", "securitygroup")]
        }
        "DescribeSecurityGroupAttribute" | "DeleteSecurityGroup" => nimbus_api::resource_params![SG],
        "CreateKeyPair" | "ImportKeyPair" | "DescribeKeyPairs" => nimbus_api::resource_params![KEYPAIR],
        "DeleteKeyPairs" => nimbus_api::resource_params![R::json("KeyPairNames", "keypair")],
        "DescribeImages" => nimbus_api::resource_params![R::comma("ImageId", "image")],
        "DeleteImage" | "ModifyImageSharePermission" | "DescribeImageSharePermission" => {
            nimbus_api::resource_params![IMAGE]
        }
        "CreateImage" => nimbus_api::resource_params![INSTANCE],
        "RunInstances" | "CreateInstance" => {
            nimbus_api::resource_params![IMAGE, SG, R::repeat("SecurityGroupIds", "securitygroup"), KEYPAIR, ROLE]
        }
        "DescribeInstances" => nimbus_api::resource_params![INSTANCES_JSON],
        "DescribeInstanceStatus" | "StartInstances" | "StopInstances" | "DeleteInstances" => {
            nimbus_api::resource_params![INSTANCES_N]
        }
        "DescribeInstanceAttribute"
        | "StartInstance"
        | "StopInstance"
        | "RebootInstance"
        | "DeleteInstance"
        | "GetInstanceConsoleOutput"
        | "AllocatePublicIpAddress"
        | "ModifyInstanceMetadataOptions" => nimbus_api::resource_params![INSTANCE],
        "ModifyInstanceAttribute" => {
            nimbus_api::resource_params![INSTANCE, R::repeat("SecurityGroupIds", "securitygroup")]
        }
        "AttachInstanceRamRole" => nimbus_api::resource_params![INSTANCES_JSON, ROLE],
        "DetachInstanceRamRole" | "DescribeInstanceRamRole" => nimbus_api::resource_params![INSTANCES_JSON],
        _ => nimbus_api::resource_params![],
    }
}

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

    fn resource_params(&self, action: &ActionSpec) -> &'static [R] {
        resource_params(action.name)
    }

    /// ECS ids and key pair names compare exactly. A role handed to an instance is RAM's
    /// (`ram:PassRole` on `acs:ram::<account>:role/<name>`, names case-insensitive), so `ecs:*`
    /// alone cannot give an instance permissions nobody granted the caller.
    fn canonical<'a>(
        &'a self,
        ctx: &'a CallContext,
        kind: &'static str,
        raw: String,
    ) -> BoxFut<'a, Result<nimbus_api::Canonical, ApiError>> {
        let arn = match kind {
            "role" => format!("acs:ram::{}:role/{}", ctx.caller.account_id, raw.to_ascii_lowercase()),
            _ => ctx.arn("ecs", &format!("{kind}/{raw}")),
        };
        Box::pin(async move { Ok(nimbus_api::Canonical::new(raw, arn)) })
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
                "DescribeImages"
                | "DeleteImage"
                | "ModifyImageSharePermission"
                | "DescribeImageSharePermission"
                | "CreateImage" => {
                    ctx.require_region(params)?;
                    match action.name {
                        "CreateImage" => image::create(ctx, params).await,
                        "DescribeImages" => image::describe(ctx, params).await,
                        "DeleteImage" => image::delete(ctx, params).await,
                        "ModifyImageSharePermission" => image::modify_share(ctx, params).await,
                        _ => image::describe_share(ctx, params).await,
                    }
                }
                "DescribeInstanceTypes" => Ok(describe_instance_types(params)),
                "RunInstances"
                | "CreateInstance"
                | "DescribeInstances"
                | "DescribeInstanceStatus"
                | "StartInstances"
                | "StopInstances"
                | "DeleteInstances" => {
                    ctx.require_region(params)?;
                    match action.name {
                        "RunInstances" => instance::run(self, ctx, params, true).await,
                        "CreateInstance" => instance::run(self, ctx, params, false).await,
                        "DescribeInstances" => instance::describe(ctx, params).await,
                        "DescribeInstanceStatus" => instance::status(ctx, params).await,
                        "StartInstances" => instance::batch(ctx, params, "start").await,
                        "StopInstances" => instance::batch(ctx, params, "stop").await,
                        _ => instance::delete_many(ctx, params).await,
                    }
                }
                "DescribeInstanceAttribute" => instance::attribute(ctx, params).await,
                "StartInstance" => instance::start(ctx, params).await,
                "StopInstance" => instance::stop(ctx, params).await,
                "RebootInstance" => instance::reboot(ctx, params).await,
                "DeleteInstance" => instance::delete(ctx, params).await,
                "ModifyInstanceAttribute" => instance::modify(ctx, params).await,
                "GetInstanceConsoleOutput" => instance::console(self, ctx, params).await,
                "AllocatePublicIpAddress" => instance::allocate_public_ip(ctx, params).await,
                "AttachInstanceRamRole" => crate::ram_role::attach(ctx, params).await,
                "DetachInstanceRamRole" => crate::ram_role::detach(ctx, params).await,
                "DescribeInstanceRamRole" => crate::ram_role::describe(ctx, params).await,
                "ModifyInstanceMetadataOptions" => instance::modify_metadata_options(ctx, params).await,
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

/// `DescribeInstanceTypes`: the catalog in [`crate::model::INSTANCE_TYPES`].
fn describe_instance_types(p: &Params) -> Value {
    let wanted = p.list("InstanceTypes");
    let types: Vec<Value> = INSTANCE_TYPES
        .iter()
        .filter(|t| wanted.is_empty() || wanted.contains(&t.0))
        .filter(|t| p.get("InstanceTypeFamily").filter(|f| !f.is_empty()).is_none_or(|f| t.1 == f))
        .map(|t| {
            json!({"InstanceTypeId": t.0, "InstanceTypeFamily": t.1, "CpuCoreCount": t.2, "MemorySize": t.3,
                        "GPUAmount": 0, "GPUSpec": "", "EniQuantity": 1, "LocalStorageCategory": ""})
        })
        .collect();
    json!({"InstanceTypes": {"InstanceType": types}, "NextToken": ""})
}
