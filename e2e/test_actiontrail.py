"""ActionTrail through aliyun-python-sdk-actiontrail: LookupEvents finds the calls just made,
including a denied one, with the caller's identity and redacted parameters."""
import json
import uuid

import pytest
from aliyunsdkactiontrail.request.v20200706.LookupEventsRequest import LookupEventsRequest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkecs.request.v20140526.DescribeZonesRequest import DescribeZonesRequest
from aliyunsdkram.request.v20150501 import CreateAccessKeyRequest, CreateUserRequest


def do(client, request, endpoint, protocol="http"):
    request.set_endpoint(endpoint)
    request.set_protocol_type(protocol)
    return json.loads(client.do_action_with_exception(request))


def test_lookup_events_finds_calls_including_a_denied_one(region):
    root = AcsClient(region.ak, region.secret, "local-1")
    name = f"trail-{uuid.uuid4().hex[:8]}"
    r = CreateUserRequest.CreateUserRequest(); r.set_UserName(name)
    do(root, r, region.http)
    r = CreateAccessKeyRequest.CreateAccessKeyRequest(); r.set_UserName(name)
    key = do(root, r, region.http)["AccessKey"]
    user = AcsClient(key["AccessKeyId"], key["AccessKeySecret"], "local-1")
    with pytest.raises(ServerException) as e:
        do(user, DescribeZonesRequest(), region.http)
    assert e.value.get_error_code() == "Forbidden.RAM"

    q = LookupEventsRequest()
    q.set_LookupAttributes([{"Key": "User", "Value": name}])
    events = do(root, q, region.http)["Events"]
    assert [ev["eventName"] for ev in events] == ["DescribeZones"]
    ev = events[0]
    assert ev["errorCode"] == "Forbidden.RAM"
    assert ev["userIdentity"]["accessKeyId"] == key["AccessKeyId"]
    assert ev["userIdentity"]["accountId"] == region.account_id
    assert ev["requestParameters"]["Signature"] == "******"
    assert ev["serviceName"] == "Ecs" and ev["eventType"] == "ApiCall"

    q = LookupEventsRequest()
    q.set_LookupAttributes([{"Key": "EventName", "Value": "CreateAccessKey"}])
    created = do(root, q, region.http)["Events"]
    assert any(ev["requestParameters"].get("UserName") == name for ev in created)
