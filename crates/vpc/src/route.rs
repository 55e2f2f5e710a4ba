//! Route tables: each VPC has one system route table whose entries are its vSwitches' blocks
//! (next hop: local, delivered by the VPC's router namespace). Custom entries need a next hop
//! such as an instance, which ECS does not run yet; creating one answers that honestly.

use crate::{VPC, VSWITCH};
use nimbus_api::{ApiError, CallContext, Params};
use nimbus_store::Resource;
use serde_json::{Value, json};

async fn vpcs_and_vswitches(ctx: &CallContext) -> Result<(Vec<Resource>, Vec<Resource>), ApiError> {
    let vpcs = ctx.store.all_resources(&ctx.caller.account_id, VPC).await?;
    let vsw = ctx.store.all_resources(&ctx.caller.account_id, VSWITCH).await?;
    Ok((vpcs, vsw))
}

fn entries(table: &str, vpc: &Resource, vswitches: &[Resource], nested: bool) -> Vec<Value> {
    vswitches
        .iter()
        .filter(|s| s.spec["VpcId"] == vpc.id.as_str())
        .map(|s| {
            let cidr = s.spec["CidrBlock"].clone();
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

fn table_of(vpc: &Resource) -> String {
    vpc.spec["RouteTableId"].as_str().unwrap_or_default().to_string()
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
                   "RouterId": v.spec["VRouterId"], "RouterType": "VRouter", "Status": "Available",
                   "CreationTime": v.spec["CreationTime"], "AssociateType": "VSwitch", "Description": "",
                   "VSwitchIds": {"VSwitchId": vsw.iter().filter(|s| s.spec["VpcId"] == v.id.as_str()).map(|s| s.id.clone()).collect::<Vec<_>>()},
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
        .filter(|v| f("VRouterId").is_none_or(|id| v.spec["VRouterId"] == id))
        .filter(|v| f("RouteTableId").is_none_or(|id| table_of(v) == id))
        .map(|v| {
            json!({"RouteTableId": table_of(v), "RouteTableType": "System", "VRouterId": v.spec["VRouterId"],
                   "CreationTime": v.spec["CreationTime"], "ResourceGroupId": "",
                   "RouteEntrys": {"RouteEntry": entries(&table_of(v), v, &vsw, true)}})
        })
        .collect();
    let shown: Vec<Value> = tables.iter().skip((page - 1) * size).take(size).cloned().collect();
    Ok(json!({"RouteTables": {"RouteTable": shown}, "TotalCount": tables.len(), "PageNumber": page, "PageSize": size}))
}

async fn table(ctx: &CallContext, id: &str) -> Result<(Resource, Vec<Resource>), ApiError> {
    let (vpcs, vsw) = vpcs_and_vswitches(ctx).await?;
    let vpc = vpcs.into_iter().find(|v| table_of(v) == id).ok_or_else(|| {
        ApiError::new(404, "InvalidRouteTableId.NotFound", format!("Specified route table {id:?} does not exist."))
    })?;
    Ok((vpc, vsw))
}

/// `DescribeRouteEntryList`.
pub async fn entry_list(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let id = p.require("RouteTableId")?;
    let (vpc, vsw) = table(ctx, id).await?;
    let mut list = entries(id, &vpc, &vsw, false);
    if let Some(d) = p.get("DestinationCidrBlock").filter(|v| !v.is_empty()) {
        list.retain(|e| e["DestinationCidrBlock"] == d);
    }
    Ok(json!({"RouteEntrys": {"RouteEntry": list}, "NextToken": ""}))
}

/// `CreateRouteEntry`: validated; needs a next hop that exists.
pub async fn create_entry(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let id = p.require("RouteTableId")?;
    table(ctx, id).await?;
    let dest = p.require("DestinationCidrBlock")?;
    if dest.parse::<ipnet::Ipv4Net>().is_err() {
        return Err(ApiError::new(
            400,
            "InvalidDestinationCidrBlock.Malformed",
            format!("{dest:?} is not an IPv4 CIDR block."),
        ));
    }
    let hop_type = p.get("NextHopType").filter(|v| !v.is_empty()).unwrap_or("Instance");
    let hop = p.get("NextHopId").filter(|v| !v.is_empty()).ok_or_else(|| ApiError::missing("NextHopId"))?;
    match hop_type {
        // Instances are the next ECS step; none exists yet, so no route can point at one.
        "Instance" => {
            Err(ApiError::new(404, "InvalidInstanceId.NotFound", format!("Specified instance {hop:?} does not exist.")))
        }
        other => Err(ApiError::new(
            400,
            "OperationUnsupported.NextHopType",
            format!("Next hop type {other} is not offered in this region; use Instance."),
        )),
    }
}

/// `DeleteRouteEntry`: system entries cannot be deleted; there are no custom ones yet.
pub async fn delete_entry(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    if let Some(id) = p.get("RouteTableId").filter(|v| !v.is_empty()) {
        table(ctx, id).await?;
    }
    Err(ApiError::new(404, "InvalidRouteEntry.NotFound", "The specified custom route entry does not exist."))
}
