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
    time.sleep(2.5)
    with pytest.raises(ServerException) as e:
        do(session, DescribeRegionsRequest(), region.https)
    assert e.value.get_error_code() == "InvalidSecurityToken.Expired"
    cfg = open_api_models.Config(access_key_id=c["AccessKeyId"], access_key_secret=c["AccessKeySecret"],
                                 security_token=c["SecurityToken"], endpoint=region.http, protocol="http",
                                 region_id="local-1")
    with pytest.raises(TeaException) as e:
        EcsClient(cfg).describe_regions(ecs_models.DescribeRegionsRequest())
    assert e.value.code == "InvalidSecurityToken.Expired"
