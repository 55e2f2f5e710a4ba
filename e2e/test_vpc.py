"""VPC through aliyun-python-sdk-vpc: VPCs and vSwitches, the documented errors for bad input,
and the data plane they become on this host (a network namespace per VPC, a bridge per
vSwitch holding its gateway address). Addresses come from 198.18.0.0/15 as the brief asks."""
import json
import subprocess
import time

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkvpc.request.v20160428 import (CreateVpcRequest, CreateVSwitchRequest, DeleteVpcRequest,
                                            DeleteVSwitchRequest, DescribeVpcsRequest, DescribeVSwitchesRequest,
                                            ModifyVpcAttributeRequest)


def call(region, request):
    request.set_endpoint(region.https)
    request.set_protocol_type("https")
    client = AcsClient(region.ak, region.secret, "local-1", verify=region.ca)
    return json.loads(client.do_action_with_exception(request))


def error(region, request):
    with pytest.raises(ServerException) as e:
        call(region, request)
    return e.value.get_http_status(), e.value.get_error_code()


def namespaces(region):
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(f"{region.net_prefix}-vpc-")]


def addresses(ns):
    out = subprocess.run(["ip", "-n", ns, "-j", "addr", "show", "type", "bridge"], capture_output=True, text=True,
                         check=True).stdout
    return sorted(f'{a["local"]}/{a["prefixlen"]}' for link in json.loads(out) for a in link["addr_info"]
                  if a["family"] == "inet")


def wait_available(region, request, path):
    deadline = time.time() + 20
    while time.time() < deadline:
        item = path(call(region, request))
        if item["Status"] == "Available":
            return item
        time.sleep(0.2)
    raise AssertionError(f"not Available in time: {item}")


def test_vpc_and_vswitches_become_a_namespace_with_bridges(region):
    r = CreateVpcRequest.CreateVpcRequest(); r.set_CidrBlock("198.18.0.0/16"); r.set_VpcName("e2e-net")
    vpc = call(region, r)["VpcId"]
    d = DescribeVpcsRequest.DescribeVpcsRequest(); d.set_VpcId(vpc)
    shown = wait_available(region, d, lambda b: b["Vpcs"]["Vpc"][0])
    assert (shown["CidrBlock"], shown["VpcName"], shown["RegionId"]) == ("198.18.0.0/16", "e2e-net", "local-1")
    ns = f"{region.net_prefix}-vpc-{vpc[-12:]}"
    assert ns in namespaces(region)

    s = CreateVSwitchRequest.CreateVSwitchRequest(); s.set_VpcId(vpc); s.set_ZoneId("local-1a")
    s.set_CidrBlock("198.18.1.0/24"); s.set_VSwitchName("web")
    vsw = call(region, s)["VSwitchId"]
    s2 = CreateVSwitchRequest.CreateVSwitchRequest(); s2.set_VpcId(vpc); s2.set_ZoneId("local-1b")
    s2.set_CidrBlock("198.18.2.0/25")
    vsw2 = call(region, s2)["VSwitchId"]
    dv = DescribeVSwitchesRequest.DescribeVSwitchesRequest(); dv.set_VSwitchId(vsw)
    sw = wait_available(region, dv, lambda b: b["VSwitches"]["VSwitch"][0])
    assert (sw["CidrBlock"], sw["ZoneId"], sw["AvailableIpAddressCount"]) == ("198.18.1.0/24", "local-1a", 251)
    deadline = time.time() + 20
    while addresses(ns) != ["198.18.1.1/24", "198.18.2.1/25"] and time.time() < deadline:
        time.sleep(0.2)
    assert addresses(ns) == ["198.18.1.1/24", "198.18.2.1/25"], "each vSwitch is a bridge holding its gateway"

    m = ModifyVpcAttributeRequest.ModifyVpcAttributeRequest(); m.set_VpcId(vpc); m.set_VpcName("renamed")
    call(region, m)
    assert call(region, d)["Vpcs"]["Vpc"][0]["VpcName"] == "renamed"

    dvpc = DeleteVpcRequest.DeleteVpcRequest(); dvpc.set_VpcId(vpc)
    assert error(region, dvpc) == (400, "DependencyViolation.VSwitch")
    for v in (vsw, vsw2):
        x = DeleteVSwitchRequest.DeleteVSwitchRequest(); x.set_VSwitchId(v); call(region, x)
    call(region, dvpc)
    deadline = time.time() + 20
    while ns in namespaces(region) and time.time() < deadline:
        time.sleep(0.2)
    assert ns not in namespaces(region), "a deleted VPC leaves no namespace behind"


def test_bad_cidrs_and_unknown_ids_get_documented_errors(region):
    for cidr in ["100.64.0.0/16", "127.0.0.0/8", "198.18.0.0/29", "198.18.0.1/16", "not-a-cidr"]:
        r = CreateVpcRequest.CreateVpcRequest(); r.set_CidrBlock(cidr)
        assert error(region, r) == (400, "InvalidCidrBlock.Malformed"), cidr
    r = CreateVpcRequest.CreateVpcRequest(); r.set_CidrBlock("198.19.0.0/16")
    vpc = call(region, r)["VpcId"]
    for zone, cidr, code in [("local-1a", "198.18.0.0/24", "InvalidCidrBlock.Malformed"),   # outside the VPC
                             ("local-1a", "198.19.0.0/30", "InvalidCidrBlock.Malformed"),   # too small
                             ("nowhere-1z", "198.19.0.0/24", "InvalidZoneId.NotFound")]:
        s = CreateVSwitchRequest.CreateVSwitchRequest(); s.set_VpcId(vpc); s.set_ZoneId(zone); s.set_CidrBlock(cidr)
        assert error(region, s)[1] == code, (zone, cidr)
    s = CreateVSwitchRequest.CreateVSwitchRequest(); s.set_VpcId(vpc); s.set_ZoneId("local-1a"); s.set_CidrBlock("198.19.0.0/24")
    vsw = call(region, s)["VSwitchId"]
    s.set_CidrBlock("198.19.0.128/25")
    assert error(region, s) == (400, "InvalidCidrBlock.Overlapped")
    missing = DeleteVpcRequest.DeleteVpcRequest(); missing.set_VpcId("vpc-doesnotexist0000000")
    assert error(region, missing) == (404, "InvalidVpcId.NotFound")
    x = DeleteVSwitchRequest.DeleteVSwitchRequest(); x.set_VSwitchId(vsw); call(region, x)
    d = DeleteVpcRequest.DeleteVpcRequest(); d.set_VpcId(vpc); call(region, d)


def test_eips_are_allocated_from_the_pool_and_released(region):
    from aliyunsdkvpc.request.v20160428 import (AllocateEipAddressRequest, AssociateEipAddressRequest,
                                                DescribeEipAddressesRequest, ReleaseEipAddressRequest)
    import ipaddress
    got = [call(region, AllocateEipAddressRequest.AllocateEipAddressRequest()) for _ in range(2)]
    addrs = [ipaddress.ip_address(g["EipAddress"]) for g in got]
    assert len(set(addrs)) == 2 and all(a in ipaddress.ip_network("100.64.0.0/10") for a in addrs)
    d = DescribeEipAddressesRequest.DescribeEipAddressesRequest(); d.set_AllocationId(got[0]["AllocationId"])
    shown = call(region, d)["EipAddresses"]["EipAddress"]
    assert [(e["IpAddress"], e["Status"]) for e in shown] == [(got[0]["EipAddress"], "Available")]
    a = AssociateEipAddressRequest.AssociateEipAddressRequest(); a.set_AllocationId(got[0]["AllocationId"])
    a.set_InstanceId("i-doesnotexist000000")
    assert error(region, a) == (404, "InvalidInstanceId.NotFound")
    for g in got:
        r = ReleaseEipAddressRequest.ReleaseEipAddressRequest(); r.set_AllocationId(g["AllocationId"]); call(region, r)
    r = ReleaseEipAddressRequest.ReleaseEipAddressRequest(); r.set_AllocationId(got[0]["AllocationId"])
    assert error(region, r) == (404, "InvalidAllocationId.NotFound")
    # A released address goes back to the pool.
    again = call(region, AllocateEipAddressRequest.AllocateEipAddressRequest())
    assert ipaddress.ip_address(again["EipAddress"]) == min(addrs)
    r = ReleaseEipAddressRequest.ReleaseEipAddressRequest(); r.set_AllocationId(again["AllocationId"]); call(region, r)


def test_route_tables_show_each_vswitch_block(region):
    from aliyunsdkvpc.request.v20160428 import (CreateRouteEntryRequest, DescribeRouteEntryListRequest,
                                                DescribeRouteTableListRequest)
    r = CreateVpcRequest.CreateVpcRequest(); r.set_CidrBlock("198.18.96.0/20")
    created = call(region, r)
    vpc, table = created["VpcId"], created["RouteTableId"]
    s = CreateVSwitchRequest.CreateVSwitchRequest(); s.set_VpcId(vpc); s.set_ZoneId("local-1a"); s.set_CidrBlock("198.18.97.0/24")
    vsw = call(region, s)["VSwitchId"]
    lst = DescribeRouteTableListRequest.DescribeRouteTableListRequest(); lst.set_VpcId(vpc)
    tables = call(region, lst)["RouterTableList"]["RouterTableListType"]
    assert [(t["RouteTableId"], t["RouteTableType"], t["VSwitchIds"]["VSwitchId"]) for t in tables] == [(table, "System", [vsw])]
    e = DescribeRouteEntryListRequest.DescribeRouteEntryListRequest(); e.set_RouteTableId(table)
    routes = call(region, e)["RouteEntrys"]["RouteEntry"]
    assert [(x["DestinationCidrBlock"], x["Type"], x["NextHops"]["NextHop"][0]["NextHopType"]) for x in routes] == \
        [("198.18.97.0/24", "System", "local")]
    c = CreateRouteEntryRequest.CreateRouteEntryRequest(); c.set_RouteTableId(table)
    c.set_DestinationCidrBlock("0.0.0.0/0"); c.set_NextHopId("i-doesnotexist000000")
    assert error(region, c) == (404, "InvalidInstanceId.NotFound")
    c.set_DestinationCidrBlock("nonsense")
    assert error(region, c) == (400, "InvalidDestinationCidrBlock.Malformed")
    x = DeleteVSwitchRequest.DeleteVSwitchRequest(); x.set_VSwitchId(vsw); call(region, x)
    d = DeleteVpcRequest.DeleteVpcRequest(); d.set_VpcId(vpc); call(region, d)
