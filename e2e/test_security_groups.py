"""ECS security groups through aliyun-python-sdk-ecs: groups in a VPC, ingress and egress rules in
both the flat and the Permissions.N forms, priorities and policies, revocation, group-to-group
rules, and the documented errors for bad input."""
import json

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkecs.request.v20140526 import (AuthorizeSecurityGroupEgressRequest, AuthorizeSecurityGroupRequest,
                                            CreateSecurityGroupRequest, DeleteSecurityGroupRequest,
                                            DescribeSecurityGroupAttributeRequest, DescribeSecurityGroupsRequest,
                                            RevokeSecurityGroupRequest)
from aliyunsdkvpc.request.v20160428 import CreateVpcRequest, DeleteVpcRequest


def call(region, request):
    request.set_endpoint(region.https)
    request.set_protocol_type("https")
    return json.loads(AcsClient(region.ak, region.secret, "local-1", verify=region.ca).do_action_with_exception(request))


def error(region, request):
    with pytest.raises(ServerException) as e:
        call(region, request)
    return e.value.get_http_status(), e.value.get_error_code()


@pytest.fixture
def vpc(region):
    r = CreateVpcRequest.CreateVpcRequest(); r.set_CidrBlock("198.18.64.0/20")
    vpc_id = call(region, r)["VpcId"]
    yield vpc_id
    d = DeleteVpcRequest.DeleteVpcRequest(); d.set_VpcId(vpc_id); call(region, d)


def rules(region, sg, direction="all"):
    r = DescribeSecurityGroupAttributeRequest.DescribeSecurityGroupAttributeRequest()
    r.set_SecurityGroupId(sg); r.set_Direction(direction)
    return call(region, r)["Permissions"]["Permission"]


def test_groups_rules_and_revocation(region, vpc):
    c = CreateSecurityGroupRequest.CreateSecurityGroupRequest(); c.set_VpcId(vpc); c.set_SecurityGroupName("web")
    web = call(region, c)["SecurityGroupId"]
    c.set_SecurityGroupName("db")
    db = call(region, c)["SecurityGroupId"]

    a = AuthorizeSecurityGroupRequest.AuthorizeSecurityGroupRequest(); a.set_SecurityGroupId(web)
    a.set_IpProtocol("tcp"); a.set_PortRange("22/22"); a.set_SourceCidrIp("198.18.0.0/15"); a.set_Priority(10)
    call(region, a)
    a2 = AuthorizeSecurityGroupRequest.AuthorizeSecurityGroupRequest(); a2.set_SecurityGroupId(web)
    a2.set_Permissions([{"IpProtocol": "ICMP", "PortRange": "-1/-1", "SourceCidrIp": "0.0.0.0/0", "Policy": "drop",
                         "Priority": "100"},
                        {"IpProtocol": "TCP", "PortRange": "80/443", "SourceGroupId": db}])
    call(region, a2)
    e = AuthorizeSecurityGroupEgressRequest.AuthorizeSecurityGroupEgressRequest(); e.set_SecurityGroupId(web)
    e.set_IpProtocol("all"); e.set_PortRange("-1/-1"); e.set_DestCidrIp("10.0.0.0/8"); e.set_Policy("drop")
    call(region, e)
    got = rules(region, web)
    assert sorted((r["Direction"], r["IpProtocol"], r["PortRange"], r["Policy"], r["Priority"]) for r in got) == sorted([
        ("ingress", "TCP", "22/22", "accept", "10"), ("ingress", "ICMP", "-1/-1", "drop", "100"),
        ("ingress", "TCP", "80/443", "accept", "1"), ("egress", "ALL", "-1/-1", "drop", "1")])
    assert len(rules(region, web, "egress")) == 1
    assert all(r["SecurityGroupRuleId"].startswith("sgr-") for r in got)
    # The same rule twice is refused; revoking by its fields removes it.
    assert error(region, a) == (400, "InvalidPermission.Duplicate")
    rv = RevokeSecurityGroupRequest.RevokeSecurityGroupRequest(); rv.set_SecurityGroupId(web)
    rv.set_IpProtocol("tcp"); rv.set_PortRange("22/22"); rv.set_SourceCidrIp("198.18.0.0/15")
    call(region, rv)
    assert not any(r["PortRange"] == "22/22" for r in rules(region, web))

    busy = DeleteVpcRequest.DeleteVpcRequest(); busy.set_VpcId(vpc)
    assert error(region, busy) == (400, "DependencyViolation.SecurityGroup")
    d = DescribeSecurityGroupsRequest.DescribeSecurityGroupsRequest(); d.set_VpcId(vpc)
    listed = call(region, d)["SecurityGroups"]["SecurityGroup"]
    assert sorted(g["SecurityGroupName"] for g in listed) == ["db", "web"]
    # db is referenced by a rule of web: it cannot go first.
    rm = DeleteSecurityGroupRequest.DeleteSecurityGroupRequest(); rm.set_SecurityGroupId(db)
    assert error(region, rm) == (403, "DependencyViolation")
    for g in (web, db):
        rm = DeleteSecurityGroupRequest.DeleteSecurityGroupRequest(); rm.set_SecurityGroupId(g); call(region, rm)


def test_bad_rules_get_documented_errors(region, vpc):
    c = CreateSecurityGroupRequest.CreateSecurityGroupRequest(); c.set_VpcId(vpc)
    sg = call(region, c)["SecurityGroupId"]
    cases = [
        ({"IpProtocol": "tcp", "PortRange": "0/22"}, "InvalidIpPortRange.Malformed"),
        ({"IpProtocol": "tcp", "PortRange": "100/99"}, "InvalidIpPortRange.Malformed"),
        ({"IpProtocol": "udp", "PortRange": "1/70000"}, "InvalidIpPortRange.Malformed"),
        ({"IpProtocol": "icmp", "PortRange": "22/22"}, "InvalidIpPortRange.Malformed"),
        ({"IpProtocol": "sctp", "PortRange": "-1/-1"}, "InvalidIpProtocol.Malformed"),
        ({"IpProtocol": "tcp", "PortRange": "22/22", "Priority": "101"}, "InvalidPriority.Malformed"),
        ({"IpProtocol": "tcp", "PortRange": "22/22", "Policy": "maybe"}, "InvalidPolicy.Malformed"),
    ]
    for fields, code in cases:
        a = AuthorizeSecurityGroupRequest.AuthorizeSecurityGroupRequest(); a.set_SecurityGroupId(sg)
        a.set_Permissions([dict(fields, SourceCidrIp="198.18.0.0/16")])
        assert error(region, a) == (400, code), fields
    missing = AuthorizeSecurityGroupRequest.AuthorizeSecurityGroupRequest(); missing.set_SecurityGroupId("sg-nope00000000000000")
    missing.set_IpProtocol("tcp"); missing.set_PortRange("22/22"); missing.set_SourceCidrIp("198.18.0.0/16")
    assert error(region, missing) == (404, "InvalidSecurityGroupId.NotFound")
    nowhere = CreateSecurityGroupRequest.CreateSecurityGroupRequest(); nowhere.set_VpcId("vpc-nope00000000000000")
    assert error(region, nowhere) == (404, "InvalidVpcId.NotFound")
    assert rules(region, sg) == [], "nothing was stored by the refused requests"
    rm = DeleteSecurityGroupRequest.DeleteSecurityGroupRequest(); rm.set_SecurityGroupId(sg); call(region, rm)


def test_key_pairs_create_import_describe_delete(region, tmp_path):
    import subprocess
    from aliyunsdkecs.request.v20140526 import (CreateKeyPairRequest, DeleteKeyPairsRequest, DescribeKeyPairsRequest,
                                                ImportKeyPairRequest)
    c = CreateKeyPairRequest.CreateKeyPairRequest(); c.set_KeyPairName("made-here")
    made = call(region, c)
    key = tmp_path / "id"
    key.write_text(made["PrivateKeyBody"]); key.chmod(0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(key)], capture_output=True, text=True, check=True).stdout
    fp = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", str(key)], capture_output=True, text=True, check=True).stdout
    assert f"MD5:{made['KeyPairFingerPrint']}" in fp
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(tmp_path / "mine")], check=True)
    pub = (tmp_path / "mine.pub").read_text().strip()
    i = ImportKeyPairRequest.ImportKeyPairRequest(); i.set_KeyPairName("brought"); i.set_PublicKeyBody(pub)
    imported = call(region, i)
    theirs = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", str(tmp_path / "mine.pub")], capture_output=True,
                            text=True, check=True).stdout
    assert f"MD5:{imported['KeyPairFingerPrint']}" in theirs
    assert error(region, i) == (400, "KeyPair.AlreadyExist")
    bad = ImportKeyPairRequest.ImportKeyPairRequest(); bad.set_KeyPairName("bad"); bad.set_PublicKeyBody("ssh-rsa nope")
    assert error(region, bad) == (400, "InvalidKeyPair.FormatError")
    listed = call(region, DescribeKeyPairsRequest.DescribeKeyPairsRequest())["KeyPairs"]["KeyPair"]
    by_name = {k["KeyPairName"]: k for k in listed}
    assert by_name["made-here"]["PublicKey"].split()[1] == derived.split()[1], "only the public half is kept"
    assert set(by_name) >= {"made-here", "brought"}
    d = DeleteKeyPairsRequest.DeleteKeyPairsRequest(); d.set_KeyPairNames(json.dumps(["made-here", "brought"]))
    call(region, d)
    assert not {"made-here", "brought"} & {k["KeyPairName"] for k in
                                          call(region, DescribeKeyPairsRequest.DescribeKeyPairsRequest())["KeyPairs"]["KeyPair"]}
