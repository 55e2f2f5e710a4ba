"""ECS instances end to end, through aliyun-python-sdk-ecs and -vpc and the real `ssh` client:
VPC + vSwitch + security group allowing SSH → RunInstances → Running → SSH with the key pair
through the EIP from the host; user-data and identity from the metadata service; two instances
in one VPC talk; revoking the rule cuts SSH; power transitions; a tampered image refuses to boot;
documented errors for bad input."""
import base64
import json
import os
import subprocess
import tempfile
import time

import oss2
import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkecs.request.v20140526 import (AllocatePublicIpAddressRequest, AuthorizeSecurityGroupRequest, CreateImageRequest, CreateKeyPairRequest,
                                            CreateSecurityGroupRequest, DeleteInstanceRequest,
                                            DescribeImagesRequest, DescribeInstanceAttributeRequest,
                                            DescribeInstancesRequest, DescribeInstanceStatusRequest,
                                            DescribeZonesRequest, GetInstanceConsoleOutputRequest,
                                            DescribeImageSharePermissionRequest, ModifyImageSharePermissionRequest,
                                            RebootInstanceRequest, RevokeSecurityGroupRequest, RunInstancesRequest,
                                            StartInstanceRequest, StopInstanceRequest)
from aliyunsdkvpc.request.v20160428 import (AllocateEipAddressRequest, AssociateEipAddressRequest,
                                            CreateRouteEntryRequest, CreateVpcRequest, CreateVSwitchRequest,
                                            DeleteRouteEntryRequest, DescribeRouteEntryListRequest,
                                            DescribeVpcsRequest, ReleaseEipAddressRequest,
                                            UnassociateEipAddressRequest)

IMAGE = "nimbus_busybox_x64_dropbear"
TYPE = "ecs.t6-c1m0.small"


def call(region, request, ak=None):
    request.set_endpoint(region.https)
    request.set_protocol_type("https")
    key, secret = ak or (region.ak, region.secret)
    return json.loads(AcsClient(key, secret, "local-1", verify=region.ca).do_action_with_exception(request))


def error(region, request, ak=None):
    with pytest.raises(ServerException) as e:
        call(region, request, ak)
    return e.value.get_error_code(), e.value.get_error_msg()


def wait(what, f, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = f()
        if v:
            return v
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def status(region, iid):
    r = DescribeInstanceAttributeRequest.DescribeInstanceAttributeRequest(); r.set_InstanceId(iid)
    return call(region, r)["Status"]


def ssh(key, host, command, timeout=10):
    """The real ssh client; a session that hangs (e.g. its EIP moved under it) counts as a failure."""
    try:
        return subprocess.run(["ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                               "-o", "BatchMode=yes", "-o", f"ConnectTimeout={timeout}", f"root@{host}", command],
                              capture_output=True, text=True, timeout=timeout + 30)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, 255, "", "ssh timed out")


@pytest.fixture(scope="module")
def world(region):
    return make_world(region)


def make_world(region, tag="", third=96):
    """An available system image, a VPC with a vSwitch, a group allowing SSH, a key pair
    (`tag` and `third`, the VPC's third octet, keep several worlds of one region apart)."""
    d = DescribeImagesRequest.DescribeImagesRequest(); d.set_ImageOwnerAlias("system")
    img = wait("the system image", lambda: [i for i in call(region, d)["Images"]["Image"]
                                             if i["ImageId"] == IMAGE and i["Status"] != "Creating"], 300)
    # A failed build fails here at once, with its reason (CreateFailed, StatusReason).
    assert img[0]["Status"] == "Available", f"the system image could not be built: {img[0]}"
    assert img[0]["ImageOwnerAlias"] == "system" and img[0]["Progress"] == "100%"
    zone = call(region, DescribeZonesRequest.DescribeZonesRequest())["Zones"]["Zone"][0]["ZoneId"]
    v = CreateVpcRequest.CreateVpcRequest(); v.set_CidrBlock(f"198.18.{third}.0/20")
    vpc = call(region, v)["VpcId"]
    s = CreateVSwitchRequest.CreateVSwitchRequest(); s.set_VpcId(vpc); s.set_ZoneId(zone); s.set_CidrBlock(f"198.18.{third + 1}.0/24")
    vsw = call(region, s)["VSwitchId"]
    g = CreateSecurityGroupRequest.CreateSecurityGroupRequest(); g.set_VpcId(vpc); g.set_SecurityGroupName("ssh")
    sg = call(region, g)["SecurityGroupId"]
    a = AuthorizeSecurityGroupRequest.AuthorizeSecurityGroupRequest(); a.set_SecurityGroupId(sg)
    a.set_IpProtocol("tcp"); a.set_PortRange("22/22"); a.set_SourceCidrIp("0.0.0.0/0")
    call(region, a)
    k = CreateKeyPairRequest.CreateKeyPairRequest(); k.set_KeyPairName(f"e2e-{os.getpid()}{tag}")
    kp = call(region, k)
    keyfile = os.path.join(tempfile.mkdtemp(), "id")
    with open(keyfile, "w") as f:
        f.write(kp["PrivateKeyBody"])
    os.chmod(keyfile, 0o600)
    return {"vpc": vpc, "vsw": vsw, "sg": sg, "key": keyfile, "key_name": kp["KeyPairName"], "zone": zone}


def run(region, w, amount=1, user_data=None):
    r = RunInstancesRequest.RunInstancesRequest()
    r.set_ImageId(IMAGE); r.set_InstanceType(TYPE); r.set_VSwitchId(w["vsw"]); r.set_SecurityGroupId(w["sg"])
    r.set_KeyPairName(w["key_name"]); r.set_Amount(amount); r.set_InstanceName("e2e")
    if user_data:
        r.set_UserData(base64.b64encode(user_data.encode()).decode())
    return call(region, r)["InstanceIdSets"]["InstanceIdSet"]


def test_run_ssh_metadata_talk_revoke_and_power(region, world):
    w = world
    ids = run(region, w, amount=2, user_data="#!/bin/sh\necho hello-from-user-data > /root/ud.txt\n")
    assert len(ids) == 2
    for i in ids:
        wait(f"{i} Running", lambda: status(region, i) == "Running")
    d = DescribeInstancesRequest.DescribeInstancesRequest(); d.set_InstanceIds(json.dumps(ids))
    shown = {i["InstanceId"]: i for i in call(region, d)["Instances"]["Instance"]}
    ips = [shown[i]["VpcAttributes"]["PrivateIpAddress"]["IpAddress"][0] for i in ids]
    assert all(ip.startswith("198.18.97.") for ip in ips) and ips[0] != ips[1]
    assert shown[ids[0]]["Cpu"] == 1 and shown[ids[0]]["Memory"] == 256
    s = DescribeInstanceStatusRequest.DescribeInstanceStatusRequest(); s.set_InstanceIds(ids)

    e = AllocateEipAddressRequest.AllocateEipAddressRequest()
    eip = call(region, e)
    a = AssociateEipAddressRequest.AssociateEipAddressRequest(); a.set_AllocationId(eip["AllocationId"]); a.set_InstanceId(ids[0])
    call(region, a)
    host = eip["EipAddress"]
    assert host.startswith("100.64.")

    # SSH through the EIP with the key pair; the boot script took the key from the metadata service.
    out = wait("SSH through the EIP", lambda: (lambda r: r if r.returncode == 0 else None)(
        ssh(w["key"], host, "cat /root/ud.txt; hostname; "
                            "nimbus-metadata meta-data/instance-id; echo; "
                            "NIMBUS_METADATA_HOST=100.100.100.200 nimbus-metadata meta-data/instance-id; echo; "
                            "nimbus-metadata user-data")), 120)
    lines = out.stdout.split("\n")
    assert lines[0] == "hello-from-user-data", (out.stdout, out.stderr)
    assert lines[2] == ids[0], (out.stdout, out.stderr)
    assert lines[3] == ids[0], ("Alibaba's metadata address answers too", out.stdout, out.stderr)
    assert "echo hello-from-user-data" in out.stdout

    # Nothing an instance sends beyond the VPC and the public bridge leaves the host: a test table
    # counts every packet to an outside address leaving any host interface (postrouting sees
    # forwarded and local packets alike) while the instance, which has an EIP, tries to reach it.
    outside = "198.19.255.1"  # test range, owned by nobody here
    leak = f"e2e_leak_{os.getpid()}"
    subprocess.run(["nft", "-f", "-"], check=True, text=True, input=(
        f"table inet {leak} {{\n chain post {{\n  type filter hook postrouting priority 0; policy accept;\n"
        f"  ip daddr {outside} counter\n }}\n}}\n"))
    try:
        tried = ssh(w["key"], host, f"ping -c 3 -W 1 {outside} >/dev/null && echo answered || echo no-answer")
        assert tried.stdout.strip() == "no-answer", (tried.stdout, tried.stderr)
        listing = subprocess.run(["nft", "list", "table", "inet", leak], capture_output=True, text=True).stdout
        assert "counter packets 0 bytes 0" in listing, listing
    finally:
        subprocess.run(["nft", "delete", "table", "inet", leak])

    # Two instances of one group in one VPC talk.
    talk = ssh(w["key"], host, f"ping -c 2 -W 2 {ips[1]} >/dev/null && echo reachable")
    assert talk.stdout.strip() == "reachable", talk.stderr

    # A custom route entry with an instance as next hop is installed in the VPC's router.
    dv = DescribeVpcsRequest.DescribeVpcsRequest(); dv.set_VpcId(w["vpc"])
    table = call(region, dv)["Vpcs"]["Vpc"][0]["RouterTableIds"]["RouterTableIds"][0]
    ce = CreateRouteEntryRequest.CreateRouteEntryRequest(); ce.set_RouteTableId(table)
    ce.set_DestinationCidrBlock("198.18.200.0/24"); ce.set_NextHopId(ids[1])
    entry = call(region, ce)["RouteEntryId"]
    ns = f"{region.net_prefix}-vpc-{w['vpc'][-12:]}"
    def route():
        return subprocess.run(["ip", "-n", ns, "route", "show", "198.18.200.0/24"], capture_output=True, text=True).stdout
    wait("the route in the VPC router", lambda: f"via {ips[1]}" in route(), 30)
    le = DescribeRouteEntryListRequest.DescribeRouteEntryListRequest(); le.set_RouteTableId(table)
    custom = [e for e in call(region, le)["RouteEntrys"]["RouteEntry"] if e["Type"] == "Custom"]
    assert [(e["RouteEntryId"], e["NextHops"]["NextHop"][0]["NextHopId"]) for e in custom] == [(entry, ids[1])]
    de = DeleteRouteEntryRequest.DeleteRouteEntryRequest(); de.set_RouteEntryId(entry); call(region, de)
    wait("the route gone", lambda: route().strip() == "", 30)

    # A spoofed source address from inside an instance never arrives (the port drops it).
    spoofed = ips[0].rsplit(".", 1)[0] + ".200"
    spoof = ssh(w["key"], host, f"ip addr add {spoofed}/24 dev eth0; ping -c 2 -W 2 -I {spoofed} {ips[1]} >/dev/null && echo arrived; "
                                f"ip addr del {spoofed}/24 dev eth0; echo done")
    assert spoof.stdout.split() == ["done"], (spoof.stdout, spoof.stderr)

    # An instance in another VPC (even one allowing everything) cannot be reached.
    v2 = CreateVpcRequest.CreateVpcRequest(); v2.set_CidrBlock("198.18.144.0/20")
    vpc2 = call(region, v2)["VpcId"]
    s2 = CreateVSwitchRequest.CreateVSwitchRequest(); s2.set_VpcId(vpc2); s2.set_ZoneId(w["zone"]); s2.set_CidrBlock("198.18.145.0/24")
    vsw2 = call(region, s2)["VSwitchId"]
    g2 = CreateSecurityGroupRequest.CreateSecurityGroupRequest(); g2.set_VpcId(vpc2)
    sg2 = call(region, g2)["SecurityGroupId"]
    open_all = AuthorizeSecurityGroupRequest.AuthorizeSecurityGroupRequest(); open_all.set_SecurityGroupId(sg2)
    open_all.set_IpProtocol("all"); open_all.set_PortRange("-1/-1"); open_all.set_SourceCidrIp("0.0.0.0/0")
    call(region, open_all)
    r2 = RunInstancesRequest.RunInstancesRequest()
    r2.set_ImageId(IMAGE); r2.set_InstanceType(TYPE); r2.set_VSwitchId(vsw2); r2.set_SecurityGroupId(sg2)
    other = call(region, r2)["InstanceIdSets"]["InstanceIdSet"][0]
    wait("the other VPC's instance Running", lambda: status(region, other) == "Running")
    da = DescribeInstanceAttributeRequest.DescribeInstanceAttributeRequest(); da.set_InstanceId(other)
    other_ip = call(region, da)["VpcAttributes"]["PrivateIpAddress"]["IpAddress"][0]
    wait("its console says it is up", lambda: "NIMBUS-READY" in (lambda c: (c.set_InstanceId(other), base64.b64decode(
        call(region, c)["ConsoleOutput"]).decode(errors="replace"))[1])(GetInstanceConsoleOutputRequest.GetInstanceConsoleOutputRequest()), 120)
    cross = ssh(w["key"], host, f"ping -c 2 -W 2 {other_ip} >/dev/null && echo reachable || echo isolated")
    assert cross.stdout.strip() == "isolated", (cross.stdout, cross.stderr)
    dl2 = DeleteInstanceRequest.DeleteInstanceRequest(); dl2.set_InstanceId(other); dl2.set_Force(True); call(region, dl2)

    # GetInstanceConsoleOutput shows the boot.
    c = GetInstanceConsoleOutputRequest.GetInstanceConsoleOutputRequest(); c.set_InstanceId(ids[0])
    assert "NIMBUS-READY " + ids[0] in base64.b64decode(call(region, c)["ConsoleOutput"]).decode(errors="replace")

    # Deleting a running instance needs Force.
    dl = DeleteInstanceRequest.DeleteInstanceRequest(); dl.set_InstanceId(ids[1])
    assert error(region, dl)[0] == "IncorrectInstanceStatus"

    # Revoking the SSH rule cuts SSH.
    rv = RevokeSecurityGroupRequest.RevokeSecurityGroupRequest(); rv.set_SecurityGroupId(w["sg"])
    rv.set_IpProtocol("tcp"); rv.set_PortRange("22/22"); rv.set_SourceCidrIp("0.0.0.0/0")
    call(region, rv)
    wait("SSH cut", lambda: ssh(w["key"], host, "true", timeout=3).returncode != 0, 30)
    au = AuthorizeSecurityGroupRequest.AuthorizeSecurityGroupRequest(); au.set_SecurityGroupId(w["sg"])
    au.set_IpProtocol("tcp"); au.set_PortRange("22/22"); au.set_SourceCidrIp("0.0.0.0/0")
    call(region, au)

    # Power: Stop → Stopping → Stopped, Start → Running, Reboot keeps it Running and SSH comes back.
    # A plain Stop or Reboot asks the guest to shut down (ACPI power button) and it leaves its
    # clean-shutdown marker; ForceStop pulls the plug and leaves none.
    def last_shutdown():
        wait("SSH after the power change", lambda: ssh(w["key"], host, "true", timeout=5).returncode == 0, 120)
        return ssh(w["key"], host, "cat /run/nimbus-last-shutdown >/dev/null 2>&1 && echo clean || echo unclean").stdout.strip()
    def stop_start(force):
        st = StopInstanceRequest.StopInstanceRequest(); st.set_InstanceId(ids[0]); st.set_ForceStop(force); call(region, st)
        assert status(region, ids[0]) in ("Stopping", "Stopped")
        wait("Stopped", lambda: status(region, ids[0]) == "Stopped")
        sr = StartInstanceRequest.StartInstanceRequest(); sr.set_InstanceId(ids[0]); call(region, sr)
        wait("Running again", lambda: status(region, ids[0]) == "Running")
    stop_start(force=False)
    assert last_shutdown() == "clean"
    stop_start(force=True)
    assert last_shutdown() == "unclean"
    # `poweroff` inside the guest makes the instance Stopped (not restarted), as on Alibaba Cloud.
    ssh(w["key"], host, "poweroff", timeout=5)
    wait("Stopped after an in-guest poweroff", lambda: status(region, ids[0]) == "Stopped", 60)
    sr = StartInstanceRequest.StartInstanceRequest(); sr.set_InstanceId(ids[0]); call(region, sr)
    wait("Running again", lambda: status(region, ids[0]) == "Running")
    assert last_shutdown() == "clean"
    rb = RebootInstanceRequest.RebootInstanceRequest(); rb.set_InstanceId(ids[0]); call(region, rb)
    wait("Running after reboot", lambda: status(region, ids[0]) == "Running")
    assert last_shutdown() == "clean"
    assert ssh(w["key"], host, "cat /root/ud.txt").stdout.strip() == "hello-from-user-data"

    u = UnassociateEipAddressRequest.UnassociateEipAddressRequest(); u.set_AllocationId(eip["AllocationId"]); call(region, u)
    for i in ids:
        dl = DeleteInstanceRequest.DeleteInstanceRequest(); dl.set_InstanceId(i); dl.set_Force(True); call(region, dl)
    wait("instances gone", lambda: not call(region, d)["Instances"]["Instance"])


def test_bad_input(region, world):
    w = world
    def req(**kw):
        r = RunInstancesRequest.RunInstancesRequest()
        r.set_ImageId(kw.get("image", IMAGE)); r.set_InstanceType(kw.get("type", TYPE))
        r.set_VSwitchId(kw.get("vsw", w["vsw"])); r.set_SecurityGroupId(w["sg"]); r.set_Amount(kw.get("amount", 1))
        return r
    assert error(region, req(image="m-doesnotexist"))[0] == "InvalidImageId.NotFound"
    assert error(region, req(type="ecs.nope.huge"))[0] == "InvalidInstanceType.ValueNotSupported"
    assert error(region, req(vsw="vsw-doesnotexist"))[0] == "InvalidVSwitchId.NotFound"
    assert error(region, req(amount=21))[0] == "QuotaExceed.Instance"
    bad = req(); bad.set_UserData("%%% not base64")
    assert error(region, bad)[0] == "InvalidUserData.Base64FormatInvalid"


def test_tampered_image_refuses_to_boot(region, world):
    """The operator's account holds the image bucket; an object changed there (by anyone) no longer
    matches the digest recorded at creation, and RunInstances says so."""
    d = DescribeImagesRequest.DescribeImagesRequest(); d.set_ImageId(IMAGE)
    assert call(region, d)["Images"]["Image"][0]["Status"] == "Available"
    bucket = oss2.Bucket(oss2.Auth(region.ak, region.secret), region.oss_http, "nimbus-images-local-1")
    key = f"images/{IMAGE}/initrd"
    original = bucket.get_object(key).read()
    bucket.put_object(key, original + b"\0tampered")
    try:
        code, msg = error(region, (lambda r: (r.set_ImageId(IMAGE), r.set_InstanceType(TYPE), r.set_VSwitchId(world["vsw"]),
                                              r.set_SecurityGroupId(world["sg"]), r)[-1])(RunInstancesRequest.RunInstancesRequest()))
        assert code == "InvalidImage.IntegrityCheckFailed", msg
        assert "SHA-256" in msg and key in msg
    finally:
        bucket.put_object(key, original)
    # Restored bytes match the recorded digest again. A retry with the same ClientToken gets the
    # same instance, not a second one.
    r = RunInstancesRequest.RunInstancesRequest()
    r.set_ImageId(IMAGE); r.set_InstanceType(TYPE); r.set_VSwitchId(world["vsw"]); r.set_SecurityGroupId(world["sg"])
    r.set_ClientToken(f"e2e-token-{os.getpid()}"); r.set_KeyPairName(world["key_name"])
    ids = call(region, r)["InstanceIdSets"]["InstanceIdSet"]
    assert call(region, r)["InstanceIdSets"]["InstanceIdSet"] == ids
    wait("Running", lambda: status(region, ids[0]) == "Running")
    # AllocatePublicIpAddress: the instance's own public address, NAT'd like an EIP; a retry
    # answers the same address; an instance with one takes no EIP.
    ap = AllocatePublicIpAddressRequest.AllocatePublicIpAddressRequest(); ap.set_InstanceId(ids[0])
    public = call(region, ap)["IpAddress"]
    assert public.startswith("100.64.") and call(region, ap)["IpAddress"] == public
    d = DescribeInstancesRequest.DescribeInstancesRequest(); d.set_InstanceIds(json.dumps(ids))
    assert call(region, d)["Instances"]["Instance"][0]["PublicIpAddress"]["IpAddress"] == [public]
    out = wait("SSH through the public IP", lambda: (lambda x: x if x.returncode == 0 else None)(
        ssh(world["key"], public, "nimbus-metadata meta-data/instance-id; echo; nimbus-metadata meta-data/public-ipv4", timeout=5)), 120)
    assert out.stdout.split() == [ids[0], public], out.stdout
    eip = call(region, AllocateEipAddressRequest.AllocateEipAddressRequest())
    a = AssociateEipAddressRequest.AssociateEipAddressRequest(); a.set_AllocationId(eip["AllocationId"]); a.set_InstanceId(ids[0])
    assert error(region, a)[0] == "InvalidAssociation.Duplicated"
    rl = ReleaseEipAddressRequest.ReleaseEipAddressRequest(); rl.set_AllocationId(eip["AllocationId"]); call(region, rl)
    dl = DeleteInstanceRequest.DeleteInstanceRequest(); dl.set_InstanceId(ids[0]); dl.set_Force(True); call(region, dl)


def test_create_image_boots_with_the_same_files_and_sharing_decides_who_may_use_it(region, world):
    w = world
    src = run(region, w)[0]
    wait("source Running", lambda: status(region, src) == "Running")
    eip = call(region, AllocateEipAddressRequest.AllocateEipAddressRequest())
    def bind(iid):
        a = AssociateEipAddressRequest.AssociateEipAddressRequest(); a.set_AllocationId(eip["AllocationId"]); a.set_InstanceId(iid)
        call(region, a)
    def unbind():
        u = UnassociateEipAddressRequest.UnassociateEipAddressRequest(); u.set_AllocationId(eip["AllocationId"]); call(region, u)
    bind(src)
    wait("SSH to the source", lambda: ssh(w["key"], eip["EipAddress"], "echo custom-file > /root/custom.txt && sync").returncode == 0, 120)
    ci = CreateImageRequest.CreateImageRequest(); ci.set_InstanceId(src); ci.set_ImageName(f"e2e-image-{os.getpid()}")
    img = call(region, ci)["ImageId"]
    assert img.startswith("m-")
    d = DescribeImagesRequest.DescribeImagesRequest(); d.set_ImageId(img); d.set_ImageOwnerAlias("self")
    wait("image Available", lambda: call(region, d)["Images"]["Image"][0]["Status"] == "Available", 120)

    r = RunInstancesRequest.RunInstancesRequest()
    r.set_ImageId(img); r.set_InstanceType(TYPE); r.set_VSwitchId(w["vsw"]); r.set_SecurityGroupId(w["sg"]); r.set_KeyPairName(w["key_name"])
    copy = call(region, r)["InstanceIdSets"]["InstanceIdSet"][0]
    wait("copy Running", lambda: status(region, copy) == "Running")
    unbind(); bind(copy)
    # The EIP's NAT follows asynchronously: wait until SSH reaches the copy.
    out = wait("SSH to the copy", lambda: (lambda x: x if x.returncode == 0 and copy in x.stdout else None)(
        ssh(w["key"], eip["EipAddress"], "cat /root/custom.txt; nimbus-metadata meta-data/instance-id", timeout=5)), 120)
    assert out.stdout.split() == ["custom-file", copy], out.stdout

    # Shared with one tenant: that tenant may run it; another may not even see it.
    friend = json.loads(region.admin("account", "create", "--name", f"friend{os.getpid()}"))
    stranger = json.loads(region.admin("account", "create", "--name", f"stranger{os.getpid()}"))
    fk, sk = (friend["AccessKeyId"], friend["AccessKeySecret"]), (stranger["AccessKeyId"], stranger["AccessKeySecret"])
    m = ModifyImageSharePermissionRequest.ModifyImageSharePermissionRequest(); m.set_ImageId(img)
    m.set_AddAccounts([friend["AccountId"]])
    call(region, m)
    dp = DescribeImageSharePermissionRequest.DescribeImageSharePermissionRequest(); dp.set_ImageId(img)
    assert [a["AliyunId"] for a in call(region, dp)["Accounts"]["Account"]] == [friend["AccountId"]]
    others = DescribeImagesRequest.DescribeImagesRequest(); others.set_ImageOwnerAlias("others")
    assert [i["ImageId"] for i in call(region, others, fk)["Images"]["Image"]] == [img]
    assert call(region, others, sk)["Images"]["Image"] == []
    fv = CreateVpcRequest.CreateVpcRequest(); fv.set_CidrBlock("198.18.128.0/20")
    fvpc = call(region, fv, fk)["VpcId"]
    fs = CreateVSwitchRequest.CreateVSwitchRequest(); fs.set_VpcId(fvpc); fs.set_ZoneId(w["zone"]); fs.set_CidrBlock("198.18.129.0/24")
    fvsw = call(region, fs, fk)["VSwitchId"]
    fg = CreateSecurityGroupRequest.CreateSecurityGroupRequest(); fg.set_VpcId(fvpc)
    fsg = call(region, fg, fk)["SecurityGroupId"]
    fr = RunInstancesRequest.RunInstancesRequest()
    fr.set_ImageId(img); fr.set_InstanceType(TYPE); fr.set_VSwitchId(fvsw); fr.set_SecurityGroupId(fsg)
    theirs = call(region, fr, fk)["InstanceIdSets"]["InstanceIdSet"][0]
    wait("the friend's instance Running", lambda: (lambda q: (q.set_InstanceId(theirs), call(region, q, fk)["Status"])[1])(
        DescribeInstanceAttributeRequest.DescribeInstanceAttributeRequest()) == "Running")
    assert error(region, fr, sk)[0] == "InvalidImageId.NotFound"

    unbind()
    for iid, ak in [(src, None), (copy, None), (theirs, fk)]:
        dl = DeleteInstanceRequest.DeleteInstanceRequest(); dl.set_InstanceId(iid); dl.set_Force(True); call(region, dl, ak)


def test_instance_ram_role_credentials_from_the_metadata_service(region, world):
    """A role that trusts ECS, given to an instance: the guest reads an STS session of it from the
    metadata service, and that session can do what the role's policy allows and nothing else.
    Detaching the role stops the credentials; a role that does not trust ECS is refused."""
    from aliyunsdkcore.auth.credentials import StsTokenCredential
    from aliyunsdkram.request.v20150501 import AttachPolicyToRoleRequest, CreatePolicyRequest, CreateRoleRequest
    from aliyunsdkactiontrail.request.v20200706.LookupEventsRequest import LookupEventsRequest
    from aliyunsdkecs.request.v20140526 import (AttachInstanceRamRoleRequest, DescribeInstanceRamRoleRequest,
                                                DetachInstanceRamRoleRequest)
    w, pid = world, os.getpid()
    role, other = f"EcsReader{pid}", f"NotForEcs{pid}"
    TOKEN = "export NIMBUS_METADATA_TOKEN=$(nimbus-metadata --token 300); "
    def make_role(name, principal):
        r = CreateRoleRequest.CreateRoleRequest(); r.set_RoleName(name)
        r.set_AssumeRolePolicyDocument(json.dumps({"Version": "1", "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": principal}]}))
        call(region, r)
    make_role(role, {"Service": ["ecs.aliyuncs.com"]})
    make_role(other, {"RAM": [f"acs:ram::{region.account_id}:root"]})
    pol = CreatePolicyRequest.CreatePolicyRequest(); pol.set_PolicyName(f"describe-instances-{pid}")
    pol.set_PolicyDocument(json.dumps({"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": "ecs:DescribeInstances", "Resource": "*"}]}))
    call(region, pol)
    at = AttachPolicyToRoleRequest.AttachPolicyToRoleRequest(); at.set_PolicyType("Custom")
    at.set_PolicyName(f"describe-instances-{pid}"); at.set_RoleName(role)
    call(region, at)

    def req(ram_role):
        r = RunInstancesRequest.RunInstancesRequest()
        r.set_ImageId(IMAGE); r.set_InstanceType(TYPE); r.set_VSwitchId(w["vsw"]); r.set_SecurityGroupId(w["sg"])
        r.set_KeyPairName(w["key_name"]); r.set_RamRoleName(ram_role)
        # Hardened metadata from the start: the guest's boot must fetch its key with a token.
        r.set_HttpTokens("required")
        return r
    assert error(region, req(other))[0] == "InvalidRamRole.NotEcsRole"
    assert error(region, req(f"NoSuchRole{pid}"))[0] == "EntityNotExist.Role"
    iid = call(region, req(role))["InstanceIdSets"]["InstanceIdSet"][0]
    wait("Running", lambda: status(region, iid) == "Running")
    ap = AllocatePublicIpAddressRequest.AllocatePublicIpAddressRequest(); ap.set_InstanceId(iid)
    public = call(region, ap)["IpAddress"]
    listing = wait("SSH", lambda: (lambda x: x if x.returncode == 0 else None)(
        ssh(w["key"], public, TOKEN + "nimbus-metadata meta-data/ram/security-credentials/", timeout=5)), 120)
    assert listing.stdout.strip() == role
    got = ssh(w["key"], public, TOKEN + f"nimbus-metadata meta-data/ram/security-credentials/{role}")
    assert got.returncode == 0, got.stderr
    creds = json.loads(got.stdout)
    assert creds["Code"] == "Success" and creds["AccessKeyId"].startswith("STS.")
    assert ssh(w["key"], public, TOKEN + f"nimbus-metadata meta-data/ram/security-credentials/{other}").returncode != 0

    # The session works from anywhere, with the role's permissions only.
    session = AcsClient(region_id="local-1", verify=region.ca, credential=StsTokenCredential(
        creds["AccessKeyId"], creds["AccessKeySecret"], creds["SecurityToken"]))
    def as_instance(request):
        request.set_endpoint(region.https); request.set_protocol_type("https")
        return json.loads(session.do_action_with_exception(request))
    d = DescribeInstancesRequest.DescribeInstancesRequest(); d.set_InstanceIds(json.dumps([iid]))
    assert [i["InstanceId"] for i in as_instance(d)["Instances"]["Instance"]] == [iid]
    with pytest.raises(ServerException) as denied:
        v = CreateVpcRequest.CreateVpcRequest(); v.set_CidrBlock("198.18.200.0/24"); as_instance(v)
    assert denied.value.get_error_code() == "Forbidden.RAM"

    # Security hardening mode (IMDSv2): with HttpTokens=required every read needs a token from
    # PUT /latest/api/token; a forged token is refused; HttpEndpoint=disabled shuts the service.
    from aliyunsdkecs.request.v20140526 import ModifyInstanceMetadataOptionsRequest
    def metadata_options(**kw):
        mo = ModifyInstanceMetadataOptionsRequest.ModifyInstanceMetadataOptionsRequest(); mo.set_InstanceId(iid)
        mo.set_HttpEndpoint(kw.get("endpoint", "enabled"))
        if "tokens" in kw:
            mo.set_HttpTokens(kw["tokens"])
        call(region, mo)
    d = DescribeInstancesRequest.DescribeInstancesRequest(); d.set_InstanceIds(json.dumps([iid]))
    assert call(region, d)["Instances"]["Instance"][0]["MetadataOptions"]["HttpTokens"] == "required"
    plain = ssh(w["key"], public, "nimbus-metadata meta-data/instance-id")
    assert plain.returncode != 0 and " 401 " in plain.stderr, (plain.stdout, plain.stderr)
    with_token = ssh(w["key"], public, "T=$(nimbus-metadata --token 60) && NIMBUS_METADATA_TOKEN=$T "
                                       f"nimbus-metadata meta-data/ram/security-credentials/{role}")
    assert json.loads(with_token.stdout)["Code"] == "Success", (with_token.stdout, with_token.stderr)
    forged = ssh(w["key"], public, "NIMBUS_METADATA_TOKEN=forged nimbus-metadata meta-data/instance-id")
    assert forged.returncode != 0 and " 401 " in forged.stderr, (forged.stdout, forged.stderr)
    metadata_options(endpoint="disabled")
    off = ssh(w["key"], public, "T=$(nimbus-metadata --token 60); NIMBUS_METADATA_TOKEN=$T nimbus-metadata meta-data/instance-id")
    assert off.returncode != 0 and " 403 " in off.stderr, (off.stdout, off.stderr)
    metadata_options(endpoint="enabled", tokens="optional")
    assert ssh(w["key"], public, "nimbus-metadata meta-data/instance-id").stdout.strip() == iid

    # Who holds which role; a second role is refused per instance; detaching stops the credentials.
    dr = DescribeInstanceRamRoleRequest.DescribeInstanceRamRoleRequest(); dr.set_InstanceIds(json.dumps([iid]))
    assert call(region, dr)["InstanceRamRoleSets"]["InstanceRamRoleSet"] == [{"InstanceId": iid, "RamRoleName": role}]
    make_role(f"SecondEcs{pid}", {"Service": ["ecs.aliyuncs.com"]})
    a = AttachInstanceRamRoleRequest.AttachInstanceRamRoleRequest(); a.set_InstanceIds(json.dumps([iid])); a.set_RamRoleName(f"SecondEcs{pid}")
    out = call(region, a)
    assert out["FailCount"] == 1
    assert out["AttachInstanceRamRoleResults"]["AttachInstanceRamRoleResult"][0]["Code"] == "InvalidInstance.RamRoleAttached"
    dt = DetachInstanceRamRoleRequest.DetachInstanceRamRoleRequest(); dt.set_InstanceIds(json.dumps([iid])); dt.set_RamRoleName(role)
    assert call(region, dt)["FailCount"] == 0
    assert call(region, dr)["InstanceRamRoleSets"]["InstanceRamRoleSet"] == []
    assert ssh(w["key"], public, f"nimbus-metadata meta-data/ram/security-credentials/{role}").returncode != 0
    assert ssh(w["key"], public, "nimbus-metadata meta-data/ram/security-credentials/").returncode != 0

    # Issuing the session is in the account's ActionTrail, naming the instance and the role.
    q = LookupEventsRequest(); q.set_LookupAttributes([{"Key": "EventName", "Value": "AssumeRole"}])
    events = [e for e in call(region, q)["Events"] if iid in json.dumps(e)]
    assert events and events[0]["serviceName"] == "Sts", events
    dl = DeleteInstanceRequest.DeleteInstanceRequest(); dl.set_InstanceId(iid); dl.set_Force(True); call(region, dl)
