//! The ActionTrail API, version 2020-07-06: `LookupEvents`, scoped to the caller's account.

use nimbus_api::{Access, ActionSpec, ApiError, BoxFut, CallContext, Params, Service};
use nimbus_core::clock::{iso8601, now_millis, parse_iso8601};
use nimbus_store::trail::TrailKey;
use serde_json::{Value, json};

pub struct ActionTrail;

const ACTIONS: &[ActionSpec] =
    &[ActionSpec { name: "LookupEvents", ram_action: "actiontrail:LookupEvents", access: Access::Read }];

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
    fn handle<'a>(
        &'a self,
        ctx: &'a CallContext,
        _a: &'a ActionSpec,
        p: &'a Params,
    ) -> BoxFut<'a, Result<Value, ApiError>> {
        Box::pin(lookup(ctx, p))
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
