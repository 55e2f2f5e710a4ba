//! The ActionTrail API, version 2020-07-06: `LookupEvents`, scoped to the caller's account.

use crate::model::{Logging, TrailKind, TrailLogging, TrailSettings, TrailSpec};
use nimbus_api::{Access, ActionSpec, ApiError, BoxFut, CallContext, Params, ResourceParam, Service};
use nimbus_core::clock::{iso8601, now_millis, parse_iso8601};
use nimbus_store::trail::TrailKey;
use nimbus_store::{Kind, Record, StoreError};
use serde::Serialize;
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

/// Kind of the trail resources (one per account and name); the schema is [`TrailKind`]'s.
pub const TRAIL_KIND: &str = TrailKind::KIND;

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
    let spec = TrailSpec {
        settings: TrailSettings {
            name: name.into(),
            home_region: ctx.region.id.clone(),
            trail_region: "All".into(),
            event_rw: rw.into(),
            oss_bucket_name: p.get("OssBucketName").unwrap_or_default().into(),
            oss_key_prefix: p.get("OssKeyPrefix").unwrap_or_default().into(),
            sls_project_arn: String::new(),
            sls_write_role_arn: String::new(),
            oss_write_role_arn: String::new(),
        },
        logging: TrailLogging {
            status: Logging::Disable,
            create_time: now.clone(),
            update_time: now,
            start_logging_time: String::new(),
            stop_logging_time: String::new(),
            trail_arn: ctx.arn("actiontrail", &format!("trail/{name}")),
            is_organization_trail: false,
            latest_delivery_time: String::new(),
            latest_delivery_error: String::new(),
        },
        delivered_seq: 0,
        previous_digest_sha256: String::new(),
    };
    match ctx.store.repo::<TrailKind>().create(&Record::new(trail_id(acct, name), acct, &ctx.region.id, spec)).await {
        Ok(r) => Ok(json!(r.spec.settings)),
        Err(StoreError::AlreadyExists) => {
            Err(ApiError::new(400, "TrailAlreadyExistsException", format!("The trail {name} already exists.")))
        }
        Err(e) => Err(e.into()),
    }
}

/// A trail as DescribeTrails shows it: everything but the delivery cursor.
#[derive(Serialize)]
struct Described<'a> {
    #[serde(flatten)]
    settings: &'a TrailSettings,
    #[serde(flatten)]
    logging: &'a TrailLogging,
}

async fn describe_trails(ctx: &CallContext) -> Result<Value, ApiError> {
    let rows = ctx.store.repo::<TrailKind>().page_after(&ctx.caller.account_id, None, 1000).await?;
    let list: Vec<Described> =
        rows.iter().map(|r| Described { settings: &r.spec.settings, logging: &r.spec.logging }).collect();
    Ok(json!({"TrailList": list}))
}

/// DeleteTrail, StartLogging, StopLogging, GetTrailStatus: the named trail of the caller's account.
async fn manage(ctx: &CallContext, p: &Params, action: &str) -> Result<Value, ApiError> {
    let name = p.require("Name")?;
    let acct = &ctx.caller.account_id;
    let id = trail_id(acct, name);
    let trails = ctx.store.repo::<TrailKind>();
    let missing = || ApiError::new(404, "TrailNotFoundException", format!("The trail {name} does not exist."));
    let Some(t) = trails.find(acct, &id).await? else {
        return Err(missing());
    };
    let now = iso8601(now_millis());
    let changed = match action {
        "DeleteTrail" => trails.delete(acct, &id).await.map(|_| ()),
        "StartLogging" => {
            if t.spec.logging.status == Logging::Enable {
                Ok(())
            } else {
                // Deliver what happens from now on.
                let (head, _) = ctx.store.trail_head().await?;
                trails
                    .update_with(acct, &id, |t| {
                        if t.spec.logging.status != Logging::Enable {
                            t.spec.logging.status = Logging::Enable;
                            t.spec.logging.start_logging_time = now.clone();
                            t.spec.delivered_seq = head;
                        }
                        Ok(())
                    })
                    .await
                    .map(|_| ())
            }
        }
        "StopLogging" => trails
            .update_with(acct, &id, |t| {
                t.spec.logging.status = Logging::Disable;
                t.spec.logging.stop_logging_time = now.clone();
                Ok(())
            })
            .await
            .map(|_| ()),
        _ => {
            let l = &t.spec.logging;
            return Ok(json!({
                "IsLogging": l.status == Logging::Enable,
                "StartLoggingTime": l.start_logging_time, "StopLoggingTime": l.stop_logging_time,
                "LatestDeliveryTime": l.latest_delivery_time, "LatestDeliveryError": l.latest_delivery_error,
            }));
        }
    };
    match changed {
        Ok(()) => Ok(json!({})),
        Err(StoreError::NotFound) => Err(missing()),
        Err(e) => Err(e.into()),
    }
}
