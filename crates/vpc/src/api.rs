//! VPC action handlers (2016-04-28). Handlers record the desired state and queue a reconcile
//! job; the job worker makes the host match (see `reconcile`).

use crate::cidr;
use crate::{VPC, VSWITCH, reconcile_later};
use nimbus_api::{ActionSpec, ApiError, BoxFut, CallContext, Canonical, Params, ResourceParam, Resolved, Service};
use nimbus_core::clock::{iso8601, now_millis};
use nimbus_core::ids;
use nimbus_store::{Resource, StoreError};
use serde_json::{Value, json};

pub struct Vpc;

const ACTIONS: &[ActionSpec] = nimbus_api::actions!["vpc:";
    "CreateVpc" => Write, "DescribeVpcs" => Read, "ModifyVpcAttribute" => Write, "DeleteVpc" => Write,
    "CreateVSwitch" => Write, "DescribeVSwitches" => Read, "ModifyVSwitchAttribute" => Write, "DeleteVSwitch" => Write,
    "AllocateEipAddress" => Write, "DescribeEipAddresses" => Read, "ReleaseEipAddress" => Write,
    "AssociateEipAddress" => Write, "UnassociateEipAddress" => Write,
    "DescribeRouteTables" => Read, "DescribeRouteTableList" => Read, "DescribeRouteEntryList" => Read,
    "CreateRouteEntry" => Write, "DeleteRouteEntry" => Write,
];

/// Per account (Alibaba's default quotas).
const MAX_VPCS: usize = 10;
const MAX_VSWITCHES_PER_VPC: usize = 150;

impl Service for Vpc {
    fn product(&self) -> &'static str {
        "Vpc"
    }
    fn code(&self) -> &'static str {
        "vpc"
    }
    fn version(&self) -> &'static str {
        "2016-04-28"
    }
    fn actions(&self) -> &'static [ActionSpec] {
        ACTIONS
    }

    /// Every VPC action names its resources with the same parameters.
    fn resource_params(&self, _action: &ActionSpec) -> &'static [ResourceParam] {
        const PARAMS: &[ResourceParam] = &[
            ResourceParam::comma("VpcId", "vpc"),
            ResourceParam::one("VSwitchId", "vswitch"),
            ResourceParam::one("AllocationId", "eip"),
            ResourceParam::one("RouteTableId", "routetable"),
            ResourceParam::one("InstanceId", "instance"),
            ResourceParam::one("NextHopId", "instance"),
        ];
        PARAMS
    }

    /// VPC ids compare exactly; an instance (an EIP's target, a route's next hop) is ECS's.
    fn canonical<'a>(
        &'a self,
        ctx: &'a CallContext,
        kind: &'static str,
        raw: String,
    ) -> BoxFut<'a, Result<Canonical, ApiError>> {
        let arn = match kind {
            "instance" => ctx.arn("ecs", &format!("instance/{raw}")),
            _ => ctx.arn("vpc", &format!("{kind}/{raw}")),
        };
        Box::pin(async move { Ok(Canonical::new(raw, arn)) })
    }

    fn resolve<'a>(
        &'a self,
        ctx: &'a CallContext,
        action: &'a ActionSpec,
        p: &'a Params,
    ) -> BoxFut<'a, Result<Resolved, ApiError>> {
        Box::pin(async move {
            let mut r = nimbus_api::resolve::resolve_declared(self, ctx, action, p).await?;
            // Creating a VPC is authorized on `vpc/*`, as Alibaba documents it.
            if action.name == "CreateVpc" && r.checks[0].resources == [self.account_arn(ctx)] {
                r.checks[0].resources = vec![ctx.arn("vpc", "vpc/*")];
            }
            Ok(r)
        })
    }

    fn handle<'a>(
        &'a self,
        ctx: &'a CallContext,
        action: &'a ActionSpec,
        p: &'a Params,
    ) -> BoxFut<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            ctx.require_region(p)?;
            match action.name {
                "CreateVpc" => create_vpc(ctx, p).await,
                "DescribeVpcs" => describe_vpcs(ctx, p).await,
                "ModifyVpcAttribute" => modify(ctx, p, VPC, "VpcId", "VpcName").await,
                "DeleteVpc" => delete_vpc(ctx, p).await,
                "CreateVSwitch" => create_vswitch(ctx, p).await,
                "DescribeVSwitches" => describe_vswitches(ctx, p).await,
                "ModifyVSwitchAttribute" => modify(ctx, p, VSWITCH, "VSwitchId", "VSwitchName").await,
                "DeleteVSwitch" => delete_vswitch(ctx, p).await,
                "AllocateEipAddress" => crate::eip::allocate(ctx, p).await,
                "DescribeEipAddresses" => crate::eip::describe(ctx, p).await,
                "ReleaseEipAddress" => crate::eip::release(ctx, p).await,
                "AssociateEipAddress" => crate::eip::associate(ctx, p).await,
                "UnassociateEipAddress" => crate::eip::unassociate(ctx, p).await,
                "DescribeRouteTables" => crate::route::describe(ctx, p).await,
                "DescribeRouteTableList" => crate::route::list(ctx, p).await,
                "DescribeRouteEntryList" => crate::route::entry_list(ctx, p).await,
                "CreateRouteEntry" => crate::route::create_entry(ctx, p).await,
                "DeleteRouteEntry" => crate::route::delete_entry(ctx, p).await,
                other => Err(ApiError::new(404, "InvalidAction.NotFound", format!("VPC has no action {other}."))),
            }
        })
    }
}

fn not_found(kind: &str, id: &str) -> ApiError {
    match kind {
        VPC => ApiError::new(404, "InvalidVpcId.NotFound", format!("Specified VPC {id:?} does not exist.")),
        _ => ApiError::new(404, "InvalidVSwitchId.NotFound", format!("Specified vSwitch {id:?} does not exist.")),
    }
}

/// The caller's resource of `kind` named `id`; another account's is indistinguishable from none.
async fn load(ctx: &CallContext, kind: &str, id: &str) -> Result<Resource, ApiError> {
    match ctx.store.get_resource(&ctx.caller.account_id, id).await {
        Ok(r) if r.kind == kind => Ok(r),
        Ok(_) | Err(StoreError::NotFound) => Err(not_found(kind, id)),
        Err(e) => Err(e.into()),
    }
}

async fn all(ctx: &CallContext, kind: &str) -> Result<Vec<Resource>, ApiError> {
    Ok(ctx.store.all_resources(&ctx.caller.account_id, kind).await?)
}

fn name_param(p: &Params, param: &str) -> Result<String, ApiError> {
    let name = p.get(param).unwrap_or_default();
    let ok = name.is_empty()
        || (name.chars().count() <= 128 && !name.starts_with("http://") && !name.starts_with("https://"));
    if !ok {
        return Err(ApiError::invalid(param, "at most 128 characters, not starting with http:// or https://"));
    }
    Ok(name.to_string())
}

fn description(p: &Params) -> Result<String, ApiError> {
    let d = p.get("Description").unwrap_or_default();
    if d.chars().count() > 256 || d.starts_with("http://") || d.starts_with("https://") {
        return Err(ApiError::invalid("Description", "at most 256 characters, not starting with http:// or https://"));
    }
    Ok(d.to_string())
}

fn paging(p: &Params) -> Result<(usize, usize), ApiError> {
    Ok((p.int("PageNumber", 1, 1_000_000)?.unwrap_or(1) as usize, p.int("PageSize", 1, 50)?.unwrap_or(10) as usize))
}

fn status_of(r: &Resource) -> &str {
    r.status.get("Status").and_then(Value::as_str).unwrap_or("Pending")
}

async fn create_vpc(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let block = cidr::vpc_block(p.get("CidrBlock").filter(|c| !c.is_empty()).unwrap_or("172.16.0.0/12"))?;
    let name = name_param(p, "VpcName")?;
    let description = description(p)?;
    if all(ctx, VPC).await?.len() >= MAX_VPCS {
        return Err(ApiError::new(400, "QuotaExceeded.Vpc", format!("An account may have at most {MAX_VPCS} VPCs.")));
    }
    let id = ids::resource_id("vpc-");
    let spec = json!({
        "VpcName": name, "Description": description, "CidrBlock": block.to_string(),
        "VRouterId": ids::resource_id("vrt-"), "RouteTableId": ids::resource_id("vtb-"),
        "CreationTime": iso8601(now_millis()),
    });
    let mut r = Resource::new(&id, &ctx.caller.account_id, VPC, &ctx.region.id, spec.clone());
    r.status = json!({"Status": "Pending"});
    ctx.store.create_resource(&r).await?;
    reconcile_later(ctx, &id).await?;
    Ok(
        json!({"VpcId": id, "VRouterId": spec["VRouterId"], "RouteTableId": spec["RouteTableId"], "ResourceGroupId": ""}),
    )
}

fn vpc_json(ctx: &CallContext, r: &Resource, vswitches: &[&Resource]) -> Value {
    json!({
        "VpcId": r.id, "VpcName": r.spec["VpcName"], "Description": r.spec["Description"],
        "CidrBlock": r.spec["CidrBlock"], "Status": status_of(r), "IsDefault": false, "RegionId": ctx.region.id,
        "VRouterId": r.spec["VRouterId"], "CreationTime": r.spec["CreationTime"], "OwnerId": r.account_id,
        "VSwitchIds": {"VSwitchId": vswitches.iter().map(|v| v.id.clone()).collect::<Vec<_>>()},
        "RouterTableIds": {"RouterTableIds": [r.spec["RouteTableId"]]},
        "NatGatewayIds": {"NatGatewayIds": []}, "SecondaryCidrBlocks": {"SecondaryCidrBlock": []},
        "UserCidrs": {"UserCidr": []}, "ResourceGroupId": "", "Tags": {"Tag": []},
    })
}

async fn describe_vpcs(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let (page, size) = paging(p)?;
    let ids: Option<Vec<&str>> =
        p.get("VpcId").filter(|v| !v.is_empty()).map(|v| v.split(',').map(str::trim).collect());
    let name = p.get("VpcName").filter(|v| !v.is_empty());
    let vswitches = all(ctx, VSWITCH).await?;
    let vpcs: Vec<Resource> = all(ctx, VPC)
        .await?
        .into_iter()
        .filter(|r| ids.as_ref().is_none_or(|ids| ids.contains(&r.id.as_str())))
        .filter(|r| name.is_none_or(|n| r.spec["VpcName"] == n))
        .collect();
    let shown: Vec<Value> = vpcs
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|r| {
            let mine: Vec<&Resource> = vswitches.iter().filter(|v| v.spec["VpcId"] == r.id.as_str()).collect();
            vpc_json(ctx, r, &mine)
        })
        .collect();
    Ok(json!({"Vpcs": {"Vpc": shown}, "TotalCount": vpcs.len(), "PageNumber": page, "PageSize": size}))
}

async fn modify(
    ctx: &CallContext,
    p: &Params,
    kind: &str,
    id_param: &str,
    name_field: &str,
) -> Result<Value, ApiError> {
    let id = p.require(id_param)?;
    let name = p.get(name_field).map(|_| name_param(p, name_field)).transpose()?;
    let desc = p.get("Description").map(|_| description(p)).transpose()?;
    if kind == VPC && p.get("CidrBlock").is_some_and(|c| !c.is_empty()) {
        return Err(ApiError::new(
            400,
            "OperationUnsupported.CidrBlock",
            "Changing a VPC's CidrBlock is not supported yet.",
        ));
    }
    for _ in 0..5 {
        let mut r = load(ctx, kind, id).await?;
        if let Some(n) = &name {
            r.spec[name_field] = json!(n);
        }
        if let Some(d) = &desc {
            r.spec["Description"] = json!(d);
        }
        match ctx.store.update_resource(&r).await {
            Ok(_) => return Ok(json!({})),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(409, "OperationConflict", "The resource is being changed by another request; retry."))
}

async fn delete_vpc(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let id = p.require("VpcId")?;
    if all(ctx, VSWITCH).await?.iter().any(|v| v.spec["VpcId"] == id) {
        return Err(ApiError::new(
            400,
            "DependencyViolation.VSwitch",
            "The VPC still has vSwitches; delete them first.",
        ));
    }
    if all(ctx, "ecs.securitygroup").await?.iter().any(|g| g.spec["VpcId"] == id) {
        return Err(ApiError::new(
            400,
            "DependencyViolation.SecurityGroup",
            "The VPC still has security groups; delete them first.",
        ));
    }
    delete_current(ctx, VPC, id).await?;
    reconcile_later(ctx, id).await?;
    Ok(json!({}))
}

/// Deletes a resource at whatever version it has now: the reconciler may have just marked it
/// Available, which is no reason to fail the user's delete.
async fn delete_current(ctx: &CallContext, kind: &str, id: &str) -> Result<Resource, ApiError> {
    for _ in 0..5 {
        let r = load(ctx, kind, id).await?;
        match ctx.store.delete_resource(&ctx.caller.account_id, id, r.version).await {
            Ok(()) => return Ok(r),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(409, "OperationConflict", "The resource is being changed by another request; retry."))
}

async fn create_vswitch(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let vpc_id = p.require("VpcId")?;
    let zone = p.require("ZoneId")?;
    if ctx.region.zone(zone).is_none() {
        return Err(ApiError::new(
            400,
            "InvalidZoneId.NotFound",
            format!("Specified zone {zone:?} does not exist in this region."),
        ));
    }
    let vpc = load(ctx, VPC, vpc_id).await?;
    let vpc_block = cidr::vpc_block(vpc.spec["CidrBlock"].as_str().unwrap_or_default())?;
    let block = cidr::vswitch_block(p.require("CidrBlock")?, vpc_block)?;
    let name = name_param(p, "VSwitchName")?;
    let description = description(p)?;
    let siblings: Vec<Resource> = all(ctx, VSWITCH).await?.into_iter().filter(|v| v.spec["VpcId"] == vpc_id).collect();
    if siblings.len() >= MAX_VSWITCHES_PER_VPC {
        return Err(ApiError::new(
            400,
            "QuotaExceeded.VSwitch",
            format!("A VPC may have at most {MAX_VSWITCHES_PER_VPC} vSwitches."),
        ));
    }
    if let Some(other) = siblings
        .iter()
        .find(|v| v.spec["CidrBlock"].as_str().and_then(|c| c.parse().ok()).is_some_and(|c| cidr::overlaps(c, block)))
    {
        return Err(ApiError::new(
            400,
            "InvalidCidrBlock.Overlapped",
            format!(
                "Specified CidrBlock {block} overlaps vSwitch {} ({}).",
                other.id,
                other.spec["CidrBlock"].as_str().unwrap_or_default()
            ),
        ));
    }
    let id = ids::resource_id("vsw-");
    let spec = json!({
        "VpcId": vpc_id, "ZoneId": zone, "CidrBlock": block.to_string(), "VSwitchName": name,
        "Description": description, "CreationTime": iso8601(now_millis()),
    });
    let mut r = Resource::new(&id, &ctx.caller.account_id, VSWITCH, &ctx.region.id, spec);
    r.status = json!({"Status": "Pending"});
    ctx.store.create_resource(&r).await?;
    reconcile_later(ctx, vpc_id).await?;
    Ok(json!({"VSwitchId": id}))
}

async fn describe_vswitches(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let (page, size) = paging(p)?;
    let f = |n: &str| p.get(n).filter(|v| !v.is_empty());
    let (vpc, vsw, zone) = (f("VpcId"), f("VSwitchId"), f("ZoneId"));
    let list: Vec<Resource> = all(ctx, VSWITCH)
        .await?
        .into_iter()
        .filter(|r| vpc.is_none_or(|v| r.spec["VpcId"] == v))
        .filter(|r| vsw.is_none_or(|v| v.split(',').any(|id| id.trim() == r.id)))
        .filter(|r| zone.is_none_or(|z| r.spec["ZoneId"] == z))
        .collect();
    let shown: Vec<Value> = list
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|r| {
            let free = r.spec["CidrBlock"].as_str().and_then(|c| c.parse().ok()).map(cidr::usable_addresses).unwrap_or(0);
            json!({
                "VSwitchId": r.id, "VSwitchName": r.spec["VSwitchName"], "VpcId": r.spec["VpcId"],
                "ZoneId": r.spec["ZoneId"], "CidrBlock": r.spec["CidrBlock"], "Status": status_of(r),
                "AvailableIpAddressCount": free, "IsDefault": false, "Description": r.spec["Description"],
                "CreationTime": r.spec["CreationTime"], "NetworkAclId": "", "OwnerId": r.account_id,
                "RouteTable": {"RouteTableId": "", "RouteTableType": "System"}, "ResourceGroupId": "", "Tags": {"Tag": []},
            })
        })
        .collect();
    Ok(json!({"VSwitches": {"VSwitch": shown}, "TotalCount": list.len(), "PageNumber": page, "PageSize": size}))
}

async fn delete_vswitch(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let id = p.require("VSwitchId")?;
    let r = delete_current(ctx, VSWITCH, id).await?;
    reconcile_later(ctx, r.spec["VpcId"].as_str().unwrap_or_default()).await?;
    Ok(json!({}))
}
