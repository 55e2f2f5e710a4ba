//! VPC action handlers (2016-04-28). Handlers record the desired state and queue a reconcile
//! job; the job worker makes the host match (see `reconcile`).

use crate::cidr;
use crate::model::{
    Phase, PhaseState, SecurityGroupView, VSwitchKind, VSwitchRecord, VSwitchSpec, VpcKind, VpcRecord, VpcSpec,
};
use crate::{VPC, reconcile_later};
use nimbus_api::{ActionSpec, ApiError, BoxFut, CallContext, Canonical, Params, Resolved, ResourceParam, Service};
use nimbus_core::clock::{iso8601, now_millis};
use nimbus_core::ids;
use nimbus_store::{Kind, Page, Record, StoreError};
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
                "ModifyVpcAttribute" => modify_vpc(ctx, p).await,
                "DeleteVpc" => delete_vpc(ctx, p).await,
                "CreateVSwitch" => create_vswitch(ctx, p).await,
                "DescribeVSwitches" => describe_vswitches(ctx, p).await,
                "ModifyVSwitchAttribute" => modify_vswitch(ctx, p).await,
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

/// A store answer about row `id` of kind `K`, with a missing row as `K`'s NotFound error.
fn found<K: Kind, T>(r: Result<T, StoreError>, id: &str) -> Result<T, ApiError> {
    match r {
        Err(StoreError::NotFound) => Err(not_found(K::KIND, id)),
        other => Ok(other?),
    }
}

/// The caller's resource of kind `K` named `id`; another account's is indistinguishable from none.
async fn load<K: Kind>(ctx: &CallContext, id: &str) -> Result<Record<K>, ApiError> {
    found::<K, _>(ctx.store.repo::<K>().get(&ctx.caller.account_id, id).await, id)
}

async fn all<K: Kind>(ctx: &CallContext) -> Result<Vec<Record<K>>, ApiError> {
    Ok(ctx.store.repo::<K>().all(&ctx.caller.account_id).await?)
}

/// The caller's vSwitches of one VPC.
pub(crate) async fn vswitches_of(ctx: &CallContext, vpc_id: &str) -> Result<Vec<VSwitchRecord>, ApiError> {
    Ok(all::<VSwitchKind>(ctx).await?.into_iter().filter(|v| v.spec.vpc_id == vpc_id).collect())
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

fn paging(p: &Params) -> Result<Page, ApiError> {
    Ok(Page {
        number: p.int("PageNumber", 1, 1_000_000)?.unwrap_or(1) as usize,
        size: p.int("PageSize", 1, 50)?.unwrap_or(10) as usize,
    })
}

async fn create_vpc(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let block = cidr::vpc_block(p.get("CidrBlock").filter(|c| !c.is_empty()).unwrap_or("172.16.0.0/12"))?;
    let name = name_param(p, "VpcName")?;
    let description = description(p)?;
    if all::<VpcKind>(ctx).await?.len() >= MAX_VPCS {
        return Err(ApiError::new(400, "QuotaExceeded.Vpc", format!("An account may have at most {MAX_VPCS} VPCs.")));
    }
    let id = VpcKind::new_id();
    let spec = VpcSpec {
        vpc_name: name,
        description,
        cidr_block: block.to_string(),
        v_router_id: ids::resource_id("vrt-"),
        route_table_id: ids::resource_id("vtb-"),
        creation_time: iso8601(now_millis()),
        custom_routes: None,
    };
    let r = Record::<VpcKind>::new(&id, &ctx.caller.account_id, &ctx.region.id, spec)
        .with_status(Phase::new(PhaseState::Pending));
    ctx.store.repo::<VpcKind>().create(&r).await?;
    reconcile_later(ctx, &id).await?;
    Ok(
        json!({"VpcId": id, "VRouterId": r.spec.v_router_id, "RouteTableId": r.spec.route_table_id, "ResourceGroupId": ""}),
    )
}

fn vpc_json(ctx: &CallContext, r: &VpcRecord, vswitches: &[&VSwitchRecord]) -> Value {
    let s = &r.spec;
    json!({
        "VpcId": r.id, "VpcName": s.vpc_name, "Description": s.description,
        "CidrBlock": s.cidr_block, "Status": r.status.status, "IsDefault": false, "RegionId": ctx.region.id,
        "VRouterId": s.v_router_id, "CreationTime": s.creation_time, "OwnerId": r.account_id,
        "VSwitchIds": {"VSwitchId": vswitches.iter().map(|v| v.id.clone()).collect::<Vec<_>>()},
        "RouterTableIds": {"RouterTableIds": [s.route_table_id]},
        "NatGatewayIds": {"NatGatewayIds": []}, "SecondaryCidrBlocks": {"SecondaryCidrBlock": []},
        "UserCidrs": {"UserCidr": []}, "ResourceGroupId": "", "Tags": {"Tag": []},
    })
}

async fn describe_vpcs(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let page = paging(p)?;
    let ids: Option<Vec<&str>> =
        p.get("VpcId").filter(|v| !v.is_empty()).map(|v| v.split(',').map(str::trim).collect());
    let name = p.get("VpcName").filter(|v| !v.is_empty());
    let vswitches = all::<VSwitchKind>(ctx).await?;
    let vpcs = ctx
        .store
        .repo::<VpcKind>()
        .list(
            &ctx.caller.account_id,
            |r| {
                ids.as_ref().is_none_or(|ids| ids.contains(&r.id.as_str())) && name.is_none_or(|n| r.spec.vpc_name == n)
            },
            page,
        )
        .await?;
    let shown: Vec<Value> = vpcs
        .items
        .iter()
        .map(|r| {
            let mine: Vec<&VSwitchRecord> = vswitches.iter().filter(|v| v.spec.vpc_id == r.id).collect();
            vpc_json(ctx, r, &mine)
        })
        .collect();
    Ok(json!({"Vpcs": {"Vpc": shown}, "TotalCount": vpcs.total, "PageNumber": page.number, "PageSize": page.size}))
}

/// The new name (parameter `name_param`) and description of a Modify*Attribute call, each
/// `None` when not given.
fn new_attributes(p: &Params, name_param_name: &str) -> Result<(Option<String>, Option<String>), ApiError> {
    let name = p.get(name_param_name).map(|_| name_param(p, name_param_name)).transpose()?;
    let desc = p.get("Description").map(|_| description(p)).transpose()?;
    Ok((name, desc))
}

fn conflict(e: ApiError) -> ApiError {
    if e.code == "OperationConflict" {
        ApiError::new(409, "OperationConflict", "The resource is being changed by another request; retry.")
    } else {
        e
    }
}

async fn modify_vpc(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let id = p.require("VpcId")?;
    let (name, desc) = new_attributes(p, "VpcName")?;
    if p.get("CidrBlock").is_some_and(|c| !c.is_empty()) {
        return Err(ApiError::new(
            400,
            "OperationUnsupported.CidrBlock",
            "Changing a VPC's CidrBlock is not supported yet.",
        ));
    }
    let r = ctx
        .store
        .repo::<VpcKind>()
        .update_with(&ctx.caller.account_id, id, |r| {
            if let Some(n) = &name {
                r.spec.vpc_name = n.clone();
            }
            if let Some(d) = &desc {
                r.spec.description = d.clone();
            }
            Ok(())
        })
        .await;
    found::<VpcKind, _>(r, id).map_err(conflict)?;
    Ok(json!({}))
}

async fn modify_vswitch(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let id = p.require("VSwitchId")?;
    let (name, desc) = new_attributes(p, "VSwitchName")?;
    let r = ctx
        .store
        .repo::<VSwitchKind>()
        .update_with(&ctx.caller.account_id, id, |r| {
            if let Some(n) = &name {
                r.spec.v_switch_name = n.clone();
            }
            if let Some(d) = &desc {
                r.spec.description = d.clone();
            }
            Ok(())
        })
        .await;
    found::<VSwitchKind, _>(r, id).map_err(conflict)?;
    Ok(json!({}))
}

async fn delete_vpc(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let id = p.require("VpcId")?;
    if !vswitches_of(ctx, id).await?.is_empty() {
        return Err(ApiError::new(
            400,
            "DependencyViolation.VSwitch",
            "The VPC still has vSwitches; delete them first.",
        ));
    }
    let groups = ctx.store.all_resources(&ctx.caller.account_id, "ecs.securitygroup").await?;
    for g in &groups {
        if g.spec_as::<SecurityGroupView>()?.vpc_id == id {
            return Err(ApiError::new(
                400,
                "DependencyViolation.SecurityGroup",
                "The VPC still has security groups; delete them first.",
            ));
        }
    }
    // At whatever version it has now: the reconciler may have just marked it Available, which is
    // no reason to fail the user's delete.
    found::<VpcKind, _>(ctx.store.repo::<VpcKind>().delete(&ctx.caller.account_id, id).await, id).map_err(conflict)?;
    reconcile_later(ctx, id).await?;
    Ok(json!({}))
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
    let vpc = load::<VpcKind>(ctx, vpc_id).await?;
    let vpc_block = cidr::vpc_block(&vpc.spec.cidr_block)?;
    let block = cidr::vswitch_block(p.require("CidrBlock")?, vpc_block)?;
    let name = name_param(p, "VSwitchName")?;
    let description = description(p)?;
    let siblings = vswitches_of(ctx, vpc_id).await?;
    if siblings.len() >= MAX_VSWITCHES_PER_VPC {
        return Err(ApiError::new(
            400,
            "QuotaExceeded.VSwitch",
            format!("A VPC may have at most {MAX_VSWITCHES_PER_VPC} vSwitches."),
        ));
    }
    if let Some(other) = siblings.iter().find(|v| v.spec.block().is_some_and(|c| cidr::overlaps(c, block))) {
        return Err(ApiError::new(
            400,
            "InvalidCidrBlock.Overlapped",
            format!("Specified CidrBlock {block} overlaps vSwitch {} ({}).", other.id, other.spec.cidr_block),
        ));
    }
    let id = VSwitchKind::new_id();
    let spec = VSwitchSpec {
        vpc_id: vpc_id.into(),
        zone_id: zone.into(),
        cidr_block: block.to_string(),
        v_switch_name: name,
        description,
        creation_time: iso8601(now_millis()),
    };
    let r = Record::<VSwitchKind>::new(&id, &ctx.caller.account_id, &ctx.region.id, spec)
        .with_status(Phase::new(PhaseState::Pending));
    ctx.store.repo::<VSwitchKind>().create(&r).await?;
    reconcile_later(ctx, vpc_id).await?;
    Ok(json!({"VSwitchId": id}))
}

async fn describe_vswitches(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let page = paging(p)?;
    let f = |n: &str| p.get(n).filter(|v| !v.is_empty());
    let (vpc, vsw, zone) = (f("VpcId"), f("VSwitchId"), f("ZoneId"));
    let list = ctx
        .store
        .repo::<VSwitchKind>()
        .list(
            &ctx.caller.account_id,
            |r| {
                vpc.is_none_or(|v| r.spec.vpc_id == v)
                    && vsw.is_none_or(|v| v.split(',').any(|id| id.trim() == r.id))
                    && zone.is_none_or(|z| r.spec.zone_id == z)
            },
            page,
        )
        .await?;
    let shown: Vec<Value> = list
        .items
        .iter()
        .map(|r| {
            let s = &r.spec;
            let free = s.block().map(cidr::usable_addresses).unwrap_or(0);
            json!({
                "VSwitchId": r.id, "VSwitchName": s.v_switch_name, "VpcId": s.vpc_id,
                "ZoneId": s.zone_id, "CidrBlock": s.cidr_block, "Status": r.status.status,
                "AvailableIpAddressCount": free, "IsDefault": false, "Description": s.description,
                "CreationTime": s.creation_time, "NetworkAclId": "", "OwnerId": r.account_id,
                "RouteTable": {"RouteTableId": "", "RouteTableType": "System"}, "ResourceGroupId": "", "Tags": {"Tag": []},
            })
        })
        .collect();
    Ok(
        json!({"VSwitches": {"VSwitch": shown}, "TotalCount": list.total, "PageNumber": page.number, "PageSize": page.size}),
    )
}

async fn delete_vswitch(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let id = p.require("VSwitchId")?;
    let r = found::<VSwitchKind, _>(ctx.store.repo::<VSwitchKind>().delete(&ctx.caller.account_id, id).await, id)
        .map_err(conflict)?;
    reconcile_later(ctx, &r.spec.vpc_id).await?;
    Ok(json!({}))
}
