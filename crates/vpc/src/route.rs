//! Route tables: each VPC has one system route table whose entries are its vSwitches' blocks
//! (next hop: local, delivered by the VPC's router namespace), plus custom entries whose next hop
//! is an instance (kept in the VPC's `spec.CustomRoutes`; the data plane installs them in the
//! VPC namespace as `ip route … via <instance address> proto 250`).

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
    list.extend(custom_entries(id, &vpc));
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
    if hop_type != "Instance" {
        return Err(ApiError::new(
            400,
            "OperationUnsupported.NextHopType",
            format!("Next hop type {hop_type} is not offered in this region; use Instance."),
        ));
    }
    let inst = match ctx.store.get_resource(&ctx.caller.account_id, hop).await {
        Ok(i) if i.kind == "ecs.instance" => i,
        Ok(_) | Err(nimbus_store::StoreError::NotFound) => {
            return Err(ApiError::new(
                404,
                "InvalidInstanceId.NotFound",
                format!("Specified instance {hop:?} does not exist."),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    for _ in 0..5 {
        let (mut vpc, vsw) = table(ctx, id).await?;
        if inst.spec["VpcId"] != vpc.id.as_str() {
            return Err(ApiError::new(
                400,
                "InvalidInstanceId.NotInVpc",
                format!("Instance {hop} is not in this route table's VPC."),
            ));
        }
        let net: ipnet::Ipv4Net = dest.parse().map_err(|_| ApiError::internal())?;
        let dest = net.trunc().to_string();
        let mut routes = vpc.spec["CustomRoutes"].as_array().cloned().unwrap_or_default();
        let taken = routes.iter().any(|r| r["DestinationCidrBlock"] == dest.as_str())
            || vsw.iter().any(|s| s.spec["VpcId"] == vpc.id.as_str() && s.spec["CidrBlock"] == dest.as_str());
        if taken {
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
        let entry = nimbus_core::ids::resource_id("rte-");
        routes.push(json!({"RouteEntryId": entry, "DestinationCidrBlock": dest, "NextHopId": hop,
                           "RouteEntryName": p.get("RouteEntryName").unwrap_or_default()}));
        vpc.spec["CustomRoutes"] = Value::Array(routes);
        match ctx.store.update_resource(&vpc).await {
            Ok(_) => {
                crate::reconcile_later(ctx, &vpc.id).await?;
                return Ok(json!({"RouteEntryId": entry}));
            }
            Err(nimbus_store::StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(409, "OperationConflict", "The route table is being changed; retry."))
}

fn custom_entries(table: &str, vpc: &Resource) -> Vec<Value> {
    vpc.spec["CustomRoutes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            json!({"RouteEntryId": r["RouteEntryId"], "RouteEntryName": r["RouteEntryName"], "RouteTableId": table,
                   "DestinationCidrBlock": r["DestinationCidrBlock"], "Type": "Custom", "Status": "Available",
                   "IpVersion": "ipv4", "Description": "",
                   "NextHops": {"NextHop": [{"NextHopType": "Instance", "NextHopId": r["NextHopId"], "Enabled": 1, "Weight": 0}]}})
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
    for _ in 0..5 {
        let (vpcs, _) = vpcs_and_vswitches(ctx).await?;
        let table_id = p.get("RouteTableId").filter(|v| !v.is_empty());
        if let Some(t) = table_id
            && !vpcs.iter().any(|v| table_of(v) == t)
        {
            return Err(ApiError::new(
                404,
                "InvalidRouteTableId.NotFound",
                format!("Specified route table {t:?} does not exist."),
            ));
        }
        let matches = |r: &Value| {
            by_id.is_some_and(|i| r["RouteEntryId"] == i)
                || (dest.is_some_and(|d| r["DestinationCidrBlock"] == d) && hop.is_none_or(|h| r["NextHopId"] == h))
        };
        let Some(mut vpc) = vpcs
            .into_iter()
            .filter(|v| table_id.is_none_or(|t| table_of(v) == t))
            .find(|v| v.spec["CustomRoutes"].as_array().is_some_and(|a| a.iter().any(matches)))
        else {
            return Err(ApiError::new(
                404,
                "InvalidRouteEntry.NotFound",
                "The specified custom route entry does not exist.",
            ));
        };
        let mut routes = vpc.spec["CustomRoutes"].as_array().cloned().unwrap_or_default();
        routes.retain(|r| !matches(r));
        vpc.spec["CustomRoutes"] = Value::Array(routes);
        match ctx.store.update_resource(&vpc).await {
            Ok(_) => {
                crate::reconcile_later(ctx, &vpc.id).await?;
                return Ok(json!({}));
            }
            Err(nimbus_store::StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(409, "OperationConflict", "The route table is being changed; retry."))
}
