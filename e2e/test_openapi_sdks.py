"""The official Alibaba Cloud Python SDKs against a Nimbus region, changing only the endpoint.

aliyun-python-sdk-core signs with v1 (HMAC-SHA1); alibabacloud-tea-openapi signs with V3
(ACS3-HMAC-SHA256) by default, or v1 with signature_algorithm='v2'. Both over HTTP and HTTPS
(verified against the region's CA).
"""
import json
import subprocess
import sys

import pytest
from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest
from aliyunsdkecs.request.v20140526.DescribeRegionsRequest import DescribeRegionsRequest
from aliyunsdkecs.request.v20140526.DescribeZonesRequest import DescribeZonesRequest
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_tea_openapi import models as open_api_models
from Tea.exceptions import TeaException, UnretryableException


# ---- aliyun-python-sdk-core (signature v1) ---------------------------------------------------

def v1_call(client, request, endpoint, protocol):
    request.set_endpoint(endpoint)
    request.set_protocol_type(protocol)
    return json.loads(client.do_action_with_exception(request))


def test_v1_http_describe_regions(region):
    body = v1_call(AcsClient(region.ak, region.secret, "local-1"), DescribeRegionsRequest(), region.http, "http")
    assert body["Regions"]["Region"][0]["RegionId"] == "local-1"
    assert body["Regions"]["Region"][0]["Status"] == "available"
    assert len(body["RequestId"]) == 36


def test_v1_https_with_the_region_ca(region):
    client = AcsClient(region.ak, region.secret, "local-1", verify=region.ca)
    body = v1_call(client, DescribeZonesRequest(), region.https, "https")
    assert [z["ZoneId"] for z in body["Zones"]["Zone"]] == ["local-1a", "local-1b", "local-1c"]


def test_v1_https_refuses_an_untrusted_certificate(region):
    client = AcsClient(region.ak, region.secret, "local-1")  # certifi's roots, not ours
    with pytest.raises(ClientException) as e:
        v1_call(client, DescribeRegionsRequest(), region.https, "https")
    assert e.value.get_error_code() == "SDK.HttpError"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_v1_common_request(region, method):
    q = CommonRequest(domain=region.http, version="2014-05-26", action_name="DescribeRegions")
    q.set_method(method)
    q.set_protocol_type("http")
    body = json.loads(AcsClient(region.ak, region.secret, "local-1").do_action_with_exception(q))
    assert body["Regions"]["Region"][0]["RegionId"] == "local-1"


def test_v1_wrong_secret_is_recognised_by_the_sdk(region):
    # The SDK compares the server's string to sign with its own; only an exact match makes it
    # rewrite the code to InvalidAccessKeySecret.
    with pytest.raises(ServerException) as e:
        v1_call(AcsClient(region.ak, "wrong-secret", "local-1"), DescribeRegionsRequest(), region.http, "http")
    assert e.value.get_http_status() == 400
    assert e.value.get_error_code() == "InvalidAccessKeySecret"


def test_v1_unknown_access_key(region):
    with pytest.raises(ServerException) as e:
        v1_call(AcsClient("LTAInosuchkey0000000000", "x", "local-1"), DescribeRegionsRequest(), region.http, "http")
    assert (e.value.get_http_status(), e.value.get_error_code()) == (404, "InvalidAccessKeyId.NotFound")
    assert e.value.get_request_id()


def test_v1_business_error(region):
    r = DescribeZonesRequest()
    r.add_query_param("RegionId", "cn-hangzhou")
    with pytest.raises(ServerException) as e:
        v1_call(AcsClient(region.ak, region.secret, "cn-hangzhou"), r, region.http, "http")
    assert e.value.get_error_code() == "InvalidRegionId.NotFound"


# ---- alibabacloud-tea-openapi (signature V3, and v1 via signature_algorithm='v2') -----------

def tea(region, protocol, secret=None, **kw):
    endpoint = region.https if protocol == "https" else region.http
    cfg = open_api_models.Config(
        access_key_id=region.ak,
        access_key_secret=secret or region.secret,
        endpoint=endpoint,
        protocol=protocol,
        region_id="local-1",
        **kw,
    )
    if protocol == "https":
        cfg.ca = region.ca
    return EcsClient(cfg)


@pytest.mark.parametrize("protocol", ["http", "https"])
def test_tea_v3(region, protocol):
    resp = tea(region, protocol).describe_regions(ecs_models.DescribeRegionsRequest())
    assert resp.status_code == 200
    assert resp.body.regions.region[0].region_id == "local-1"
    zones = tea(region, protocol).describe_zones(ecs_models.DescribeZonesRequest(region_id="local-1"))
    assert [z.zone_id for z in zones.body.zones.zone] == ["local-1a", "local-1b", "local-1c"]


@pytest.mark.parametrize("protocol", ["http", "https"])
def test_tea_v2_signature(region, protocol):
    resp = tea(region, protocol, signature_algorithm="v2").describe_regions(ecs_models.DescribeRegionsRequest())
    assert resp.body.regions.region[0].region_endpoint == "ecs.local-1.nimbus.internal"


def test_tea_https_refuses_an_untrusted_certificate(region):
    # In a fresh interpreter: the SDK pools connections per host, so in this process it could reuse
    # a TLS connection that an earlier test opened with the region's CA.
    script = f"""
from alibabacloud_tea_openapi import models as m
from alibabacloud_ecs20140526.client import Client
from alibabacloud_ecs20140526 import models as em
from Tea.exceptions import UnretryableException
cfg = m.Config(access_key_id={region.ak!r}, access_key_secret={region.secret!r},
               endpoint={region.https!r}, protocol="https", region_id="local-1")
try:
    Client(cfg).describe_regions(em.DescribeRegionsRequest())
    print("ACCEPTED")
except UnretryableException as e:
    print("REFUSED", "CERTIFICATE_VERIFY_FAILED" in str(e))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "REFUSED True", out.stdout + out.stderr


def test_tea_v3_wrong_secret(region):
    with pytest.raises(TeaException) as e:
        tea(region, "http", secret="wrong").describe_regions(ecs_models.DescribeRegionsRequest())
    assert e.value.code == "SignatureDoesNotMatch"
    assert e.value.data["statusCode"] == 400 if "statusCode" in (e.value.data or {}) else True
    assert "server string to sign is:ACS3-HMAC-SHA256" in e.value.message


def test_tea_v3_business_error_fields(region):
    with pytest.raises(TeaException) as e:
        tea(region, "http").describe_zones(ecs_models.DescribeZonesRequest(region_id="nowhere-1"))
    assert e.value.code == "InvalidRegionId.NotFound"
    assert e.value.data["RequestId"] and e.value.data["HostId"] == "ecs.local-1.nimbus.internal"
