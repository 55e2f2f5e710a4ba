//! The VPC rows' schema as typed state: VPCs (with their custom routes), vSwitches, EIPs and
//! the region-wide address claims, plus read-only views of the ECS rows VPC looks at. Field names
//! are the stored JSON's, so rows written before these types existed load unchanged.

use nimbus_store::{Kind, NoStatus, Record};
use serde::{Deserialize, Serialize};

/// A VPC (`vpc.vpc`).
pub struct VpcKind;

impl Kind for VpcKind {
    const KIND: &'static str = "vpc.vpc";
    const ID_PREFIX: &'static str = "vpc-";
    type Spec = VpcSpec;
    type Status = Phase;
}

pub type VpcRecord = Record<VpcKind>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VpcSpec {
    #[serde(default)]
    pub vpc_name: String,
    #[serde(default)]
    pub description: String,
    pub cidr_block: String,
    pub v_router_id: String,
    pub route_table_id: String,
    pub creation_time: String,
    /// The system route table's custom entries (absent until the first is created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_routes: Option<Vec<CustomRoute>>,
}

impl VpcSpec {
    pub fn routes(&self) -> &[CustomRoute] {
        self.custom_routes.as_deref().unwrap_or_default()
    }
}

/// A custom route entry: traffic for `DestinationCidrBlock` goes to instance `NextHopId`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomRoute {
    pub route_entry_id: String,
    pub destination_cidr_block: String,
    pub next_hop_id: String,
    #[serde(default)]
    pub route_entry_name: String,
}

/// A VPC's or vSwitch's status: `Pending` until the reconciler has made the host match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Phase {
    #[serde(default)]
    pub status: PhaseState,
}

impl Phase {
    pub const fn new(status: PhaseState) -> Self {
        Phase { status }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PhaseState {
    #[default]
    Pending,
    Available,
}

/// A vSwitch (`vpc.vswitch`).
pub struct VSwitchKind;

impl Kind for VSwitchKind {
    const KIND: &'static str = "vpc.vswitch";
    const ID_PREFIX: &'static str = "vsw-";
    type Spec = VSwitchSpec;
    type Status = Phase;
}

pub type VSwitchRecord = Record<VSwitchKind>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VSwitchSpec {
    pub vpc_id: String,
    pub zone_id: String,
    pub cidr_block: String,
    #[serde(default)]
    pub v_switch_name: String,
    #[serde(default)]
    pub description: String,
    pub creation_time: String,
}

impl VSwitchSpec {
    pub fn block(&self) -> Option<ipnet::Ipv4Net> {
        self.cidr_block.parse().ok()
    }
}

/// An elastic IP address (`vpc.eip`).
pub struct EipKind;

impl Kind for EipKind {
    const KIND: &'static str = "vpc.eip";
    const ID_PREFIX: &'static str = "eip-";
    type Spec = EipSpec;
    type Status = EipStatus;
}

pub type EipRecord = Record<EipKind>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EipSpec {
    pub ip_address: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Mbit/s, as the wire writes it (a string).
    pub bandwidth: String,
    pub internet_charge_type: String,
    pub allocation_time: String,
    /// The associated instance, or empty.
    #[serde(default)]
    pub instance_id: String,
    #[serde(default)]
    pub instance_type: String,
    /// Set by the first association (empty after unassociation); absent before, which
    /// DescribeEipAddresses shows as `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EipStatus {
    #[serde(default)]
    pub status: EipState,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EipState {
    #[default]
    Available,
    InUse,
}

impl EipState {
    pub fn as_str(self) -> &'static str {
        match self {
            EipState::Available => "Available",
            EipState::InUse => "InUse",
        }
    }
}

/// Claims one pool address region-wide (id `eip-address:<ip>`; resource ids are unique across
/// accounts) for an EIP or an instance's public IP.
pub struct AddressClaim;

impl Kind for AddressClaim {
    const KIND: &'static str = "vpc.eip-address";
    type Spec = ClaimSpec;
    type Status = NoStatus;
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClaimSpec {
    /// The holder: an EIP's AllocationId or an instance id.
    pub allocation_id: String,
}

/// What VPC reads of an ECS instance row (ECS owns the schema; read-only, never written back).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceView {
    #[serde(default)]
    pub vpc_id: String,
    #[serde(default)]
    pub private_ip_address: Option<String>,
    #[serde(default)]
    pub public_ip_address: Option<String>,
}

/// What VPC reads of an ECS security group row (read-only).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityGroupView {
    #[serde(default)]
    pub vpc_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_store::Resource;
    use serde_json::json;

    fn row(kind: &str, spec: serde_json::Value, status: serde_json::Value) -> Resource {
        let mut r = Resource::new("x-1", "1000", kind, "local-1", spec);
        r.status = status;
        r
    }

    /// Rows as the JSON code wrote them (a VPC after CreateRouteEntry, an associated EIP, a
    /// never-associated one) load, and store back as the same JSON.
    #[test]
    fn rows_written_by_the_json_code_load_and_round_trip() {
        let vpc = json!({
            "VpcName": "v", "Description": "", "CidrBlock": "172.16.0.0/12", "VRouterId": "vrt-1", "RouteTableId": "vtb-1",
            "CreationTime": "2026-01-01T00:00:00Z",
            "CustomRoutes": [{"RouteEntryId": "rte-1", "DestinationCidrBlock": "10.0.0.0/8", "NextHopId": "i-1", "RouteEntryName": ""}],
        });
        let v = VpcRecord::from_resource(row("vpc.vpc", vpc.clone(), json!({"Status": "Available"}))).expect("vpc");
        assert_eq!(v.status.status, PhaseState::Available);
        assert_eq!(v.spec.routes()[0].next_hop_id, "i-1");
        assert_eq!(v.to_resource().expect("json").spec, vpc);

        let vsw = json!({"VpcId": "vpc-1", "ZoneId": "local-1a", "CidrBlock": "172.16.1.0/24", "VSwitchName": "s",
                         "Description": "", "CreationTime": "2026-01-01T00:00:00Z"});
        let s =
            VSwitchRecord::from_resource(row("vpc.vswitch", vsw.clone(), json!({"Status": "Pending"}))).expect("vsw");
        assert_eq!(s.spec.block(), "172.16.1.0/24".parse().ok());
        assert_eq!(s.to_resource().expect("json").spec, vsw);

        let fresh = json!({"IpAddress": "100.64.0.2", "Name": "", "Description": "", "Bandwidth": "5",
                           "InternetChargeType": "PayByTraffic", "AllocationTime": "2026-01-01T00:00:00Z", "InstanceId": "", "InstanceType": ""});
        let e = EipRecord::from_resource(row("vpc.eip", fresh.clone(), json!({"Status": "Available"}))).expect("eip");
        assert_eq!(e.spec.private_ip_address, None);
        assert_eq!(e.to_resource().expect("json").spec, fresh, "absent fields stay absent");
        let mut bound = fresh.clone();
        bound["InstanceId"] = json!("i-1");
        bound["PrivateIpAddress"] = json!("172.16.1.2");
        bound["VpcId"] = json!("vpc-1");
        let e = EipRecord::from_resource(row("vpc.eip", bound.clone(), json!({"Status": "InUse"}))).expect("eip");
        assert_eq!((e.status.status, e.spec.vpc_id.as_deref()), (EipState::InUse, Some("vpc-1")));
        assert_eq!(e.to_resource().expect("json").spec, bound);
    }

    #[test]
    fn views_read_what_they_name_of_other_services_rows() {
        let i =
            row("ecs.instance", json!({"VpcId": "vpc-1", "PrivateIpAddress": "172.16.1.2", "Other": [1]}), json!({}));
        let v: InstanceView = i.spec_as().expect("view");
        assert_eq!((v.vpc_id.as_str(), v.public_ip_address), ("vpc-1", None));
    }
}
