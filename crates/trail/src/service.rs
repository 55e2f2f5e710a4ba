//! The ActionTrail API, version 2020-07-06: `LookupEvents`, scoped to the caller's account.

use nimbus_api::{Access, ActionSpec, ApiError, BoxFut, CallContext, Params, ResourceParam, Service};
use nimbus_core::clock::{iso8601, now_millis, parse_iso8601};
use nimbus_store::trail::TrailKey;
use serde_json::{Value, json};

pub struct ActionTrail;

const ACTIONS: &[ActionSpec] = &[
    ActionSpec { name: "LookupEvents", ram_action: "actiontrail:LookupEvents", access: Access::Read },
    ActionSpec { name: "CreateTrail", ram_action: "actiontrail:CreateTrail", access: Access::Write },
    ActionSpec { name: "DeleteTrail", ram_action: "actiontrail:DeleteTrail", access: Access::Write },
    ActionSpec { name: "DescribeTrails", ram_action: "actiontrail:DescribeTrails", access: Access::Read },
    ActionSpec { name: "StartLogging", ram_action: "actiontrail:StartLogging", access: Access::Write },
    ActionSpec { name: "StopLogging", ram_action: "actiontrail:StopLogging", access: Access::Write },
    ActionSpec { name: "GetTrailStatus", ram_action: "actiontrail:GetTrailStatus", access: Access::Read },
];

/// Kind of the trail resources (one per account and name).
pub const TRAIL_KIND: &str = "trail.trail";

fn trail_id(account: &str, name: &str) -> String {
    format!("trail:{account}:{name}")
}

/// The lookup attributes LookupEvents accepts.
fn key(name: &str) -> Option<TrailKey> {
    Some(match name {
        "EventName" => TrailKey::EventName,
        "ServiceName" => TrailKey::ServiceName,
        "EventRW" => TrailKey::EventRw,
        "EventAccessKeyId" => TrailKey::AccessKeyId,
        "User" => TrailKey::UserName,
        "EventId" => TrailKey::EventId,
        "ResourceName" => TrailKey::ResourceName,
        _ => return None,
    })
}

impl Service for ActionTrail {
    fn product(&self) -> &'static str {
        "Actiontrail"
    }
    fn code(&self) -> &'static str {
        "actiontrail"
    }
    fn version(&self) -> &'static str {
        "2020-07-06"
    }
    fn actions(&self) -> &'static [ActionSpec] {
        ACTIONS
    }
    fn resource_params(&self, _action: &ActionSpec) -> &'static [ResourceParam] {
        const NAME: &[ResourceParam] = &[ResourceParam::one("Name", "trail")];
        NAME
    }
    fn account_arn(&self, ctx: &CallContext) -> String {
        ctx.arn("actiontrail", "trail/*")
    }

    fn handle<'a>(
        &'a self,
        ctx: &'a CallContext,
        a: &'a ActionSpec,
        p: &'a Params,
    ) -> BoxFut<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            match a.name {
                "LookupEvents" => lookup(ctx, p).await,
                "CreateTrail" => create_trail(ctx, p).await,
                "DescribeTrails" => describe_trails(ctx).await,
                other => manage(ctx, p, other).await,
            }
        })
    }
}

async fn lookup(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let time = |name: &str| -> Result<Option<i64>, ApiError> {
        match p.get(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => parse_iso8601(v)
                .map(|t| Some(t.timestamp_millis()))
                .ok_or_else(|| ApiError::invalid(name, "expected yyyy-MM-ddTHH:mm:ssZ")),
        }
    };
    let (start, end) = match (time("StartTime")?, time("EndTime")?) {
        (Some(s), Some(e)) if s <= e => (s, e),
        (Some(_), Some(_)) => {
            return Err(ApiError::new(400, "InvalidParameter.TimeRange", "StartTime must not be after EndTime."));
        }
        (None, None) => (now_millis() - 7 * 86_400_000, now_millis()),
        _ => {
            return Err(ApiError::new(
                400,
                "InvalidParameter.TimeRange",
                "Give both StartTime and EndTime, or neither.",
            ));
        }
    };
    let mut filters = vec![];
    for i in 1..=10 {
        let (k, v) = (p.get(&format!("LookupAttribute.{i}.Key")), p.get(&format!("LookupAttribute.{i}.Value")));
        let Some(k) = k else { break };
        let key = key(k).ok_or_else(|| ApiError::new(400, "InvalidParameter.LookupAttribute", format!("Unknown lookup attribute {k:?}: use EventName, ServiceName, EventRW, EventAccessKeyId, User, EventId or ResourceName.")))?;
        filters.push((key, v.unwrap_or_default().to_string()));
    }
    let limit = p.int("MaxResults", 1, 50)?.unwrap_or(20);
    let forward = match p.get("Direction").unwrap_or("BACKWARD") {
        "FORWARD" => true,
        "BACKWARD" | "" => false,
        _ => return Err(ApiError::invalid("Direction", "FORWARD or BACKWARD")),
    };
    let cursor = match p.get("NextToken").filter(|t| !t.is_empty()) {
        Some(t) => Some(t.parse::<i64>().map_err(|_| ApiError::invalid("NextToken", "not a token this API returned"))?),
        None => None,
    };
    let rows = ctx.store.lookup_trail(&ctx.caller.account_id, start, end, &filters, cursor, forward, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    let rows = &rows[..rows.len().min(limit as usize)];
    let events: Vec<Value> = rows.iter().filter_map(|r| serde_json::from_str(&r.body).ok()).collect();
    let mut v = json!({"Events": events, "StartTime": iso8601(start), "EndTime": iso8601(end)});
    if more && let Some(last) = rows.last() {
        v["NextToken"] = Value::from(last.seq.to_string());
    }
    Ok(v)
}

async fn create_trail(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let name = p.require("Name")?;
    let ok = (6..=36).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        return Err(ApiError::new(
            400,
            "InvalidTrailNameException",
            "Name must be 6 to 36 lowercase letters, digits, '-' or '_', starting with a letter.",
        ));
    }
    let rw = p.get("EventRW").filter(|v| !v.is_empty()).unwrap_or("All");
    if !["All", "Read", "Write"].contains(&rw) {
        return Err(ApiError::invalid("EventRW", "All, Read or Write"));
    }
    let acct = &ctx.caller.account_id;
    let now = iso8601(now_millis());
    let spec = json!({
        "Name": name, "HomeRegion": ctx.region.id, "TrailRegion": "All", "EventRW": rw,
        "OssBucketName": p.get("OssBucketName").unwrap_or_default(), "OssKeyPrefix": p.get("OssKeyPrefix").unwrap_or_default(),
        "SlsProjectArn": "", "SlsWriteRoleArn": "", "OssWriteRoleArn": "",
        "Status": "Disable", "CreateTime": now, "UpdateTime": now, "StartLoggingTime": "", "StopLoggingTime": "",
        "TrailArn": ctx.arn("actiontrail", &format!("trail/{name}")), "IsOrganizationTrail": false,
        "LatestDeliveryTime": "", "LatestDeliveryError": "", "DeliveredSeq": 0, "PreviousDigestSha256": "",
    });
    let r = nimbus_store::Resource::new(&trail_id(acct, name), acct, TRAIL_KIND, &ctx.region.id, spec);
    match ctx.store.create_resource(&r).await {
        Ok(r) => {
            let mut v = r.spec.clone();
            for internal in [
                "Status",
                "DeliveredSeq",
                "PreviousDigestSha256",
                "LatestDeliveryTime",
                "LatestDeliveryError",
                "StartLoggingTime",
                "StopLoggingTime",
                "CreateTime",
                "UpdateTime",
                "TrailArn",
                "IsOrganizationTrail",
            ] {
                v.as_object_mut().map(|m| m.remove(internal));
            }
            Ok(v)
        }
        Err(nimbus_store::StoreError::AlreadyExists) => {
            Err(ApiError::new(400, "TrailAlreadyExistsException", format!("The trail {name} already exists.")))
        }
        Err(e) => Err(e.into()),
    }
}

async fn describe_trails(ctx: &CallContext) -> Result<Value, ApiError> {
    let rows = ctx.store.list_resources(&ctx.caller.account_id, TRAIL_KIND, None, 1000).await?;
    let list: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let mut v = r.spec;
            if let Some(m) = v.as_object_mut() {
                m.remove("DeliveredSeq");
                m.remove("PreviousDigestSha256");
            }
            v
        })
        .collect();
    Ok(json!({"TrailList": list}))
}

/// DeleteTrail, StartLogging, StopLogging, GetTrailStatus: the named trail of the caller's account.
async fn manage(ctx: &CallContext, p: &Params, action: &str) -> Result<Value, ApiError> {
    let name = p.require("Name")?;
    let acct = &ctx.caller.account_id;
    let mut t = match ctx.store.get_resource(acct, &trail_id(acct, name)).await {
        Ok(t) => t,
        Err(nimbus_store::StoreError::NotFound) => {
            return Err(ApiError::new(404, "TrailNotFoundException", format!("The trail {name} does not exist.")));
        }
        Err(e) => return Err(e.into()),
    };
    let now = iso8601(now_millis());
    match action {
        "DeleteTrail" => {
            ctx.store.delete_resource(acct, &t.id, t.version).await?;
            Ok(json!({}))
        }
        "StartLogging" => {
            if t.spec["Status"] != "Enable" {
                // Deliver what happens from now on.
                let (head, _) = ctx.store.trail_head().await?;
                t.spec["Status"] = Value::from("Enable");
                t.spec["StartLoggingTime"] = Value::from(now);
                t.spec["DeliveredSeq"] = Value::from(head);
                ctx.store.update_resource(&t).await?;
            }
            Ok(json!({}))
        }
        "StopLogging" => {
            t.spec["Status"] = Value::from("Disable");
            t.spec["StopLoggingTime"] = Value::from(now);
            ctx.store.update_resource(&t).await?;
            Ok(json!({}))
        }
        _ => Ok(json!({
            "IsLogging": t.spec["Status"] == "Enable",
            "StartLoggingTime": t.spec["StartLoggingTime"], "StopLoggingTime": t.spec["StopLoggingTime"],
            "LatestDeliveryTime": t.spec["LatestDeliveryTime"], "LatestDeliveryError": t.spec["LatestDeliveryError"],
        })),
    }
}
