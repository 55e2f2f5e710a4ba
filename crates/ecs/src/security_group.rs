//! Security groups (ECS 2014-05-26): groups of a VPC and their ingress/egress rules. The rules are
//! kept in the group's resource; the VPC data plane turns them into nftables rules per instance
//! port (`nimbus_host::net::security_script`) once instances join groups.

use nimbus_api::conventions::Page;
use nimbus_api::{ApiError, CallContext, Params};
use nimbus_core::clock::{iso8601, now_millis};
use nimbus_core::ids;
use nimbus_store::{Resource, StoreError};
use serde_json::{Value, json};

pub const KIND: &str = "ecs.securitygroup";
const MAX_GROUPS: usize = 100;
const MAX_RULES: usize = 200;

fn not_found(id: &str) -> ApiError {
    ApiError::new(404, "InvalidSecurityGroupId.NotFound", format!("Specified security group {id:?} does not exist."))
}

async fn load(ctx: &CallContext, id: &str) -> Result<Resource, ApiError> {
    match ctx.store.get_resource(&ctx.caller.account_id, id).await {
        Ok(r) if r.kind == KIND => Ok(r),
        Ok(_) | Err(StoreError::NotFound) => Err(not_found(id)),
        Err(e) => Err(e.into()),
    }
}

async fn all(ctx: &CallContext) -> Result<Vec<Resource>, ApiError> {
    Ok(ctx.store.all_resources(&ctx.caller.account_id, KIND).await?)
}

pub async fn create(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let vpc = p.get("VpcId").filter(|v| !v.is_empty()).ok_or_else(|| ApiError::missing("VpcId"))?;
    match ctx.store.get_resource(&ctx.caller.account_id, vpc).await {
        Ok(r) if r.kind == "vpc.vpc" => {}
        Ok(_) | Err(StoreError::NotFound) => {
            return Err(ApiError::new(404, "InvalidVpcId.NotFound", format!("Specified VPC {vpc:?} does not exist.")));
        }
        Err(e) => return Err(e.into()),
    }
    let name = p.get("SecurityGroupName").unwrap_or_default();
    if name.chars().count() > 128 || name.starts_with("http://") || name.starts_with("https://") {
        return Err(ApiError::invalid("SecurityGroupName", "at most 128 characters, not starting with http(s)://"));
    }
    let kind = p.get("SecurityGroupType").filter(|t| !t.is_empty()).unwrap_or("normal");
    if kind != "normal" && kind != "enterprise" {
        return Err(ApiError::invalid("SecurityGroupType", "normal or enterprise"));
    }
    if all(ctx).await?.len() >= MAX_GROUPS {
        return Err(ApiError::new(
            400,
            "QuotaExceed.SecurityGroup",
            format!("An account may have at most {MAX_GROUPS} security groups."),
        ));
    }
    let id = ids::resource_id("sg-");
    let spec = json!({
        "SecurityGroupName": name, "Description": p.get("Description").unwrap_or_default(), "VpcId": vpc,
        "SecurityGroupType": kind, "CreationTime": iso8601(now_millis()), "Permissions": [],
    });
    ctx.store.create_resource(&Resource::new(&id, &ctx.caller.account_id, KIND, &ctx.region.id, spec)).await?;
    Ok(json!({"SecurityGroupId": id}))
}

pub async fn describe(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let page = Page::from_params(p, 10, 50)?;
    let mut ids: Vec<String> = vec![];
    if let Some(list) = p.get("SecurityGroupIds").filter(|v| !v.is_empty()) {
        ids = serde_json::from_str(list).map_err(|_| ApiError::invalid("SecurityGroupIds", "a JSON array of ids"))?;
    }
    if let Some(id) = p.get("SecurityGroupId").filter(|v| !v.is_empty()) {
        ids.push(id.to_string());
    }
    let vpc = p.get("VpcId").filter(|v| !v.is_empty());
    let name = p.get("SecurityGroupName").filter(|v| !v.is_empty());
    let groups: Vec<Resource> = all(ctx)
        .await?
        .into_iter()
        .filter(|g| ids.is_empty() || ids.contains(&g.id))
        .filter(|g| vpc.is_none_or(|v| g.spec["VpcId"] == v))
        .filter(|g| name.is_none_or(|n| g.spec["SecurityGroupName"] == n))
        .collect();
    let all: Vec<Value> = groups
        .iter()
        .map(|g| {
            json!({
                "SecurityGroupId": g.id, "SecurityGroupName": g.spec["SecurityGroupName"],
                "Description": g.spec["Description"], "VpcId": g.spec["VpcId"],
                "SecurityGroupType": g.spec["SecurityGroupType"], "CreationTime": g.spec["CreationTime"],
                "EcsCount": 0, "ResourceGroupId": "", "Tags": {"Tag": []},
            })
        })
        .collect();
    let mut answer = page.answer(&all, "SecurityGroups", "SecurityGroup");
    answer["RegionId"] = Value::from(ctx.region.id.clone());
    Ok(answer)
}

pub async fn attribute(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let g = load(ctx, p.require("SecurityGroupId")?).await?;
    let direction = p.get("Direction").filter(|d| !d.is_empty()).unwrap_or("all");
    if !["ingress", "egress", "all"].contains(&direction) {
        return Err(ApiError::invalid("Direction", "ingress, egress or all"));
    }
    let rules: Vec<Value> = g.spec["Permissions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| direction == "all" || r["Direction"] == direction)
        .cloned()
        .collect();
    Ok(json!({
        "SecurityGroupId": g.id, "SecurityGroupName": g.spec["SecurityGroupName"], "Description": g.spec["Description"],
        "VpcId": g.spec["VpcId"], "RegionId": ctx.region.id, "InnerAccessPolicy": "Accept",
        "Permissions": {"Permission": rules},
    }))
}

/// The rules a request names: `Permissions.N.*`, or the legacy flat parameters.
fn requested_rules(p: &Params, ingress: bool) -> Result<Vec<Value>, ApiError> {
    let mut indices: Vec<usize> = p
        .iter()
        .filter_map(|(k, _)| {
            k.strip_prefix("Permissions.").and_then(|r| r.split('.').next()).and_then(|n| n.parse().ok())
        })
        .collect();
    indices.sort_unstable();
    indices.dedup();
    let field =
        |prefix: &str, name: &str| p.get(&format!("{prefix}{name}")).filter(|v| !v.is_empty()).map(str::to_string);
    let prefixes: Vec<String> = if indices.is_empty() {
        vec![String::new()]
    } else {
        indices.iter().map(|i| format!("Permissions.{i}.")).collect()
    };
    let mut out = vec![];
    for pre in prefixes {
        let protocol = field(&pre, "IpProtocol").ok_or_else(|| ApiError::missing("IpProtocol"))?.to_ascii_lowercase();
        if !["tcp", "udp", "icmp", "gre", "all"].contains(&protocol.as_str()) {
            return Err(ApiError::new(
                400,
                "InvalidIpProtocol.Malformed",
                format!("IpProtocol {protocol:?} is not one of TCP, UDP, ICMP, GRE, ALL."),
            ));
        }
        let range = field(&pre, "PortRange").unwrap_or_else(|| "-1/-1".into());
        let bad_range = || {
            ApiError::new(
                400,
                "InvalidIpPortRange.Malformed",
                format!("PortRange {range:?}: TCP and UDP take start/end within 1-65535; other protocols take -1/-1."),
            )
        };
        let (a, b) = range.split_once('/').ok_or_else(bad_range)?;
        let (a, b): (i64, i64) = (a.parse().map_err(|_| bad_range())?, b.parse().map_err(|_| bad_range())?);
        match protocol.as_str() {
            "tcp" | "udp" if (1..=65535).contains(&a) && (a..=65535).contains(&b) => {}
            "tcp" | "udp" => return Err(bad_range()),
            _ if (a, b) == (-1, -1) => {}
            _ => return Err(bad_range()),
        }
        let policy = field(&pre, "Policy").unwrap_or_else(|| "accept".into()).to_ascii_lowercase();
        if policy != "accept" && policy != "drop" {
            return Err(ApiError::new(400, "InvalidPolicy.Malformed", "Policy must be accept or drop."));
        }
        let priority: i64 = match field(&pre, "Priority") {
            Some(v) => v.parse().ok().filter(|n| (1..=100).contains(n)).ok_or_else(|| {
                ApiError::new(400, "InvalidPriority.Malformed", "Priority must be an integer from 1 to 100.")
            })?,
            None => 1,
        };
        let (cidr_name, group_name) =
            if ingress { ("SourceCidrIp", "SourceGroupId") } else { ("DestCidrIp", "DestGroupId") };
        let cidr = field(&pre, cidr_name);
        let group = field(&pre, group_name);
        if let Some(c) = &cidr {
            let ok = c.parse::<ipnet::Ipv4Net>().is_ok() || c.parse::<std::net::Ipv4Addr>().is_ok();
            if !ok {
                return Err(ApiError::invalid(cidr_name, "an IPv4 address or CIDR block"));
            }
        }
        if cidr.is_none() && group.is_none() {
            return Err(ApiError::missing(cidr_name));
        }
        out.push(json!({
            "Direction": if ingress { "ingress" } else { "egress" },
            "IpProtocol": protocol.to_ascii_uppercase(), "PortRange": range, "Policy": policy, "Priority": priority.to_string(),
            "SourceCidrIp": if ingress { cidr.clone().unwrap_or_default() } else { String::new() },
            "DestCidrIp": if ingress { String::new() } else { cidr.clone().unwrap_or_default() },
            "SourceGroupId": if ingress { group.clone().unwrap_or_default() } else { String::new() },
            "DestGroupId": if ingress { String::new() } else { group.clone().unwrap_or_default() },
            "NicType": field(&pre, "NicType").unwrap_or_else(|| "intranet".into()),
            "Description": field(&pre, "Description").unwrap_or_default(),
        }));
    }
    Ok(out)
}

/// The fields that identify a rule (what Revoke matches on).
fn identity(r: &Value) -> [String; 7] {
    ["Direction", "IpProtocol", "PortRange", "Policy", "SourceCidrIp", "DestCidrIp", "SourceGroupId"]
        .map(|f| r[f].as_str().unwrap_or_default().to_ascii_lowercase())
}

async fn update(
    ctx: &CallContext,
    id: &str,
    f: impl Fn(&mut Vec<Value>) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    for _ in 0..5 {
        let mut g = load(ctx, id).await?;
        let mut rules: Vec<Value> = g.spec["Permissions"].as_array().cloned().unwrap_or_default();
        f(&mut rules)?;
        g.spec["Permissions"] = Value::Array(rules);
        match ctx.store.update_resource(&g).await {
            Ok(_) => {
                // The VPC's data plane recompiles its ports' rules.
                nimbus_vpc::reconcile_later(ctx, g.spec["VpcId"].as_str().unwrap_or_default()).await?;
                return Ok(());
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(409, "OperationConflict", "The security group is being changed by another request; retry."))
}

pub async fn authorize(ctx: &CallContext, p: &Params, ingress: bool) -> Result<Value, ApiError> {
    let id = p.require("SecurityGroupId")?;
    let wanted = requested_rules(p, ingress)?;
    // A group named as a peer must be one of the caller's.
    for r in &wanted {
        for f in ["SourceGroupId", "DestGroupId"] {
            if let Some(g) = r[f].as_str().filter(|g| !g.is_empty()) {
                load(ctx, g).await?;
            }
        }
    }
    update(ctx, id, |rules| {
        for w in &wanted {
            if rules.iter().any(|r| identity(r) == identity(w) && r["Priority"] == w["Priority"]) {
                return Err(ApiError::new(400, "InvalidPermission.Duplicate", "The specified rule already exists."));
            }
        }
        if rules.len() + wanted.len() > MAX_RULES {
            return Err(ApiError::new(
                400,
                "QuotaExceed.AuthorizationRule",
                format!("A security group holds at most {MAX_RULES} rules."),
            ));
        }
        for w in &wanted {
            let mut w = w.clone();
            w["SecurityGroupRuleId"] = json!(ids::resource_id("sgr-"));
            w["CreateTime"] = json!(iso8601(now_millis()));
            rules.push(w);
        }
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

pub async fn revoke(ctx: &CallContext, p: &Params, ingress: bool) -> Result<Value, ApiError> {
    let id = p.require("SecurityGroupId")?;
    let rule_ids: Vec<String> =
        p.iter().filter(|(k, _)| k.starts_with("SecurityGroupRuleId.")).map(|(_, v)| v.to_string()).collect();
    let wanted = if rule_ids.is_empty() { requested_rules(p, ingress)? } else { vec![] };
    let direction = if ingress { "ingress" } else { "egress" };
    update(ctx, id, |rules| {
        rules.retain(|r| {
            let by_id = rule_ids.iter().any(|i| r["SecurityGroupRuleId"] == i.as_str());
            let by_fields = r["Direction"] == direction && wanted.iter().any(|w| identity(w) == identity(r));
            !(by_id || by_fields)
        });
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

pub async fn delete(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let id = p.require("SecurityGroupId")?;
    let g = load(ctx, id).await?;
    if let Some(other) = all(ctx).await?.iter().find(|o| {
        o.id != id
            && o.spec["Permissions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["SourceGroupId"] == id || r["DestGroupId"] == id)
    }) {
        return Err(ApiError::new(
            403,
            "DependencyViolation",
            format!("Security group {id} is referenced by a rule of {}; revoke that rule first.", other.id),
        ));
    }
    ctx.store.delete_resource(&ctx.caller.account_id, id, g.version).await?;
    Ok(json!({}))
}
