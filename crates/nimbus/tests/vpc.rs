//! The VPC data plane converges from whatever the host and a crash left: a namespace removed by
//! hand comes back, a namespace no VPC owns goes, a VPC created just before `kill -9` ends up
//! Available with its namespace; and tenants never see each other's networks.

mod common;

use common::Region;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

const VPC: &str = "2016-04-28";

fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).chain([("RegionId".into(), "local-1".into())]).collect()
}

fn namespaces(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().expect("ip netns");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{prefix}-vpc-")))
        .map(str::to_string)
        .collect()
}

fn bridge_addrs(ns: &str) -> String {
    let out = Command::new("ip").args(["-n", ns, "-br", "addr", "show", "type", "bridge"]).output().expect("ip addr");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn status(r: &Region, id: &str) -> String {
    let v = r.client_http().call(VPC, "DescribeVpcs", &p(&[("VpcId", id)])).expect("describe").body;
    v["Vpcs"]["Vpc"][0]["Status"].as_str().unwrap_or_default().to_string()
}

#[test]
fn the_host_converges_to_the_store_after_restarts_and_crashes() {
    let prefix = format!("rt{}", std::process::id() % 100_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let args = ["--net-prefix", prefix.as_str()];
    let r = Region::start(&dir, &args);
    let c = r.client_http();
    let vpc = c.call(VPC, "CreateVpc", &p(&[("CidrBlock", "198.18.0.0/20")])).expect("create").body["VpcId"]
        .as_str()
        .expect("id")
        .to_string();
    c.call(VPC, "CreateVSwitch", &p(&[("VpcId", &vpc), ("ZoneId", "local-1a"), ("CidrBlock", "198.18.4.0/24")]))
        .expect("vswitch");
    let ns = format!("{prefix}-vpc-{}", &vpc[vpc.len() - 12..]);
    eventually("the namespace and its bridge", || bridge_addrs(&ns).contains("198.18.4.1/24"));
    r.stop();

    // By hand: the VPC's namespace is deleted and a stray one appears.
    assert!(Command::new("ip").args(["netns", "del", &ns]).status().expect("del").success());
    let stray = format!("{prefix}-vpc-stray0000000");
    assert!(Command::new("ip").args(["netns", "add", &stray]).status().expect("add").success());
    let r = Region::start(&dir, &args);
    eventually("the namespace is back with its bridge", || bridge_addrs(&ns).contains("198.18.4.1/24"));
    assert!(!namespaces(&prefix).contains(&stray), "a namespace no VPC owns is removed at start");

    // A VPC created just before a crash converges after the restart.
    let second =
        r.client_http().call(VPC, "CreateVpc", &p(&[("CidrBlock", "198.19.0.0/16")])).expect("create").body["VpcId"]
            .as_str()
            .expect("id")
            .to_string();
    r.kill9();
    let r = Region::start(&dir, &args);
    eventually("the second VPC is Available", || status(&r, &second) == "Available");
    assert!(namespaces(&prefix).contains(&format!("{prefix}-vpc-{}", &second[second.len() - 12..])));

    // Clean up: everything this test made on the host goes with its VPCs.
    let c = r.client_http();
    let vsw: Value = c.call(VPC, "DescribeVSwitches", &p(&[("VpcId", &vpc)])).expect("list").body;
    for s in vsw["VSwitches"]["VSwitch"].as_array().expect("list") {
        c.call(VPC, "DeleteVSwitch", &p(&[("VSwitchId", s["VSwitchId"].as_str().expect("id"))])).expect("delete");
    }
    for v in [&vpc, &second] {
        assert_eq!(c.call(VPC, "DeleteVpc", &p(&[("VpcId", v)])).expect("delete").status, 200);
    }
    eventually("no namespace left", || namespaces(&prefix).is_empty());
    r.stop();
}

#[test]
fn tenants_never_see_each_others_networks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let prefix = format!("ti{}", std::process::id() % 100_000);
    let r = Region::start(&dir, &["--net-prefix", prefix.as_str()]);
    let a = r.client_http();
    let vpc = a.call(VPC, "CreateVpc", &p(&[("CidrBlock", "198.18.0.0/24")])).expect("create").body["VpcId"]
        .as_str()
        .expect("id")
        .to_string();
    let out = Command::new(common::bin())
        .args(["admin", "account", "create", "--name", "other", "--data-dir"])
        .arg(&dir)
        .output()
        .expect("admin");
    let other: Value = serde_json::from_slice(&out.stdout).expect("json");
    let b = r.client_with(other["AccessKeyId"].as_str().expect("ak"), other["AccessKeySecret"].as_str().expect("sk"));
    let seen = b.call(VPC, "DescribeVpcs", &p(&[])).expect("describe").body;
    assert_eq!(seen["TotalCount"], 0, "{seen}");
    let del = b.call(VPC, "DeleteVpc", &p(&[("VpcId", &vpc)])).expect("delete");
    assert_eq!((del.status, del.code()), (404, Some("InvalidVpcId.NotFound")));
    let sw = b
        .call(VPC, "CreateVSwitch", &p(&[("VpcId", &vpc), ("ZoneId", "local-1a"), ("CidrBlock", "198.18.0.0/26")]))
        .expect("vswitch");
    assert_eq!(sw.code(), Some("InvalidVpcId.NotFound"));
    assert_eq!(a.call(VPC, "DeleteVpc", &p(&[("VpcId", &vpc)])).expect("delete").status, 200);
    eventually("no namespace left", || namespaces(&prefix).is_empty());
    // EIP addresses are unique across accounts; one tenant cannot see or release another's.
    let ea = a.call(VPC, "AllocateEipAddress", &p(&[])).expect("eip").body;
    let eb = b.call(VPC, "AllocateEipAddress", &p(&[])).expect("eip").body;
    assert_ne!(ea["EipAddress"], eb["EipAddress"]);
    let theirs = ea["AllocationId"].as_str().expect("id");
    let denied = b.call(VPC, "ReleaseEipAddress", &p(&[("AllocationId", theirs)])).expect("release");
    assert_eq!(denied.code(), Some("InvalidAllocationId.NotFound"));
    assert_eq!(b.call(VPC, "DescribeEipAddresses", &p(&[])).expect("list").body["TotalCount"], 1);
    r.stop();
}

/// Deleting right after creating races the reconciler marking the resource Available; the
/// delete must win every time, not answer OperationConflict.
#[test]
fn delete_right_after_create_never_conflicts_with_the_reconciler() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let prefix = format!("dc{}", std::process::id() % 100_000);
    let r = Region::start(&tmp.path().join("data"), &["--net-prefix", prefix.as_str()]);
    let c = r.client_http();
    for i in 0..10 {
        let cidr = format!("198.18.{i}.0/24");
        let vpc = c.call(VPC, "CreateVpc", &p(&[("CidrBlock", &cidr)])).expect("create").body["VpcId"]
            .as_str()
            .expect("id")
            .to_string();
        let sw = c
            .call(VPC, "CreateVSwitch", &p(&[("VpcId", &vpc), ("ZoneId", "local-1a"), ("CidrBlock", &cidr)]))
            .expect("vswitch")
            .body["VSwitchId"]
            .as_str()
            .expect("id")
            .to_string();
        let d = c.call(VPC, "DeleteVSwitch", &p(&[("VSwitchId", &sw)])).expect("delete");
        assert_eq!(d.status, 200, "{:?}", d.body);
        let d = c.call(VPC, "DeleteVpc", &p(&[("VpcId", &vpc)])).expect("delete");
        assert_eq!(d.status, 200, "{:?}", d.body);
    }
    eventually("no namespace left", || namespaces(&prefix).is_empty());
    r.stop();
}

/// The answers' shapes, field by field, for the calls the tests above do not look into (they
/// are built from typed state; stored rows and the wire keep today's JSON).
#[test]
fn answers_keep_their_shape() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let prefix = format!("sh{}", std::process::id() % 100_000);
    let r = Region::start(&tmp.path().join("data"), &["--net-prefix", prefix.as_str()]);
    let c = r.client_http();
    let created = c.call(VPC, "CreateVpc", &p(&[("CidrBlock", "198.18.0.0/20"), ("VpcName", "a")])).expect("vpc").body;
    let vpc = created["VpcId"].as_str().expect("id").to_string();
    assert!(created["VRouterId"].as_str().is_some_and(|v| v.starts_with("vrt-")), "{created}");
    assert!(created["RouteTableId"].as_str().is_some_and(|v| v.starts_with("vtb-")), "{created}");
    let table = created["RouteTableId"].as_str().expect("table").to_string();
    let m = c.call(VPC, "ModifyVpcAttribute", &p(&[("VpcId", &vpc), ("VpcName", "b"), ("Description", "d")]));
    assert_eq!(m.expect("modify").status, 200);
    let gone = c.call(VPC, "ModifyVpcAttribute", &p(&[("VpcId", "vpc-nope"), ("VpcName", "b")])).expect("modify");
    assert_eq!((gone.status, gone.code()), (404, Some("InvalidVpcId.NotFound")));
    let sw = c
        .call(VPC, "CreateVSwitch", &p(&[("VpcId", &vpc), ("ZoneId", "local-1a"), ("CidrBlock", "198.18.4.0/24")]))
        .expect("vswitch")
        .body["VSwitchId"]
        .as_str()
        .expect("id")
        .to_string();
    c.call(VPC, "ModifyVSwitchAttribute", &p(&[("VSwitchId", &sw), ("VSwitchName", "s")])).expect("modify");
    let v = c.call(VPC, "DescribeVpcs", &p(&[("VpcName", "b")])).expect("describe").body;
    let one = &v["Vpcs"]["Vpc"][0];
    assert_eq!(
        (v["TotalCount"].clone(), v["PageNumber"].clone(), v["PageSize"].clone()),
        (1.into(), 1.into(), 10.into())
    );
    assert_eq!(
        (one["VpcId"].as_str(), one["VpcName"].as_str(), one["Description"].as_str()),
        (Some(&*vpc), Some("b"), Some("d"))
    );
    assert_eq!(one["CidrBlock"], "198.18.0.0/20");
    assert_eq!(one["VSwitchIds"]["VSwitchId"][0].as_str(), Some(&*sw));
    assert_eq!(one["RouterTableIds"]["RouterTableIds"][0].as_str(), Some(&*table));
    assert!(one["Status"] == "Pending" || one["Status"] == "Available", "{one}");
    let s = c.call(VPC, "DescribeVSwitches", &p(&[("VpcId", &vpc)])).expect("vswitches").body;
    let s0 = &s["VSwitches"]["VSwitch"][0];
    assert_eq!((s0["VSwitchName"].as_str(), s0["ZoneId"].as_str()), (Some("s"), Some("local-1a")), "{s0}");
    assert_eq!(s0["AvailableIpAddressCount"], 251);
    let e = c.call(
        VPC,
        "DescribeRouteEntryList",
        &p(&[("RouteTableId", &table), ("DestinationCidrBlock", "198.18.4.0/24")]),
    );
    let e = e.expect("entries").body;
    assert_eq!(e["RouteEntrys"]["RouteEntry"].as_array().map(Vec::len), Some(1), "{e}");
    assert_eq!(e["RouteEntrys"]["RouteEntry"][0]["Type"], "System");
    let none =
        c.call(VPC, "DescribeRouteEntryList", &p(&[("RouteTableId", &table), ("DestinationCidrBlock", "10.0.0.0/8")]));
    assert_eq!(none.expect("entries").body["RouteEntrys"]["RouteEntry"], serde_json::json!([]));
    let del = c.call(VPC, "DeleteRouteEntry", &p(&[("RouteTableId", &table), ("DestinationCidrBlock", "10.0.0.0/8")]));
    assert_eq!(del.expect("delete").code(), Some("InvalidRouteEntry.NotFound"));
    let hop = c.call(
        VPC,
        "CreateRouteEntry",
        &p(&[("RouteTableId", &table), ("DestinationCidrBlock", "10.0.0.0/8"), ("NextHopId", "i-nope")]),
    );
    assert_eq!(hop.expect("create").code(), Some("InvalidInstanceId.NotFound"));
    let t = c.call(VPC, "DescribeRouteTableList", &p(&[("VpcId", &vpc)])).expect("tables").body;
    assert_eq!(t["RouterTableList"]["RouterTableListType"][0]["RouteTableId"].as_str(), Some(&*table), "{t}");

    let eip = c.call(VPC, "AllocateEipAddress", &p(&[("Bandwidth", "7")])).expect("eip").body;
    let id = eip["AllocationId"].as_str().expect("id").to_string();
    let d = c.call(VPC, "DescribeEipAddresses", &p(&[("AllocationId", &id)])).expect("describe").body;
    let e0 = &d["EipAddresses"]["EipAddress"][0];
    assert_eq!(
        (e0["Status"].as_str(), e0["Bandwidth"].as_str(), e0["InstanceId"].as_str()),
        (Some("Available"), Some("7"), Some(""))
    );
    assert_eq!(e0["PrivateIpAddress"], Value::Null, "never associated: null, as before");
    assert_eq!(e0["IpAddress"], eip["EipAddress"]);
    let by_status = c.call(VPC, "DescribeEipAddresses", &p(&[("Status", "InUse")])).expect("describe").body;
    assert_eq!(by_status["TotalCount"], 0);
    let un = c.call(VPC, "UnassociateEipAddress", &p(&[("AllocationId", &id)])).expect("unassociate");
    assert_eq!(un.code(), Some("IncorrectEipStatus"));
    assert_eq!(c.call(VPC, "ReleaseEipAddress", &p(&[("AllocationId", &id)])).expect("release").status, 200);
    let again = c.call(VPC, "AllocateEipAddress", &p(&[])).expect("eip").body;
    assert_eq!(again["EipAddress"], eip["EipAddress"], "the released address went back to the pool");
    r.stop();
}
