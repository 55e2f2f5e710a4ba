//! Instance RAM roles (Attach/Detach/DescribeInstanceRamRole, and `RamRoleName` on RunInstances).
//! An instance holds at most one role (`spec.RamRoleName`, with an optional narrowing
//! `spec.RamRolePolicy`); the metadata service turns it into STS credentials for the guest. The
//! role itself is checked by [`nimbus_iam::instance_roles::ecs_role`]: it must exist and trust ECS.

use crate::instance::{self, KIND};
use nimbus_api::{ApiError, CallContext, Params};
use nimbus_store::StoreError;
use serde_json::{Value, json};

/// The role a RunInstances call names, checked; `None` when it names none.
pub async fn requested(ctx: &CallContext, p: &Params) -> Result<Option<String>, ApiError> {
    match p.get("RamRoleName").filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(name) => {
            let role = nimbus_iam::instance_roles::ecs_role(&ctx.store, &ctx.caller.account_id, name).await?;
            Ok(Some(role.spec["RoleName"].as_str().unwrap_or(name).to_string()))
        }
    }
}

fn instance_ids(p: &Params) -> Result<Vec<String>, ApiError> {
    let raw = p.require("InstanceIds")?;
    let ids: Vec<String> = serde_json::from_str(raw).map_err(|_| {
        ApiError::new(400, "InvalidInstanceIds.Malformed", "InstanceIds must be a JSON array of 1 to 100 instance ids.")
    })?;
    if ids.is_empty() || ids.len() > 100 {
        return Err(ApiError::new(400, "InvalidInstanceIds.Malformed", "InstanceIds must name 1 to 100 instances."));
    }
    Ok(ids)
}

fn outcome(id: &str, r: Result<Option<String>, ApiError>) -> (bool, Value) {
    match r {
        Ok(role) => (
            true,
            json!({"InstanceId": id, "Code": "200", "Message": "Success", "Success": true,
                   "InstanceRamRoleSets": {"InstanceRamRoleSet": role.map(|n| vec![json!({"InstanceId": id, "RamRoleName": n})]).unwrap_or_default()}}),
        ),
        Err(e) => (false, json!({"InstanceId": id, "Code": e.code, "Message": e.message, "Success": false})),
    }
}

/// Sets or clears an instance's role, retrying a concurrent update.
async fn set_role(
    ctx: &CallContext,
    id: &str,
    role: Option<&str>,
    policy: Option<&str>,
    expect: Option<&str>,
) -> Result<Option<String>, ApiError> {
    for _ in 0..5 {
        let mut i = instance::load(ctx, id).await?;
        let current = i.spec["RamRoleName"].as_str().filter(|r| !r.is_empty()).map(str::to_string);
        match (role, &current) {
            (Some(new), Some(have)) if have.eq_ignore_ascii_case(new) => return Ok(current), // a retry
            (Some(_), Some(have)) => {
                return Err(ApiError::new(
                    403,
                    "InvalidInstance.RamRoleAttached",
                    format!("Instance {id} already has the RAM role {have}; detach it first."),
                ));
            }
            (None, None) => return Ok(None),
            (None, Some(have)) if expect.is_some_and(|e| !e.eq_ignore_ascii_case(have)) => {
                return Err(ApiError::new(
                    400,
                    "InvalidRamRole.NotEqual",
                    format!("Instance {id} has the RAM role {have}, not {}.", expect.unwrap_or_default()),
                ));
            }
            _ => {}
        }
        i.spec["RamRoleName"] = json!(role.unwrap_or_default());
        i.spec["RamRolePolicy"] = json!(policy.unwrap_or_default());
        match ctx.store.update_resource(&i).await {
            Ok(_) => return Ok(role.map(str::to_string).or(current)),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(409, "OperationConflict", format!("Instance {id} is changing; retry.")))
}

pub async fn attach(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let name = p.require("RamRoleName")?;
    let policy = p.get("Policy").filter(|d| !d.is_empty());
    if let Some(doc) = policy {
        nimbus_iam::instance_roles::check_session_policy(doc)?;
    }
    let ids = instance_ids(p)?;
    let role = nimbus_iam::instance_roles::ecs_role(&ctx.store, &ctx.caller.account_id, name).await?;
    let name = role.spec["RoleName"].as_str().unwrap_or(name).to_string();
    let mut results = vec![];
    let mut failed = 0;
    for id in &ids {
        let (ok, v) = outcome(id, set_role(ctx, id, Some(&name), policy, None).await);
        failed += usize::from(!ok);
        results.push(v);
    }
    Ok(json!({"RamRoleName": name, "TotalCount": ids.len(), "FailCount": failed,
              "AttachInstanceRamRoleResults": {"AttachInstanceRamRoleResult": results}}))
}

pub async fn detach(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let name = p.get("RamRoleName").filter(|r| !r.is_empty());
    let ids = instance_ids(p)?;
    let mut results = vec![];
    let mut failed = 0;
    for id in &ids {
        let (ok, v) = outcome(id, set_role(ctx, id, None, None, name).await);
        failed += usize::from(!ok);
        results.push(v);
    }
    Ok(json!({"RamRoleName": name.unwrap_or_default(), "TotalCount": ids.len(), "FailCount": failed,
              "DetachInstanceRamRoleResults": {"DetachInstanceRamRoleResult": results}}))
}

pub async fn describe(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let ids = p.get("InstanceIds").filter(|v| !v.is_empty()).map(|_| instance_ids(p)).transpose()?;
    let name = p.get("RamRoleName").filter(|r| !r.is_empty());
    if ids.is_none() && name.is_none() {
        return Err(ApiError::missing("InstanceIds"));
    }
    let page = p.int("PageNumber", 1, i64::MAX)?.unwrap_or(1) as usize;
    let size = p.int("PageSize", 1, 50)?.unwrap_or(10) as usize;
    let mut sets = vec![];
    for i in ctx.store.all_resources(&ctx.caller.account_id, KIND).await? {
        let role = i.spec["RamRoleName"].as_str().unwrap_or_default();
        if role.is_empty()
            || ids.as_ref().is_some_and(|ids| !ids.contains(&i.id))
            || name.is_some_and(|n| !n.eq_ignore_ascii_case(role))
        {
            continue;
        }
        sets.push(json!({"InstanceId": i.id, "RamRoleName": role}));
    }
    let total = sets.len();
    let sets: Vec<Value> = sets.into_iter().skip((page - 1) * size).take(size).collect();
    Ok(json!({"RegionId": ctx.region.id, "TotalCount": total,
              "InstanceRamRoleSets": {"InstanceRamRoleSet": sets}}))
}
