//! Route tables: each VPC has one system route table whose entries are its vSwitches' blocks
//! (next hop: local, delivered by the VPC's router namespace), plus custom entries whose next hop
//! is an instance (kept in the VPC's `spec.CustomRoutes`; the data plane installs them in the
//! VPC namespace as `ip route … via <instance address> proto 250`).

use crate::model::{CustomRoute, VSwitchKind, VSwitchRecord, VpcKind, VpcRecord};
use nimbus_api::{ApiError, CallContext, Params};
use serde_json::{Value, json};

async fn vpcs_and_vswitches(ctx: &CallContext) -> Result<(Vec<VpcRecord>, Vec<VSwitchRecord>), ApiError> {
    let vpcs = ctx.store.repo::<VpcKind>().all(&ctx.caller.account_id).await?;
    let vsw = ctx.store.repo::<VSwitchKind>().all(&ctx.caller.account_id).await?;
    Ok((vpcs, vsw))
}

/// The system entries: one per vSwitch of `vpc` (whose block is `dest`, if given).
fn entries(table: &str, vpc: &VpcRecord, vswitches: &[VSwitchRecord], nested: bool, dest: Option<&str>) -> Vec<Value> {
    vswitches
        .iter()
        .filter(|s| s.spec.vpc_id == vpc.id && dest.is_none_or(|d| s.spec.cidr_block == d))
        .map(|s| {
            let cidr = &s.spec.cidr_block;
            if nested {
                json!({"RouteTableId": table, "DestinationCidrBlock": cidr, "Type": "System", "Status": "Available",
                       "InstanceId": "", "NextHopType": "local", "NextHops": {"NextHop": []}, "RouteEntryName": ""})
            } else {
                json!({"RouteEntryId": format!("rte-{}", &s.id[s.id.len().saturating_sub(12)..]), "RouteEntryName": "",
                       "RouteTableId": table, "DestinationCidrBlock": cidr, "Type": "System", "Status": "Available",
                       "IpVersion": "ipv4", "Description": "",
                       "NextHops": {"NextHop": [{"NextHopType": "local", "NextHopId": "", "Enabled": 1, "Weight": 0}]}})
            }
        })
        .collect()
}

fn table_of(vpc: &VpcRecord) -> &str {
    &vpc.spec.route_table_id
}

/// `DescribeRouteTableList`.
pub async fn list(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let (page, size) =
        (p.int("PageNumber", 1, 1_000_000)?.unwrap_or(1) as usize, p.int("PageSize", 1, 50)?.unwrap_or(10) as usize);
    let f = |n: &str| p.get(n).filter(|v| !v.is_empty());
    if f("RouteTableType").is_some_and(|t| t != "System") {
        return Ok(
            json!({"RouterTableList": {"RouterTableListType": []}, "TotalCount": 0, "PageNumber": page, "PageSize": size,
                         "Success": true, "Code": "200", "Message": "successful"}),
        );
    }
    let (vpcs, vsw) = vpcs_and_vswitches(ctx).await?;
    let tables: Vec<Value> = vpcs
        .iter()
        .filter(|v| f("VpcId").is_none_or(|id| v.id == id))
        .filter(|v| f("RouteTableId").is_none_or(|id| table_of(v) == id))
        .map(|v| {
            json!({"RouteTableId": table_of(v), "RouteTableName": "", "RouteTableType": "System", "VpcId": v.id,
                   "RouterId": v.spec.v_router_id, "RouterType": "VRouter", "Status": "Available",
                   "CreationTime": v.spec.creation_time, "AssociateType": "VSwitch", "Description": "",
                   "VSwitchIds": {"VSwitchId": vsw.iter().filter(|s| s.spec.vpc_id == v.id).map(|s| s.id.clone()).collect::<Vec<_>>()},
                   "ResourceGroupId": "", "OwnerId": v.account_id, "Tags": {"Tag": []}})
        })
        .collect();
    let shown: Vec<Value> = tables.iter().skip((page - 1) * size).take(size).cloned().collect();
    Ok(json!({"RouterTableList": {"RouterTableListType": shown}, "TotalCount": tables.len(), "PageNumber": page,
              "PageSize": size, "Success": true, "Code": "200", "Message": "successful"}))
}

/// `DescribeRouteTables` (the older form, entries nested).
pub async fn describe(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let (page, size) =
        (p.int("PageNumber", 1, 1_000_000)?.unwrap_or(1) as usize, p.int("PageSize", 1, 50)?.unwrap_or(10) as usize);
    let f = |n: &str| p.get(n).filter(|v| !v.is_empty());
    let (vpcs, vsw) = vpcs_and_vswitches(ctx).await?;
    let tables: Vec<Value> = vpcs
        .iter()
        .filter(|v| f("VRouterId").is_none_or(|id| v.spec.v_router_id == id))
        .filter(|v| f("RouteTableId").is_none_or(|id| table_of(v) == id))
        .map(|v| {
            json!({"RouteTableId": table_of(v), "RouteTableType": "System", "VRouterId": v.spec.v_router_id,
                   "CreationTime": v.spec.creation_time, "ResourceGroupId": "",
                   "RouteEntrys": {"RouteEntry": entries(table_of(v), v, &vsw, true, None)}})
        })
        .collect();
    let shown: Vec<Value> = tables.iter().skip((page - 1) * size).take(size).cloned().collect();
    Ok(json!({"RouteTables": {"RouteTable": shown}, "TotalCount": tables.len(), "PageNumber": page, "PageSize": size}))
}

fn no_table(id: &str) -> ApiError {
    ApiError::new(404, "InvalidRouteTableId.NotFound", format!("Specified route table {id:?} does not exist."))
}

async fn table(ctx: &CallContext, id: &str) -> Result<(VpcRecord, Vec<VSwitchRecord>), ApiError> {
    let (vpcs, vsw) = vpcs_and_vswitches(ctx).await?;
    let vpc = vpcs.into_iter().find(|v| table_of(v) == id).ok_or_else(|| no_table(id))?;
    Ok((vpc, vsw))
}

/// `DescribeRouteEntryList`.
pub async fn entry_list(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let id = p.require("RouteTableId")?;
    let (vpc, vsw) = table(ctx, id).await?;
    let dest = p.get("DestinationCidrBlock").filter(|v| !v.is_empty());
    let mut list = entries(id, &vpc, &vsw, false, dest);
    list.extend(custom_entries(id, &vpc, dest));
    Ok(json!({"RouteEntrys": {"RouteEntry": list}, "NextToken": ""}))
}

fn route_conflict(e: ApiError) -> ApiError {
    if e.code == "OperationConflict" {
        ApiError::new(409, "OperationConflict", "The route table is being changed; retry.")
    } else {
        e
    }
}

/// `CreateRouteEntry`: validated; needs a next hop that exists.
pub async fn create_entry(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let id = p.require("RouteTableId")?;
    table(ctx, id).await?;
    let dest = p.require("DestinationCidrBlock")?;
    let Ok(net) = dest.parse::<ipnet::Ipv4Net>() else {
        return Err(ApiError::new(
            400,
            "InvalidDestinationCidrBlock.Malformed",
            format!("{dest:?} is not an IPv4 CIDR block."),
        ));
    };
    let hop_type = p.get("NextHopType").filter(|v| !v.is_empty()).unwrap_or("Instance");
    let hop = p.get("NextHopId").filter(|v| !v.is_empty()).ok_or_else(|| ApiError::missing("NextHopId"))?;
    if hop_type != "Instance" {
        return Err(ApiError::new(
            400,
            "OperationUnsupported.NextHopType",
            format!("Next hop type {hop_type} is not offered in this region; use Instance."),
        ));
    }
    let inst = crate::eip::instance(ctx, hop).await?;
    let dest = net.trunc().to_string();
    let entry = nimbus_core::ids::resource_id("rte-");
    let name = p.get("RouteEntryName").unwrap_or_default();
    let (vpc, vsw) = table(ctx, id).await?;
    if inst.vpc_id != vpc.id {
        return Err(ApiError::new(
            400,
            "InvalidInstanceId.NotInVpc",
            format!("Instance {hop} is not in this route table's VPC."),
        ));
    }
    let system_taken = vsw.iter().any(|s| s.spec.vpc_id == vpc.id && s.spec.cidr_block == dest);
    ctx.store
        .repo::<VpcKind>()
        .update_with(&ctx.caller.account_id, &vpc.id, |v| {
            if v.spec.route_table_id != id {
                return Err(no_table(id));
            }
            let routes = v.spec.custom_routes.get_or_insert_default();
            if system_taken || routes.iter().any(|r| r.destination_cidr_block == dest) {
                return Err(ApiError::new(
                    400,
                    "InvalidCIDRBlock.Duplicate",
                    format!("A route to {dest} already exists in {id}."),
                ));
            }
            if routes.len() >= 48 {
                return Err(ApiError::new(
                    400,
                    "QuotaExceeded.RouteEntryNum",
                    "A route table holds at most 48 custom entries.",
                ));
            }
            routes.push(CustomRoute {
                route_entry_id: entry.clone(),
                destination_cidr_block: dest.clone(),
                next_hop_id: hop.into(),
                route_entry_name: name.into(),
            });
            Ok(())
        })
        .await
        .map_err(route_conflict)?;
    crate::reconcile_later(ctx, &vpc.id).await?;
    Ok(json!({"RouteEntryId": entry}))
}

/// The custom entries of `vpc` (to `dest`, if given).
fn custom_entries(table: &str, vpc: &VpcRecord, dest: Option<&str>) -> Vec<Value> {
    vpc.spec
        .routes()
        .iter()
        .filter(|r| dest.is_none_or(|d| r.destination_cidr_block == d))
        .map(|r| {
            json!({"RouteEntryId": r.route_entry_id, "RouteEntryName": r.route_entry_name, "RouteTableId": table,
                   "DestinationCidrBlock": r.destination_cidr_block, "Type": "Custom", "Status": "Available",
                   "IpVersion": "ipv4", "Description": "",
                   "NextHops": {"NextHop": [{"NextHopType": "Instance", "NextHopId": r.next_hop_id, "Enabled": 1, "Weight": 0}]}})
        })
        .collect()
}

/// `DeleteRouteEntry`: by RouteEntryId, or RouteTableId + DestinationCidrBlock (+ NextHopId).
/// System entries cannot be deleted.
pub async fn delete_entry(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let by_id = p.get("RouteEntryId").filter(|v| !v.is_empty());
    let dest = p.get("DestinationCidrBlock").filter(|v| !v.is_empty());
    let hop = p.get("NextHopId").filter(|v| !v.is_empty());
    if by_id.is_none() && dest.is_none() {
        return Err(ApiError::missing("RouteEntryId"));
    }
    let table_id = p.get("RouteTableId").filter(|v| !v.is_empty());
    let matches = |r: &CustomRoute| {
        by_id.is_some_and(|i| r.route_entry_id == i)
            || (dest.is_some_and(|d| r.destination_cidr_block == d) && hop.is_none_or(|h| r.next_hop_id == h))
    };
    let missing =
        || ApiError::new(404, "InvalidRouteEntry.NotFound", "The specified custom route entry does not exist.");
    let (vpcs, _) = vpcs_and_vswitches(ctx).await?;
    if let Some(t) = table_id
        && !vpcs.iter().any(|v| table_of(v) == t)
    {
        return Err(no_table(t));
    }
    let Some(vpc) = vpcs
        .into_iter()
        .filter(|v| table_id.is_none_or(|t| table_of(v) == t))
        .find(|v| v.spec.routes().iter().any(matches))
    else {
        return Err(missing());
    };
    ctx.store
        .repo::<VpcKind>()
        .update_with(&ctx.caller.account_id, &vpc.id, |v| {
            let routes = v.spec.custom_routes.get_or_insert_default();
            if !routes.iter().any(matches) {
                return Err(missing());
            }
            routes.retain(|r| !matches(r));
            Ok(())
        })
        .await
        .map_err(route_conflict)?;
    crate::reconcile_later(ctx, &vpc.id).await?;
    Ok(json!({}))
}
