//! Elastic IP addresses: allocated from the region's public pool (100.64.0.0/16 by default, inside
//! the shared address space the brief reserves for them), unique across accounts. Association
//! binds one to an ECS instance; the VPC data plane NATs it 1:1.

use crate::model::{AddressClaim, ClaimSpec, EipKind, EipRecord, EipSpec, EipState, EipStatus, InstanceView};
use nimbus_api::{ApiError, CallContext, Params};
use nimbus_core::clock::{iso8601, now_millis};
use nimbus_store::{Kind, Page, Record, StoreError};
use serde_json::{Value, json};
use std::net::Ipv4Addr;

pub const KIND: &str = EipKind::KIND;
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

async fn load(ctx: &CallContext, id: &str) -> Result<EipRecord, ApiError> {
    match ctx.store.repo::<EipKind>().get(&ctx.caller.account_id, id).await {
        Ok(r) => Ok(r),
        Err(StoreError::NotFound) => Err(not_found(id)),
        Err(e) => Err(e.into()),
    }
}

async fn mine(ctx: &CallContext) -> Result<Vec<EipRecord>, ApiError> {
    Ok(ctx.store.repo::<EipKind>().all(&ctx.caller.account_id).await?)
}

/// Claims the pool's lowest free address for `holder` (an EIP's AllocationId, or an instance
/// for AllocatePublicIpAddress) by creating its claim row, unique region-wide.
pub async fn claim_address(ctx: &CallContext, holder: &str) -> Result<Ipv4Addr, ApiError> {
    let claims = ctx.store.repo::<AddressClaim>();
    for ip in pool().hosts().skip(1) {
        let spec = ClaimSpec { allocation_id: holder.into() };
        match claims.create(&Record::new(claim_id(ip), &ctx.caller.account_id, &ctx.region.id, spec)).await {
            Ok(_) => return Ok(ip),
            Err(StoreError::AlreadyExists) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(400, "ResourceNotEnough.Eip", "The region's public address pool is exhausted."))
}

/// Gives a claimed address back to the pool.
pub async fn release_address(store: &nimbus_store::Store, account: &str, ip: Ipv4Addr) {
    let _ = store.repo::<AddressClaim>().delete(account, &claim_id(ip)).await;
}

/// The caller's ECS instance `id`, as far as VPC reads it.
pub(crate) async fn instance(ctx: &CallContext, id: &str) -> Result<InstanceView, ApiError> {
    match ctx.store.get_resource(&ctx.caller.account_id, id).await {
        Ok(i) if i.kind == "ecs.instance" => Ok(i.spec_as()?),
        Ok(_) | Err(StoreError::NotFound) => {
            Err(ApiError::new(404, "InvalidInstanceId.NotFound", format!("Specified instance {id:?} does not exist.")))
        }
        Err(e) => Err(e.into()),
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
    let id = EipKind::new_id();
    let ip = claim_address(ctx, &id).await?;
    let spec = EipSpec {
        ip_address: ip.to_string(),
        name: p.get("Name").unwrap_or_default().into(),
        description: p.get("Description").unwrap_or_default().into(),
        bandwidth: bandwidth.to_string(),
        internet_charge_type: charge.into(),
        allocation_time: iso8601(now_millis()),
        instance_id: String::new(),
        instance_type: String::new(),
        private_ip_address: None,
        vpc_id: None,
    };
    let r = Record::<EipKind>::new(&id, &ctx.caller.account_id, &ctx.region.id, spec)
        .with_status(EipStatus { status: EipState::Available });
    if let Err(e) = ctx.store.repo::<EipKind>().create(&r).await {
        // Give the address back rather than leak it.
        release_address(&ctx.store, &ctx.caller.account_id, ip).await;
        return Err(e.into());
    }
    Ok(json!({"AllocationId": id, "EipAddress": ip.to_string(), "OrderId": "", "ResourceGroupId": ""}))
}

pub async fn describe(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let page = Page {
        number: p.int("PageNumber", 1, 1_000_000)?.unwrap_or(1) as usize,
        size: p.int("PageSize", 1, 100)?.unwrap_or(10) as usize,
    };
    let f = |n: &str| p.get(n).filter(|v| !v.is_empty());
    let (id, addr, status) = (f("AllocationId"), f("EipAddress"), f("Status"));
    let list = ctx
        .store
        .repo::<EipKind>()
        .list(
            &ctx.caller.account_id,
            |r| {
                id.is_none_or(|i| i.split(',').any(|x| x.trim() == r.id))
                    && addr.is_none_or(|a| r.spec.ip_address == a)
                    && status.is_none_or(|s| r.status.status.as_str() == s)
            },
            page,
        )
        .await?;
    let shown: Vec<Value> = list
        .items
        .iter()
        .map(|r| {
            let s = &r.spec;
            json!({
                "AllocationId": r.id, "IpAddress": s.ip_address, "Name": s.name,
                "Description": s.description, "Status": r.status.status, "InstanceId": s.instance_id,
                "InstanceType": s.instance_type, "InstanceRegionId": ctx.region.id, "PrivateIpAddress": s.private_ip_address,
                "Bandwidth": s.bandwidth, "InternetChargeType": s.internet_charge_type,
                "ChargeType": "PostPaid", "AllocationTime": s.allocation_time, "ExpiredTime": "",
                "ISP": "BGP", "RegionId": ctx.region.id, "DeletionProtection": false,
                "OperationLocks": {"LockReason": []}, "Tags": {"Tag": []},
            })
        })
        .collect();
    Ok(
        json!({"EipAddresses": {"EipAddress": shown}, "TotalCount": list.total, "PageNumber": page.number, "PageSize": page.size}),
    )
}

pub async fn release(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let id = p.require("AllocationId")?;
    let refuse = |r: &EipRecord| {
        if r.status.status != EipState::Available {
            return Err(ApiError::new(400, "IncorrectEipStatus", "The EIP is associated; unassociate it first."));
        }
        Ok(())
    };
    // Checks the EIP as found first (NotFound), then deletes it at the version checked.
    refuse(&load(ctx, id).await?)?;
    let r = ctx.store.repo::<EipKind>().delete_if(&ctx.caller.account_id, id, refuse).await?;
    if let Ok(ip) = r.spec.ip_address.parse() {
        release_address(&ctx.store, &ctx.caller.account_id, ip).await;
    }
    Ok(json!({}))
}

/// Binds the EIP 1:1 to an ECS instance (`InstanceType` EcsInstance, the default); the VPC's
/// data plane then NATs it (`NetDriver::apply_eips`).
pub async fn associate(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let r = load(ctx, p.require("AllocationId")?).await?;
    let instance_id = p.require("InstanceId")?;
    let kind = p.get("InstanceType").filter(|t| !t.is_empty()).unwrap_or("EcsInstance");
    if kind != "EcsInstance" {
        return Err(ApiError::invalid("InstanceType", "only EcsInstance is supported in this region"));
    }
    let inst = instance(ctx, instance_id).await?;
    if r.spec.instance_id == instance_id {
        return Ok(json!({})); // a retry
    }
    if r.status.status != EipState::Available {
        return Err(ApiError::new(400, "IncorrectEipStatus", "The EIP is already associated with another instance."));
    }
    if inst.public_ip_address.as_deref().is_some_and(|a| !a.is_empty())
        || mine(ctx).await?.iter().any(|e| e.spec.instance_id == instance_id)
    {
        return Err(ApiError::new(
            400,
            "InvalidAssociation.Duplicated",
            format!("Instance {instance_id} already has an EIP or a public IP."),
        ));
    }
    let mut r = r;
    r.spec.instance_id = instance_id.into();
    r.spec.instance_type = "EcsInstance".into();
    r.spec.private_ip_address = inst.private_ip_address.clone();
    r.spec.vpc_id = Some(inst.vpc_id.clone());
    r.status = EipStatus { status: EipState::InUse };
    ctx.store.repo::<EipKind>().update(&r).await?;
    crate::reconcile_later(ctx, &inst.vpc_id).await?;
    Ok(json!({}))
}

pub async fn unassociate(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let mut r = load(ctx, p.require("AllocationId")?).await?;
    if r.status.status == EipState::Available {
        return Err(ApiError::new(400, "IncorrectEipStatus", "The EIP is not associated with any instance."));
    }
    if let Some(i) = p.get("InstanceId").filter(|i| !i.is_empty())
        && r.spec.instance_id != i
    {
        return Err(ApiError::new(400, "IncorrectInstanceStatus", format!("The EIP is not associated with {i}.")));
    }
    let vpc = r.spec.vpc_id.take().unwrap_or_default();
    r.spec.instance_id = String::new();
    r.spec.instance_type = String::new();
    r.spec.private_ip_address = Some(String::new());
    r.spec.vpc_id = Some(String::new());
    r.status = EipStatus { status: EipState::Available };
    ctx.store.repo::<EipKind>().update(&r).await?;
    crate::reconcile_later(ctx, &vpc).await?;
    Ok(json!({}))
}
