//! Elastic IP addresses: allocated from the region's public pool (100.64.0.0/16 by default, inside
//! the shared address space the brief reserves for them), unique across accounts. Association
//! binds one to an ECS instance; the VPC data plane NATs it 1:1.

use nimbus_api::{ApiError, CallContext, Params};
use nimbus_core::clock::{iso8601, now_millis};
use nimbus_core::ids;
use nimbus_store::{Resource, StoreError};
use serde_json::{Value, json};
use std::net::Ipv4Addr;

pub const KIND: &str = "vpc.eip";
/// Claims an address region-wide: resource ids are unique across accounts.
const CLAIM: &str = "vpc.eip-address";
const MAX_EIPS: usize = 20;

static POOL: std::sync::OnceLock<ipnet::Ipv4Net> = std::sync::OnceLock::new();

/// Sets the region's pool (`--eip-pool`), once, at start-up.
pub fn set_pool(pool: ipnet::Ipv4Net) {
    let _ = POOL.set(pool);
}

/// The pool. The first address is kept for the public bridge's gateway.
pub fn pool() -> ipnet::Ipv4Net {
    *POOL.get().unwrap_or(&DEFAULT_POOL)
}

const DEFAULT_POOL: ipnet::Ipv4Net = match ipnet::Ipv4Net::new(std::net::Ipv4Addr::new(100, 64, 0, 0), 16) {
    Ok(n) => n,
    Err(_) => panic!("the default pool is a valid network"),
};

fn claim_id(ip: Ipv4Addr) -> String {
    format!("eip-address:{ip}")
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(404, "InvalidAllocationId.NotFound", format!("Specified EIP {id:?} does not exist."))
}

async fn load(ctx: &CallContext, id: &str) -> Result<Resource, ApiError> {
    match ctx.store.get_resource(&ctx.caller.account_id, id).await {
        Ok(r) if r.kind == KIND => Ok(r),
        Ok(_) | Err(StoreError::NotFound) => Err(not_found(id)),
        Err(e) => Err(e.into()),
    }
}

async fn mine(ctx: &CallContext) -> Result<Vec<Resource>, ApiError> {
    Ok(ctx.store.all_resources(&ctx.caller.account_id, KIND).await?)
}

/// Claims the pool's lowest free address for `holder` (an EIP's AllocationId, or an instance
/// for AllocatePublicIpAddress) by creating its claim row, unique region-wide.
pub async fn claim_address(ctx: &CallContext, holder: &str) -> Result<Ipv4Addr, ApiError> {
    for ip in pool().hosts().skip(1) {
        let claim = Resource::new(
            &claim_id(ip),
            &ctx.caller.account_id,
            CLAIM,
            &ctx.region.id,
            json!({"AllocationId": holder}),
        );
        match ctx.store.create_resource(&claim).await {
            Ok(_) => return Ok(ip),
            Err(StoreError::AlreadyExists) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(400, "ResourceNotEnough.Eip", "The region's public address pool is exhausted."))
}

/// Gives a claimed address back to the pool.
pub async fn release_address(store: &nimbus_store::Store, account: &str, ip: Ipv4Addr) {
    if let Ok(c) = store.get_resource(account, &claim_id(ip)).await {
        let _ = store.delete_resource(account, &c.id, c.version).await;
    }
}

pub async fn allocate(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let bandwidth = p.int("Bandwidth", 1, 10_000)?.unwrap_or(5);
    let charge = p.get("InternetChargeType").filter(|c| !c.is_empty()).unwrap_or("PayByTraffic");
    if charge != "PayByTraffic" && charge != "PayByBandwidth" {
        return Err(ApiError::invalid("InternetChargeType", "PayByTraffic or PayByBandwidth"));
    }
    if mine(ctx).await?.len() >= MAX_EIPS {
        return Err(ApiError::new(400, "QuotaExceeded.Eip", format!("An account may hold at most {MAX_EIPS} EIPs.")));
    }
    let id = ids::resource_id("eip-");
    let ip = claim_address(ctx, &id).await?;
    let spec = json!({
        "IpAddress": ip.to_string(), "Name": p.get("Name").unwrap_or_default(),
        "Description": p.get("Description").unwrap_or_default(), "Bandwidth": bandwidth.to_string(),
        "InternetChargeType": charge, "AllocationTime": iso8601(now_millis()), "InstanceId": "", "InstanceType": "",
    });
    let mut r = Resource::new(&id, &ctx.caller.account_id, KIND, &ctx.region.id, spec);
    r.status = json!({"Status": "Available"});
    if let Err(e) = ctx.store.create_resource(&r).await {
        // Give the address back rather than leak it.
        if let Ok(c) = ctx.store.get_resource(&ctx.caller.account_id, &claim_id(ip)).await {
            let _ = ctx.store.delete_resource(&ctx.caller.account_id, &c.id, c.version).await;
        }
        return Err(e.into());
    }
    Ok(json!({"AllocationId": id, "EipAddress": ip.to_string(), "OrderId": "", "ResourceGroupId": ""}))
}

pub async fn describe(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let page = p.int("PageNumber", 1, 1_000_000)?.unwrap_or(1) as usize;
    let size = p.int("PageSize", 1, 100)?.unwrap_or(10) as usize;
    let f = |n: &str| p.get(n).filter(|v| !v.is_empty());
    let (id, addr, status) = (f("AllocationId"), f("EipAddress"), f("Status"));
    let list: Vec<Resource> = mine(ctx)
        .await?
        .into_iter()
        .filter(|r| id.is_none_or(|i| i.split(',').any(|x| x.trim() == r.id)))
        .filter(|r| addr.is_none_or(|a| r.spec["IpAddress"] == a))
        .filter(|r| status.is_none_or(|s| r.status["Status"] == s))
        .collect();
    let shown: Vec<Value> = list
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|r| {
            json!({
                "AllocationId": r.id, "IpAddress": r.spec["IpAddress"], "Name": r.spec["Name"],
                "Description": r.spec["Description"], "Status": r.status["Status"], "InstanceId": r.spec["InstanceId"],
                "InstanceType": r.spec["InstanceType"], "InstanceRegionId": ctx.region.id, "PrivateIpAddress": r.spec["PrivateIpAddress"],
                "Bandwidth": r.spec["Bandwidth"], "InternetChargeType": r.spec["InternetChargeType"],
                "ChargeType": "PostPaid", "AllocationTime": r.spec["AllocationTime"], "ExpiredTime": "",
                "ISP": "BGP", "RegionId": ctx.region.id, "DeletionProtection": false,
                "OperationLocks": {"LockReason": []}, "Tags": {"Tag": []},
            })
        })
        .collect();
    Ok(json!({"EipAddresses": {"EipAddress": shown}, "TotalCount": list.len(), "PageNumber": page, "PageSize": size}))
}

pub async fn release(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let r = load(ctx, p.require("AllocationId")?).await?;
    if r.status["Status"] != "Available" {
        return Err(ApiError::new(400, "IncorrectEipStatus", "The EIP is associated; unassociate it first."));
    }
    ctx.store.delete_resource(&ctx.caller.account_id, &r.id, r.version).await?;
    if let Some(ip) = r.spec["IpAddress"].as_str().and_then(|i| i.parse().ok())
        && let Ok(c) = ctx.store.get_resource(&ctx.caller.account_id, &claim_id(ip)).await
    {
        ctx.store.delete_resource(&ctx.caller.account_id, &c.id, c.version).await?;
    }
    Ok(json!({}))
}

/// Binds the EIP 1:1 to an ECS instance (`InstanceType` EcsInstance, the default); the VPC's
/// data plane then NATs it (`NetDriver::apply_eips`).
pub async fn associate(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let mut r = load(ctx, p.require("AllocationId")?).await?;
    let instance = p.require("InstanceId")?;
    let kind = p.get("InstanceType").filter(|t| !t.is_empty()).unwrap_or("EcsInstance");
    if kind != "EcsInstance" {
        return Err(ApiError::invalid("InstanceType", "only EcsInstance is supported in this region"));
    }
    let inst = match ctx.store.get_resource(&ctx.caller.account_id, instance).await {
        Ok(i) if i.kind == "ecs.instance" => i,
        Ok(_) | Err(StoreError::NotFound) => {
            return Err(ApiError::new(
                404,
                "InvalidInstanceId.NotFound",
                format!("Specified instance {instance:?} does not exist."),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if r.spec["InstanceId"] == instance {
        return Ok(json!({})); // a retry
    }
    if r.status["Status"] != "Available" {
        return Err(ApiError::new(400, "IncorrectEipStatus", "The EIP is already associated with another instance."));
    }
    if inst.spec["PublicIpAddress"].as_str().is_some_and(|a| !a.is_empty())
        || mine(ctx).await?.iter().any(|e| e.spec["InstanceId"] == instance)
    {
        return Err(ApiError::new(
            400,
            "InvalidAssociation.Duplicated",
            format!("Instance {instance} already has an EIP or a public IP."),
        ));
    }
    r.spec["InstanceId"] = json!(instance);
    r.spec["InstanceType"] = json!("EcsInstance");
    r.spec["PrivateIpAddress"] = inst.spec["PrivateIpAddress"].clone();
    r.spec["VpcId"] = inst.spec["VpcId"].clone();
    r.status = json!({"Status": "InUse"});
    ctx.store.update_resource(&r).await?;
    crate::reconcile_later(ctx, inst.spec["VpcId"].as_str().unwrap_or_default()).await?;
    Ok(json!({}))
}

pub async fn unassociate(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let mut r = load(ctx, p.require("AllocationId")?).await?;
    if r.status["Status"] == "Available" {
        return Err(ApiError::new(400, "IncorrectEipStatus", "The EIP is not associated with any instance."));
    }
    if let Some(i) = p.get("InstanceId").filter(|i| !i.is_empty())
        && r.spec["InstanceId"] != i
    {
        return Err(ApiError::new(400, "IncorrectInstanceStatus", format!("The EIP is not associated with {i}.")));
    }
    let vpc = r.spec["VpcId"].as_str().unwrap_or_default().to_string();
    for f in ["InstanceId", "InstanceType", "PrivateIpAddress", "VpcId"] {
        r.spec[f] = json!("");
    }
    r.status = json!({"Status": "Available"});
    ctx.store.update_resource(&r).await?;
    crate::reconcile_later(ctx, &vpc).await?;
    Ok(json!({}))
}
