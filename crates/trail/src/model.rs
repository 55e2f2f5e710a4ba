//! The trail configuration row (`trail.trail`, id `trail:<account>:<name>`) as typed state. Its
//! JSON is flat, as before: the settings CreateTrail answers with, then the logging state
//! DescribeTrails adds, then the delivery cursor only the region sees.

use nimbus_store::{Kind, NoStatus, Record};
use serde::{Deserialize, Serialize};

pub struct TrailKind;

impl Kind for TrailKind {
    const KIND: &'static str = "trail.trail";
    type Spec = TrailSpec;
    type Status = NoStatus;
}

pub type TrailRecord = Record<TrailKind>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrailSpec {
    #[serde(flatten)]
    pub settings: TrailSettings,
    #[serde(flatten)]
    pub logging: TrailLogging,
    /// The last event sequence delivered to the trail's folder.
    #[serde(rename = "DeliveredSeq", default)]
    pub delivered_seq: i64,
    /// SHA-256 of the last signed digest file delivered (the digest chain).
    #[serde(rename = "PreviousDigestSha256", default)]
    pub previous_digest_sha256: String,
}

/// What CreateTrail answers with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TrailSettings {
    pub name: String,
    pub home_region: String,
    pub trail_region: String,
    /// `All`, `Read` or `Write`.
    #[serde(rename = "EventRW")]
    pub event_rw: String,
    #[serde(default)]
    pub oss_bucket_name: String,
    #[serde(default)]
    pub oss_key_prefix: String,
    #[serde(default)]
    pub sls_project_arn: String,
    #[serde(default)]
    pub sls_write_role_arn: String,
    #[serde(default)]
    pub oss_write_role_arn: String,
}

/// What DescribeTrails adds to the settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TrailLogging {
    pub status: Logging,
    pub create_time: String,
    pub update_time: String,
    #[serde(default)]
    pub start_logging_time: String,
    #[serde(default)]
    pub stop_logging_time: String,
    pub trail_arn: String,
    #[serde(default)]
    pub is_organization_trail: bool,
    #[serde(default)]
    pub latest_delivery_time: String,
    #[serde(default)]
    pub latest_delivery_error: String,
}

/// `Status`: ActionTrail's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Logging {
    Enable,
    Disable,
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_store::Resource;
    use serde_json::json;

    /// A trail as `create_trail` wrote it before typed state, after a delivery: loads, and
    /// stores back as the same JSON in the same order.
    #[test]
    fn a_trail_row_written_by_the_json_code_loads_and_round_trips() {
        let spec = json!({
            "Name": "my-trail", "HomeRegion": "local-1", "TrailRegion": "All", "EventRW": "Write",
            "OssBucketName": "", "OssKeyPrefix": "", "SlsProjectArn": "", "SlsWriteRoleArn": "", "OssWriteRoleArn": "",
            "Status": "Enable", "CreateTime": "2026-01-01T00:00:00Z", "UpdateTime": "2026-01-01T00:00:00Z",
            "StartLoggingTime": "2026-01-01T00:00:01Z", "StopLoggingTime": "",
            "TrailArn": "acs:actiontrail:local-1:1000:trail/my-trail", "IsOrganizationTrail": false,
            "LatestDeliveryTime": "2026-01-01T00:00:05Z", "LatestDeliveryError": "", "DeliveredSeq": 42, "PreviousDigestSha256": "ab",
        });
        let r = Resource::new("trail:1000:my-trail", "1000", "trail.trail", "local-1", spec.clone());
        let t = TrailRecord::from_resource(r).expect("loads");
        assert_eq!((t.spec.logging.status, t.spec.delivered_seq), (Logging::Enable, 42));
        assert_eq!(t.spec.settings.event_rw, "Write");
        let back = t.to_resource().expect("stores").spec;
        assert_eq!(back, spec);
        let order = |v: &serde_json::Value| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>());
        assert_eq!(order(&back), order(&spec), "DescribeTrails lists the fields in this order");
    }
}
