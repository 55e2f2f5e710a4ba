//! Instances (ECS 2014-05-26). The API records what the customer wants (`spec.Desired`:
//! Running or Stopped, `spec.RebootSeq` for reboots) and queues an `ecs.instance` job; the host
//! agent (in the `nimbus` binary) makes the host match and moves `status.Status` through the
//! documented names: Pending → Starting → Running → Stopping → Stopped. A deleted instance's job
//! finds no resource and tears its VM, port and disks down.

use crate::Ecs;
use crate::image;
use crate::model::INSTANCE_TYPES;
use nimbus_api::conventions::Page;
use nimbus_api::{ApiError, CallContext, Params};
use nimbus_core::clock::{iso8601, now_millis};
use nimbus_core::ids;
use nimbus_store::{NewJob, Resource, StoreError};
use serde_json::{Value, json};
use std::net::Ipv4Addr;

pub const KIND: &str = "ecs.instance";
pub const JOB: &str = "ecs.instance";
/// Claims a private address region-wide (resource ids are unique): `ip:<vswitch>:<address>`.
const IP_CLAIM: &str = "ecs.private-ip";
const MAX_INSTANCES: usize = 20;
const MAX_USER_DATA: usize = 32 * 1024;

fn not_found(id: &str) -> ApiError {
    ApiError::new(404, "InvalidInstanceId.NotFound", format!("The specified InstanceId {id:?} does not exist."))
}

pub async fn load(ctx: &CallContext, id: &str) -> Result<Resource, ApiError> {
    match ctx.store.get_resource(&ctx.caller.account_id, id).await {
        Ok(r) if r.kind == KIND => Ok(r),
        Ok(_) | Err(StoreError::NotFound) => Err(not_found(id)),
        Err(e) => Err(e.into()),
    }
}

async fn get_kind(
    ctx: &CallContext,
    id: &str,
    kind: &str,
    code: &'static str,
    what: &str,
) -> Result<Resource, ApiError> {
    match ctx.store.get_resource(&ctx.caller.account_id, id).await {
        Ok(r) if r.kind == kind => Ok(r),
        Ok(_) | Err(StoreError::NotFound) => {
            Err(ApiError::new(404, code, format!("The specified {what} {id:?} does not exist.")))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn enqueue(ctx: &CallContext, id: &str) -> Result<(), ApiError> {
    ctx.store
        .enqueue_job(&NewJob {
            kind: JOB.into(),
            account_id: ctx.caller.account_id.clone(),
            payload: json!({"InstanceId": id}),
            max_attempts: 20,
        })
        .await?;
    Ok(())
}

/// The instance type's (vCPUs, memory MiB).
fn instance_type(name: &str) -> Result<(u32, u32, &'static str), ApiError> {
    INSTANCE_TYPES.iter().find(|t| t.0 == name).map(|t| (t.2, (t.3 * 1024.0) as u32, t.1)).ok_or_else(|| {
        ApiError::new(
            400,
            "InvalidInstanceType.ValueNotSupported",
            format!("The specified InstanceType {name:?} is not offered; see DescribeInstanceTypes."),
        )
    })
}

/// Claims the lowest free address of the vSwitch (the first is its gateway; Alibaba also keeps
/// the last three).
async fn claim_ip(
    ctx: &CallContext,
    vswitch: &str,
    cidr: ipnet::Ipv4Net,
    instance: &str,
) -> Result<Ipv4Addr, ApiError> {
    let hosts: Vec<Ipv4Addr> = cidr.hosts().collect();
    let usable = hosts.len().saturating_sub(4);
    for ip in hosts.into_iter().skip(1).take(usable) {
        let claim = Resource::new(
            &format!("ip:{vswitch}:{ip}"),
            &ctx.caller.account_id,
            IP_CLAIM,
            &ctx.region.id,
            json!({"InstanceId": instance}),
        );
        match ctx.store.create_resource(&claim).await {
            Ok(_) => return Ok(ip),
            Err(StoreError::AlreadyExists) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(400, "InvalidVSwitchId.IpNotEnough", format!("The vSwitch {vswitch} has no free address.")))
}

/// Frees the private address of a deleted instance.
pub async fn release_ip(store: &nimbus_store::Store, account: &str, spec: &Value) {
    let id = format!(
        "ip:{}:{}",
        spec["VSwitchId"].as_str().unwrap_or_default(),
        spec["PrivateIpAddress"].as_str().unwrap_or_default()
    );
    if let Ok(r) = store.get_resource(account, &id).await {
        let _ = store.delete_resource(account, &id, r.version).await;
    }
}

fn mac() -> String {
    let b: [u8; 3] = rand::random();
    // 00:16:3e is the prefix of Alibaba Cloud's instance MACs.
    format!("00:16:3e:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

fn security_groups(p: &Params) -> Vec<String> {
    let mut v: Vec<String> = p.list("SecurityGroupIds").iter().map(|s| s.to_string()).collect();
    if let Some(g) = p.get("SecurityGroupId").filter(|g| !g.is_empty())
        && !v.iter().any(|x| x == g)
    {
        v.insert(0, g.to_string());
    }
    v
}

/// RunInstances (start = true) and CreateInstance (start = false: created Stopped).
pub async fn run(ecs: &Ecs, ctx: &CallContext, p: &Params, start: bool) -> Result<Value, ApiError> {
    let amount = if start { p.int("Amount", 1, 100)?.unwrap_or(1) as usize } else { 1 };
    let type_name = p.require("InstanceType")?;
    let (cpu, memory, family) = instance_type(type_name)?;
    let image_id = p.require("ImageId")?;
    let img = image::usable(ctx, image_id).await?;
    if img.status["Status"] == image::CREATE_FAILED {
        return Err(ApiError::new(
            400,
            "InvalidImageId.NotAvailable",
            format!(
                "Image {image_id} is CreateFailed and cannot be used: {}",
                img.status["Reason"].as_str().unwrap_or("its build failed")
            ),
        ));
    }
    if img.status["Status"] != "Available" {
        return Err(ApiError::new(
            400,
            "InvalidImageId.NotAvailable",
            format!(
                "Image {image_id} is {}; wait until it is Available.",
                img.status["Status"].as_str().unwrap_or("Creating")
            ),
        ));
    }
    let vsw_id = p.require("VSwitchId")?;
    let vsw = get_kind(ctx, vsw_id, "vpc.vswitch", "InvalidVSwitchId.NotFound", "VSwitchId").await?;
    let vpc_id = vsw.spec["VpcId"].as_str().unwrap_or_default().to_string();
    let cidr: ipnet::Ipv4Net =
        vsw.spec["CidrBlock"].as_str().unwrap_or_default().parse().map_err(|_| ApiError::internal())?;
    let groups = security_groups(p);
    if groups.is_empty() {
        return Err(ApiError::missing("SecurityGroupId"));
    }
    for g in &groups {
        let sg =
            get_kind(ctx, g, crate::security_group::KIND, "InvalidSecurityGroupId.NotFound", "SecurityGroupId").await?;
        if sg.spec["VpcId"] != vpc_id.as_str() {
            return Err(ApiError::new(
                400,
                "InvalidSecurityGroupId.NotInVpc",
                format!("Security group {g} is not in the vSwitch's VPC {vpc_id}."),
            ));
        }
    }
    if let Some(z) = p.get("ZoneId").filter(|z| !z.is_empty())
        && vsw.spec["ZoneId"] != z
    {
        return Err(ApiError::new(
            400,
            "InvalidVSwitchId.ZoneMismatch",
            format!("The vSwitch {vsw_id} is not in zone {z}."),
        ));
    }
    let key_pair = p.get("KeyPairName").filter(|k| !k.is_empty());
    if let Some(k) = key_pair {
        get_kind(
            ctx,
            &crate::key_pair::id_of(&ctx.caller.account_id, k),
            crate::key_pair::KIND,
            "InvalidKeyPairName.NotFound",
            "KeyPairName",
        )
        .await?;
    }
    let ram_role = crate::ram_role::requested(ctx, p).await?;
    let metadata_options = metadata_options(p, &json!({"HttpEndpoint": "enabled", "HttpTokens": "optional"}))?;
    let user_data = p.get("UserData").unwrap_or_default();
    if !user_data.is_empty() {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD.decode(user_data).map_err(|_| {
            ApiError::new(400, "InvalidUserData.Base64FormatInvalid", "UserData must be Base64-encoded.")
        })?;
        if raw.len() > MAX_USER_DATA {
            return Err(ApiError::new(
                400,
                "InvalidUserData.SizeExceeded",
                "UserData may be at most 32 KiB before encoding.",
            ));
        }
    }
    let name = p.get("InstanceName").unwrap_or_default();
    if name.chars().count() > 128 {
        return Err(ApiError::invalid("InstanceName", "at most 128 characters"));
    }
    check_limits(ecs, ctx, u64::from(memory) * amount as u64, amount).await?;
    if p.bool("DryRun")? == Some(true) {
        return Err(ApiError::new(400, "DryRunOperation", "Request validation has been passed with DryRun flag set."));
    }
    // A tampered image is refused before anything is made.
    if let Some(objects) = &ecs.images {
        image::fetch_verified(objects.as_ref(), &img).await?;
    }
    let mut made: Vec<Resource> = vec![];
    for n in 0..amount {
        let id = ids::resource_id("i-");
        let ip = match claim_ip(ctx, vsw_id, cidr, &id).await {
            Ok(ip) => ip,
            Err(e) => return Err(roll_back(ctx, made, e).await),
        };
        let host = p
            .get("HostName")
            .filter(|h| !h.is_empty())
            .map(|h| if amount > 1 { format!("{h}{:03}", n + 1) } else { h.to_string() })
            .unwrap_or_else(|| format!("iZ{}Z", &id[2..]));
        let spec = json!({
            "InstanceName": if name.is_empty() { id.clone() } else { name.to_string() },
            "Description": p.get("Description").unwrap_or_default(),
            "HostName": host, "InstanceType": type_name, "InstanceTypeFamily": family, "Cpu": cpu, "Memory": memory,
            "ImageId": image_id, "ImageOwner": img.account_id, "ZoneId": vsw.spec["ZoneId"], "VpcId": vpc_id, "VSwitchId": vsw_id,
            "PrivateIpAddress": ip.to_string(), "Gateway": crate::api::gateway_of(cidr).to_string(), "PrefixLen": cidr.prefix_len(),
            "MacAddress": mac(), "SecurityGroupIds": groups, "KeyPairName": key_pair.unwrap_or_default(),
            "UserData": user_data, "CreationTime": iso8601(now_millis()), "Desired": if start { "Running" } else { "Stopped" },
            "RebootSeq": 0, "DeletionProtection": false, "RamRoleName": ram_role.clone().unwrap_or_default(),
            "MetadataOptions": metadata_options,
        });
        let mut r = Resource::new(&id, &ctx.caller.account_id, KIND, &ctx.region.id, spec);
        r.status = json!({"Status": if start { "Pending" } else { "Stopped" }});
        match ctx.store.create_resource(&r).await {
            Ok(stored) => made.push(stored),
            Err(e) => {
                release_ip(&ctx.store, &ctx.caller.account_id, &r.spec).await;
                return Err(roll_back(ctx, made, e.into()).await);
            }
        }
    }
    // Checked again with the new rows in: two calls racing past the first check cannot both
    // keep what only one of them fits (both may roll back; the caller retries).
    if let Err(e) = check_limits(ecs, ctx, 0, 0).await {
        return Err(roll_back(ctx, made, e).await);
    }
    let ids_out: Vec<String> = made.iter().map(|r| r.id.clone()).collect();
    if start {
        for id in &ids_out {
            enqueue(ctx, id).await?;
        }
    }
    if start {
        Ok(json!({"InstanceIdSets": {"InstanceIdSet": ids_out}, "OrderId": "", "TradePrice": 0.0}))
    } else {
        Ok(json!({"InstanceId": ids_out[0], "OrderId": "", "TradePrice": 0.0}))
    }
}

/// The instance as DescribeInstances shows it; `eip` is its EIP resource, if one is bound.
fn view(i: &Resource, eip: Option<&Resource>, region: &str) -> Value {
    let s = &i.spec;
    let public_ip = s["PublicIpAddress"].as_str().filter(|x| !x.is_empty());
    json!({
        "InstanceId": i.id, "InstanceName": s["InstanceName"], "Description": s["Description"], "HostName": s["HostName"],
        "Status": i.status["Status"].as_str().unwrap_or("Pending"), "RegionId": region, "ZoneId": s["ZoneId"],
        "InstanceType": s["InstanceType"], "InstanceTypeFamily": s["InstanceTypeFamily"], "Cpu": s["Cpu"], "Memory": s["Memory"],
        "ImageId": s["ImageId"], "OSName": "Nimbus busybox", "OSType": "linux", "CreationTime": s["CreationTime"],
        "StartTime": i.status["StartTime"].as_str().unwrap_or_default(), "ExpiredTime": "2099-12-31T15:59Z",
        "InstanceChargeType": "PostPaid", "InternetChargeType": "PayByTraffic", "InternetMaxBandwidthOut": 0,
        "InstanceNetworkType": "vpc", "StoppedMode": "Not-applicable",
        "VpcAttributes": {"VpcId": s["VpcId"], "VSwitchId": s["VSwitchId"], "PrivateIpAddress": {"IpAddress": [s["PrivateIpAddress"]]}, "NatIpAddress": ""},
        "PublicIpAddress": {"IpAddress": public_ip.map(|p| vec![p]).unwrap_or_default()},
        "InnerIpAddress": {"IpAddress": []},
        "EipAddress": match eip {
            Some(e) => json!({"AllocationId": e.id, "IpAddress": e.spec["IpAddress"], "Bandwidth": e.spec["Bandwidth"], "InternetChargeType": e.spec["InternetChargeType"]}),
            None => json!({"AllocationId": "", "IpAddress": "", "Bandwidth": 0, "InternetChargeType": ""}),
        },
        "SecurityGroupIds": {"SecurityGroupId": s["SecurityGroupIds"]},
        "NetworkInterfaces": {"NetworkInterface": [{"NetworkInterfaceId": format!("eni-{}", &i.id[2..]), "MacAddress": s["MacAddress"],
            "PrimaryIpAddress": s["PrivateIpAddress"], "Type": "Primary",
            "PrivateIpSets": {"PrivateIpSet": [{"PrivateIpAddress": s["PrivateIpAddress"], "Primary": true}]}}]},
        "Tags": {"Tag": []}, "KeyPairName": s["KeyPairName"], "DeletionProtection": s["DeletionProtection"],
        "MetadataOptions": {
            "HttpEndpoint": s["MetadataOptions"]["HttpEndpoint"].as_str().unwrap_or("enabled"),
            "HttpTokens": s["MetadataOptions"]["HttpTokens"].as_str().unwrap_or("optional"),
            "HttpPutResponseHopLimit": 1,
        },
        "ResourceGroupId": "", "OperationLocks": {"LockReason": []},
    })
}

async fn eips(ctx: &CallContext) -> Result<Vec<Resource>, ApiError> {
    Ok(ctx.store.all_resources(&ctx.caller.account_id, "vpc.eip").await?)
}

fn eip_of<'a>(eips: &'a [Resource], id: &str) -> Option<&'a Resource> {
    eips.iter().find(|e| e.spec["InstanceId"] == id)
}

pub async fn describe(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let page = Page::from_params(p, 10, 100)?;
    let ids: Vec<String> = match p.get("InstanceIds").filter(|v| !v.is_empty()) {
        Some(v) => serde_json::from_str(v).map_err(|_| ApiError::invalid("InstanceIds", "a JSON array of ids"))?,
        None => vec![],
    };
    let filter = |name: &str| p.get(name).filter(|v| !v.is_empty());
    let eips = eips(ctx).await?;
    let mut all: Vec<Value> = ctx
        .store
        .all_resources(&ctx.caller.account_id, KIND)
        .await?
        .iter()
        .filter(|i| ids.is_empty() || ids.contains(&i.id))
        .map(|i| view(i, eip_of(&eips, &i.id), &ctx.region.id))
        .filter(|v| filter("Status").is_none_or(|s| v["Status"] == s))
        .filter(|v| filter("VpcId").is_none_or(|s| v["VpcAttributes"]["VpcId"] == s))
        .filter(|v| filter("VSwitchId").is_none_or(|s| v["VpcAttributes"]["VSwitchId"] == s))
        .filter(|v| filter("ZoneId").is_none_or(|s| v["ZoneId"] == s))
        .filter(|v| filter("InstanceName").is_none_or(|s| v["InstanceName"] == s))
        .filter(|v| {
            filter("SecurityGroupId").is_none_or(|s| {
                v["SecurityGroupIds"]["SecurityGroupId"].as_array().is_some_and(|a| a.iter().any(|g| g == s))
            })
        })
        .collect();
    all.sort_by(|a, b| {
        a["CreationTime"]
            .as_str()
            .cmp(&b["CreationTime"].as_str())
            .then(a["InstanceId"].as_str().cmp(&b["InstanceId"].as_str()))
    });
    Ok(page.answer(&all, "Instances", "Instance"))
}

pub async fn attribute(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let i = load(ctx, p.require("InstanceId")?).await?;
    let eips = eips(ctx).await?;
    Ok(view(&i, eip_of(&eips, &i.id), &ctx.region.id))
}

pub async fn status(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let page = p.int("PageNumber", 1, 1_000_000)?.unwrap_or(1) as usize;
    let size = p.int("PageSize", 1, 50)?.unwrap_or(10) as usize;
    let ids = p.list("InstanceId");
    let mut all: Vec<Value> = ctx
        .store
        .all_resources(&ctx.caller.account_id, KIND)
        .await?
        .iter()
        .filter(|i| ids.is_empty() || ids.contains(&i.id.as_str()))
        .filter(|i| p.get("ZoneId").filter(|z| !z.is_empty()).is_none_or(|z| i.spec["ZoneId"] == z))
        .map(|i| json!({"InstanceId": i.id, "Status": i.status["Status"].as_str().unwrap_or("Pending")}))
        .collect();
    all.sort_by(|a, b| a["InstanceId"].as_str().cmp(&b["InstanceId"].as_str()));
    let total = all.len();
    let items: Vec<Value> = all.into_iter().skip((page - 1) * size).take(size).collect();
    Ok(
        json!({"InstanceStatuses": {"InstanceStatus": items}, "TotalCount": total, "PageNumber": page, "PageSize": size}),
    )
}

fn incorrect(id: &str, status: &str, want: &str) -> ApiError {
    ApiError::new(
        403,
        "IncorrectInstanceStatus",
        format!("The current status of instance {id} ({status}) does not support this operation; it must be {want}."),
    )
}

/// Records a power change; returns (previous status, new status).
async fn power(ctx: &CallContext, id: &str, op: &str, p: &Params) -> Result<(String, String), ApiError> {
    for _ in 0..5 {
        let mut i = load(ctx, id).await?;
        let prev = i.status["Status"].as_str().unwrap_or("Pending").to_string();
        let next = match (op, prev.as_str()) {
            ("start", "Stopped") => "Starting",
            ("start", "Running" | "Starting" | "Pending") => return Ok((prev.clone(), prev)),
            ("start", _) => return Err(incorrect(id, &prev, "Stopped")),
            ("stop", "Running" | "Starting" | "Pending") => "Stopping",
            ("stop", "Stopped" | "Stopping") => return Ok((prev.clone(), prev)),
            ("reboot", "Running") => "Starting",
            ("reboot", _) => return Err(incorrect(id, &prev, "Running")),
            _ => return Err(incorrect(id, &prev, "Running or Stopped")),
        };
        match op {
            "start" => i.spec["Desired"] = json!("Running"),
            "stop" => {
                i.spec["Desired"] = json!("Stopped");
                // ForceStop: power off at once, like pulling the plug; otherwise the guest is
                // asked to shut down (ACPI power button) first.
                i.spec["ForceStop"] = json!(p.bool("ForceStop")?.unwrap_or(false));
            }
            _ => {
                i.spec["RebootSeq"] = json!(i.spec["RebootSeq"].as_i64().unwrap_or(0) + 1);
                // ForceStop: a reset; otherwise a clean shutdown and a boot.
                i.spec["RebootForce"] = json!(p.bool("ForceStop")?.unwrap_or(false));
            }
        }
        i.status["Status"] = json!(next);
        match ctx.store.update_resource(&i).await {
            Ok(_) => {
                enqueue(ctx, id).await?;
                return Ok((prev, next.to_string()));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(409, "OperationConflict", format!("Instance {id} is changing; retry.")))
}

pub async fn start(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    power(ctx, p.require("InstanceId")?, "start", p).await.map(|_| json!({}))
}
pub async fn stop(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    power(ctx, p.require("InstanceId")?, "stop", p).await.map(|_| json!({}))
}
pub async fn reboot(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    power(ctx, p.require("InstanceId")?, "reboot", p).await.map(|_| json!({}))
}

/// StartInstances / StopInstances: per-instance outcomes.
pub async fn batch(ctx: &CallContext, p: &Params, op: &str) -> Result<Value, ApiError> {
    let ids = p.list("InstanceId");
    if ids.is_empty() {
        return Err(ApiError::missing("InstanceId.1"));
    }
    let mut out = vec![];
    for id in ids {
        out.push(match power(ctx, id, op, p).await {
            Ok((prev, cur)) => json!({"InstanceId": id, "Code": "200", "Message": "success", "PreviousStatus": prev, "CurrentStatus": cur}),
            Err(e) => json!({"InstanceId": id, "Code": e.code, "Message": e.message, "PreviousStatus": "", "CurrentStatus": ""}),
        });
    }
    Ok(json!({"InstanceResponses": {"InstanceResponse": out}}))
}

pub async fn delete_one(ctx: &CallContext, id: &str, force: bool) -> Result<(), ApiError> {
    let i = load(ctx, id).await?;
    let status = i.status["Status"].as_str().unwrap_or("Pending");
    if status != "Stopped" && !force {
        return Err(incorrect(id, status, "Stopped (or pass Force=true)"));
    }
    if i.spec["DeletionProtection"] == true {
        return Err(ApiError::new(
            403,
            "InvalidOperation.DeletionProtection",
            "The instance has deletion protection on.",
        ));
    }
    if eips(ctx).await?.iter().any(|e| e.spec["InstanceId"] == id) {
        return Err(ApiError::new(
            403,
            "DependencyViolation.EipAddress",
            format!("Instance {id} still has an EIP; unassociate it first."),
        ));
    }
    ctx.store.delete_resource(&ctx.caller.account_id, id, i.version).await?;
    release_ip(&ctx.store, &ctx.caller.account_id, &i.spec).await;
    if let Some(ip) = i.spec["PublicIpAddress"].as_str().and_then(|a| a.parse().ok()) {
        nimbus_vpc::eip::release_address(&ctx.store, &ctx.caller.account_id, ip).await;
    }
    // The agent tears the VM down from what the job carries: the resource is gone.
    ctx.store
        .enqueue_job(&NewJob {
            kind: JOB.into(),
            account_id: ctx.caller.account_id.clone(),
            payload: json!({"InstanceId": id, "VpcId": i.spec["VpcId"], "Deleted": true}),
            max_attempts: 20,
        })
        .await?;
    Ok(())
}

pub async fn delete(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    delete_one(ctx, p.require("InstanceId")?, p.bool("Force")?.unwrap_or(false)).await.map(|_| json!({}))
}

pub async fn delete_many(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let ids = p.list("InstanceId");
    if ids.is_empty() {
        return Err(ApiError::missing("InstanceId.1"));
    }
    let force = p.bool("Force")?.unwrap_or(false);
    for id in &ids {
        let i = load(ctx, id).await?;
        let status = i.status["Status"].as_str().unwrap_or("Pending");
        if status != "Stopped" && !force {
            return Err(incorrect(id, status, "Stopped (or pass Force=true)"));
        }
    }
    for id in ids {
        delete_one(ctx, id, force).await?;
    }
    Ok(json!({}))
}

pub async fn modify(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let mut i = load(ctx, p.require("InstanceId")?).await?;
    for f in ["InstanceName", "Description", "HostName", "UserData"] {
        if let Some(v) = p.get(f) {
            i.spec[f] = json!(v);
        }
    }
    if let Some(d) = p.bool("DeletionProtection")? {
        i.spec["DeletionProtection"] = json!(d);
    }
    let groups = p.list("SecurityGroupIds");
    if !groups.is_empty() {
        for g in &groups {
            let sg =
                get_kind(ctx, g, crate::security_group::KIND, "InvalidSecurityGroupId.NotFound", "SecurityGroupId")
                    .await?;
            if sg.spec["VpcId"] != i.spec["VpcId"] {
                return Err(ApiError::new(
                    400,
                    "InvalidSecurityGroupId.NotInVpc",
                    format!("Security group {g} is not in the instance's VPC."),
                ));
            }
        }
        i.spec["SecurityGroupIds"] = json!(groups);
    }
    ctx.store.update_resource(&i).await?;
    enqueue(ctx, &i.id).await?;
    Ok(json!({}))
}

/// GetInstanceConsoleOutput: the agent keeps the serial log; the API reads the tail it mirrors
/// into the status (`status.ConsoleTail`), Base64 as the API documents.
pub async fn console(ecs: &Ecs, ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    use base64::Engine;
    let i = load(ctx, p.require("InstanceId")?).await?;
    let text = ecs.console.as_ref().map(|f| f(&i.id)).unwrap_or_default();
    Ok(json!({"InstanceId": i.id, "ConsoleOutput": base64::engine::general_purpose::STANDARD.encode(text),
              "LastUpdateTime": iso8601(now_millis())}))
}

/// AllocatePublicIpAddress: a public address from the region's pool, NAT'd 1:1 like an EIP but
/// owned by the instance (released with it). A second call answers the address it already has.
pub async fn allocate_public_ip(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let id = p.require("InstanceId")?;
    if p.get("IpAddress").is_some_and(|v| !v.is_empty()) {
        return Err(ApiError::invalid("IpAddress", "choosing the address is not supported; the pool assigns it"));
    }
    for _ in 0..5 {
        let mut i = load(ctx, id).await?;
        if let Some(ip) = i.spec["PublicIpAddress"].as_str().filter(|a| !a.is_empty()) {
            return Ok(json!({"IpAddress": ip}));
        }
        if eips(ctx).await?.iter().any(|e| e.spec["InstanceId"] == id) {
            return Err(ApiError::new(
                403,
                "InvalidInstance.EipAssociated",
                format!("Instance {id} has an EIP; it needs no public IP."),
            ));
        }
        let ip = nimbus_vpc::eip::claim_address(ctx, id).await?;
        i.spec["PublicIpAddress"] = json!(ip.to_string());
        match ctx.store.update_resource(&i).await {
            Ok(_) => {
                nimbus_vpc::reconcile_later(ctx, i.spec["VpcId"].as_str().unwrap_or_default()).await?;
                return Ok(json!({"IpAddress": ip.to_string()}));
            }
            Err(StoreError::Conflict) => nimbus_vpc::eip::release_address(&ctx.store, &ctx.caller.account_id, ip).await,
            Err(e) => {
                nimbus_vpc::eip::release_address(&ctx.store, &ctx.caller.account_id, ip).await;
                return Err(e.into());
            }
        }
    }
    Err(ApiError::new(409, "OperationConflict", format!("Instance {id} is changing; retry.")))
}

/// `HttpEndpoint` (enabled|disabled) and `HttpTokens` (optional|required, the security hardening
/// mode) over `current`.
fn metadata_options(p: &Params, current: &Value) -> Result<Value, ApiError> {
    let mut o = current.clone();
    for (name, allowed) in [("HttpEndpoint", ["enabled", "disabled"]), ("HttpTokens", ["optional", "required"])] {
        if let Some(v) = p.get(name).filter(|v| !v.is_empty()) {
            if !allowed.contains(&v) {
                return Err(ApiError::invalid(name, format!("{} or {}", allowed[0], allowed[1])));
            }
            o[name] = json!(v);
        }
    }
    Ok(o)
}

/// ModifyInstanceMetadataOptions: whether the instance may reach the metadata service, and
/// whether it must use the hardened (token) mode.
pub async fn modify_metadata_options(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let id = p.require("InstanceId")?;
    for _ in 0..5 {
        let mut i = load(ctx, id).await?;
        let current = match i.spec["MetadataOptions"].is_object() {
            true => i.spec["MetadataOptions"].clone(),
            false => json!({"HttpEndpoint": "enabled", "HttpTokens": "optional"}),
        };
        i.spec["MetadataOptions"] = metadata_options(p, &current)?;
        match ctx.store.update_resource(&i).await {
            Ok(_) => return Ok(json!({})),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(409, "OperationConflict", format!("Instance {id} is changing; retry.")))
}

/// The per-account instance quota and the host's memory, with `adding` MiB in `count` new
/// instances on top of what exists (0 and 0 once the new rows are in).
async fn check_limits(ecs: &Ecs, ctx: &CallContext, adding: u64, count: usize) -> Result<(), ApiError> {
    let existing = ctx.store.all_resources(&ctx.caller.account_id, KIND).await?.len();
    if existing + count > MAX_INSTANCES {
        return Err(ApiError::new(
            400,
            "QuotaExceed.Instance",
            format!("An account may have at most {MAX_INSTANCES} instances; it has {existing}."),
        ));
    }
    // The host's memory: every instance (of any account, Stopped too) holds its type's memory,
    // so a Start never fails for want of it.
    if let Some(capacity) = ecs.memory_capacity_mib {
        let used: u64 = ctx
            .store
            .all_resources_all_accounts(KIND)
            .await?
            .iter()
            .map(|i| i.spec["Memory"].as_u64().unwrap_or(0))
            .sum();
        if used + adding > capacity {
            return Err(ApiError::new(
                403,
                "OperationDenied.NoStock",
                format!(
                    "The requested resource is sold out in this zone: {} MiB asked, {} of {capacity} MiB free.",
                    if adding > 0 { adding } else { used.saturating_sub(capacity) },
                    capacity.saturating_sub(used)
                ),
            ));
        }
    }
    Ok(())
}

/// Undoes the rows (and address claims) a failed RunInstances made, so it leaves nothing behind.
async fn roll_back(ctx: &CallContext, made: Vec<Resource>, e: ApiError) -> ApiError {
    for r in made {
        let _ = ctx.store.delete_resource(&ctx.caller.account_id, &r.id, r.version).await;
        release_ip(&ctx.store, &ctx.caller.account_id, &r.spec).await;
    }
    e
}
