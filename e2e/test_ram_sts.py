"""RAM and STS through aliyun-python-sdk-ram / -sts (v1 signatures over HTTPS, as those request
classes insist), and STS credentials used by both SDK generations."""
import json
import time
import uuid

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.auth.credentials import StsTokenCredential
from aliyunsdkcore.client import AcsClient
from aliyunsdkecs.request.v20140526.DescribeRegionsRequest import DescribeRegionsRequest
from aliyunsdkecs.request.v20140526.DescribeZonesRequest import DescribeZonesRequest
from aliyunsdkram.request.v20150501 import (AttachPolicyToRoleRequest, AttachPolicyToUserRequest,
                                            CreateAccessKeyRequest, CreatePolicyRequest, CreateRoleRequest,
                                            CreateUserRequest, ListUsersRequest)
from aliyunsdksts.request.v20150401.AssumeRoleRequest import AssumeRoleRequest
from aliyunsdksts.request.v20150401.GetCallerIdentityRequest import GetCallerIdentityRequest
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_tea_openapi import models as open_api_models
from Tea.exceptions import TeaException


def do(client, request, endpoint):
    request.set_endpoint(endpoint)
    request.set_protocol_type("https")
    return json.loads(client.do_action_with_exception(request))


def root(region):
    return AcsClient(region.ak, region.secret, "local-1", verify=region.ca)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_user_key_and_policy_grant_exactly_what_they_say(region):
    admin = root(region)
    name = unique("alice")
    r = CreateUserRequest.CreateUserRequest(); r.set_UserName(name)
    assert do(admin, r, region.https)["User"]["UserName"] == name
    r = CreateAccessKeyRequest.CreateAccessKeyRequest(); r.set_UserName(name)
    key = do(admin, r, region.https)["AccessKey"]
    policy = unique("regions-only")
    r = CreatePolicyRequest.CreatePolicyRequest(); r.set_PolicyName(policy)
    r.set_PolicyDocument(json.dumps({"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": "ecs:DescribeRegions", "Resource": "*"}]}))
    do(admin, r, region.https)
    r = AttachPolicyToUserRequest.AttachPolicyToUserRequest()
    r.set_PolicyType("Custom"); r.set_PolicyName(policy); r.set_UserName(name)
    do(admin, r, region.https)

    user = AcsClient(key["AccessKeyId"], key["AccessKeySecret"], "local-1", verify=region.ca)
    assert do(user, DescribeRegionsRequest(), region.https)["Regions"]["Region"][0]["RegionId"] == "local-1"
    with pytest.raises(ServerException) as e:
        do(user, DescribeZonesRequest(), region.https)
    assert (e.value.get_http_status(), e.value.get_error_code()) == (403, "Forbidden.RAM")
    with pytest.raises(ServerException) as e:
        do(user, ListUsersRequest.ListUsersRequest(), region.https)
    assert (e.value.get_http_status(), e.value.get_error_code()) == (403, "NoPermission")


def test_malformed_policy_is_refused(region):
    r = CreatePolicyRequest.CreatePolicyRequest(); r.set_PolicyName(unique("bad"))
    r.set_PolicyDocument('{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Nope":{"a":"b"}}}]}')
    with pytest.raises(ServerException) as e:
        do(root(region), r, region.https)
    assert e.value.get_error_code() == "MalformedPolicyDocument"


@pytest.fixture(scope="module")
def reader_role(region):
    admin = root(region)
    name = unique("reader")
    trust = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                             "Principal": {"RAM": [f"acs:ram::{region.account_id}:root"]}}]}
    r = CreateRoleRequest.CreateRoleRequest(); r.set_RoleName(name); r.set_AssumeRolePolicyDocument(json.dumps(trust))
    arn = do(admin, r, region.https)["Role"]["Arn"]
    r = AttachPolicyToRoleRequest.AttachPolicyToRoleRequest()
    r.set_PolicyType("System"); r.set_PolicyName("AliyunECSReadOnlyAccess"); r.set_RoleName(name)
    do(admin, r, region.https)
    return arn


def assume(region, arn, duration=None):
    r = AssumeRoleRequest(); r.set_RoleArn(arn); r.set_RoleSessionName("e2e-session")
    if duration:
        r.set_DurationSeconds(duration)
    return do(root(region), r, region.https)["Credentials"]


def test_assumed_role_works_with_the_v1_sdk(region, reader_role):
    c = assume(region, reader_role)
    assert c["AccessKeyId"].startswith("STS.")
    session = AcsClient(region_id="local-1", verify=region.ca,
                        credential=StsTokenCredential(c["AccessKeyId"], c["AccessKeySecret"], c["SecurityToken"]))
    assert do(session, DescribeRegionsRequest(), region.https)["Regions"]["Region"][0]["RegionId"] == "local-1"
    who = do(session, GetCallerIdentityRequest(), region.https)
    assert who["IdentityType"] == "AssumedRoleUser" and who["Arn"].endswith("/e2e-session")
    with pytest.raises(ServerException) as e:
        do(session, ListUsersRequest.ListUsersRequest(), region.https)
    assert e.value.get_error_code() == "NoPermission"


def test_assumed_role_works_with_tea_v3(region, reader_role):
    c = assume(region, reader_role)
    cfg = open_api_models.Config(access_key_id=c["AccessKeyId"], access_key_secret=c["AccessKeySecret"],
                                 security_token=c["SecurityToken"], endpoint=region.https, protocol="https",
                                 region_id="local-1", ca=region.ca)
    zones = EcsClient(cfg).describe_zones(ecs_models.DescribeZonesRequest(region_id="local-1"))
    assert len(zones.body.zones.zone) == 3


def test_assumed_role_credentials_expire(region, reader_role):
    c = assume(region, reader_role, duration=2)
    session = AcsClient(region_id="local-1", verify=region.ca,
                        credential=StsTokenCredential(c["AccessKeyId"], c["AccessKeySecret"], c["SecurityToken"]))
    do(session, DescribeRegionsRequest(), region.https)
    region.advance_clock(2.5)
    with pytest.raises(ServerException) as e:
        do(session, DescribeRegionsRequest(), region.https)
    assert e.value.get_error_code() == "InvalidSecurityToken.Expired"
    cfg = open_api_models.Config(access_key_id=c["AccessKeyId"], access_key_secret=c["AccessKeySecret"],
                                 security_token=c["SecurityToken"], endpoint=region.http, protocol="http",
                                 region_id="local-1")
    with pytest.raises(TeaException) as e:
        EcsClient(cfg).describe_regions(ecs_models.DescribeRegionsRequest())
    assert e.value.code == "InvalidSecurityToken.Expired"


def totp(seed_b32, t):
    """RFC 6238 (SHA-1, 6 digits, 30 s), independent of the server's implementation."""
    import base64
    import hashlib
    import hmac
    import struct
    key = base64.b32decode(seed_b32 + "=" * (-len(seed_b32) % 8))
    h = hmac.new(key, struct.pack(">Q", int(t) // 30), hashlib.sha1).digest()
    o = h[-1] & 15
    return "%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)


def test_mfa_bind_with_real_totp_codes_and_sign_in(region):
    from aliyunsdkram.request.v20150501 import (BindMFADeviceRequest, CreateLoginProfileRequest,
                                                CreateVirtualMFADeviceRequest, GetUserMFAInfoRequest,
                                                UnbindMFADeviceRequest)
    import urllib.parse
    import urllib.request
    admin = root(region)
    name = unique("mfa-user")
    r = CreateUserRequest.CreateUserRequest(); r.set_UserName(name); do(admin, r, region.https)
    r = CreateLoginProfileRequest.CreateLoginProfileRequest(); r.set_UserName(name); r.set_Password("Sup3r-Secret-1")
    do(admin, r, region.https)
    r = CreateVirtualMFADeviceRequest.CreateVirtualMFADeviceRequest(); r.set_VirtualMFADeviceName(name)
    dev = do(admin, r, region.https)["VirtualMFADevice"]
    if (time.time() + region.clock_offset()) % 30 >= 27:  # keep clear of a step boundary
        region.advance_clock(5)
    now = time.time() + region.clock_offset()
    r = BindMFADeviceRequest.BindMFADeviceRequest()
    r.set_SerialNumber(dev["SerialNumber"]); r.set_UserName(name)
    r.set_AuthenticationCode1(totp(dev["Base32StringSeed"], now - 30)); r.set_AuthenticationCode2(totp(dev["Base32StringSeed"], now))
    do(admin, r, region.https)
    r = GetUserMFAInfoRequest.GetUserMFAInfoRequest(); r.set_UserName(name)
    assert do(admin, r, region.https)["MFADevice"]["SerialNumber"] == dev["SerialNumber"]

    def sign_in(code):
        form = urllib.parse.urlencode({"AccountId": region.account_id, "UserName": name,
                                       "Password": "Sup3r-Secret-1", "MFACode": code}).encode()
        try:
            with urllib.request.urlopen(f"http://{region.http}/console/signin", data=form, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    status, body = sign_in(totp(dev["Base32StringSeed"], now + 30))
    assert status == 200 and body["MFAPresent"] is True, body
    status, body = sign_in(totp(dev["Base32StringSeed"], now + 30))
    assert (status, body["Code"]) == (403, "Login.InvalidMFACode"), "a code works once"
    r = UnbindMFADeviceRequest.UnbindMFADeviceRequest(); r.set_UserName(name)
    assert do(admin, r, region.https)["MFADevice"]["SerialNumber"] == dev["SerialNumber"]
