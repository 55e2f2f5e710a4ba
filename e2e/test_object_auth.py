"""Object door authentication, issue 13: a signature covers every header the service acts on, and a
presigned link lives at most 7 days and cannot start in the future. Through boto3 and oss2 against
the real region; the attacks are the SDKs' own URLs and requests with headers added after signing."""
import datetime
import hashlib
import hmac
import urllib.error
import urllib.parse
import urllib.request
import uuid

import boto3
import botocore
import oss2
import pytest
from botocore.config import Config

OSS_REGION = "local-1"
WEEK = 604800


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def s3_client(region):
    return boto3.client(
        "s3", endpoint_url=region.oss_http, region_name=OSS_REGION,
        aws_access_key_id=region.ak, aws_secret_access_key=region.secret,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def send(url, method="GET", data=None, headers=None):
    """(status, body) of one plain HTTP request, errors included."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def s3_bucket(region):
    """A bucket holding the signer's private object `secret.txt`."""
    s3 = s3_client(region)
    name = unique("auth")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="secret.txt", Body=b"the signer's private bytes")
    yield s3, name
    for o in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=o["Key"])
    s3.delete_bucket(Bucket=name)


def assert_absent(region, s3, name, key):
    """Neither the owner nor an anonymous reader finds `key`."""
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_object(Bucket=name, Key=key)
    assert e.value.response["Error"]["Code"] in ("404", "NoSuchKey")
    status, body = send(f"{region.oss_http}/{name}/{key}")
    assert status in (403, 404) and b"private bytes" not in body


# ---------------------------------------------------------------- headers outside the signature

def test_presigned_put_refuses_unsigned_copy_source_and_acl(region, s3_bucket):
    s3, name = s3_bucket
    url = s3.generate_presigned_url("put_object", Params={"Bucket": name, "Key": "public.txt"}, ExpiresIn=300)
    # The attack: the link's holder turns "upload here" into "copy the signer's private object
    # here and make it public".
    for extra in ({"x-amz-copy-source": f"/{name}/secret.txt", "x-amz-acl": "public-read"},
                  {"x-oss-copy-source": f"/{name}/secret.txt", "x-oss-object-acl": "public-read"},
                  {"x-amz-acl": "public-read"},
                  {"x-amz-meta-owner": "mallory"}):
        status, body = send(url, "PUT", b"", extra)
        assert status == 403, (extra, body)
        assert b"<Code>AccessDenied</Code>" in body and b"headers present in the request which were not signed" in body
        assert_absent(region, s3, name, "public.txt")
    # The link itself still works, also with the payload header some clients add unsigned.
    assert send(url, "PUT", b"uploaded", {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})[0] == 200
    assert s3.get_object(Bucket=name, Key="public.txt")["Body"].read() == b"uploaded"
    status, _ = send(f"{region.oss_http}/{name}/public.txt")
    assert status == 403, "an upload through a link is private"


def test_header_signed_sigv4_refuses_headers_outside_signed_headers(region, s3_bucket):
    s3, name = s3_bucket
    added = {}

    def add_after_signing(request, **_):
        for k, v in added.items():
            request.headers[k] = v

    s3.meta.events.register("before-send.s3.PutObject", add_after_signing)
    for extra in ({"x-amz-copy-source": f"/{name}/secret.txt", "x-amz-acl": "public-read"},
                  {"x-oss-object-acl": "public-read"}):
        added.clear()
        added.update(extra)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.put_object(Bucket=name, Key="public.txt", Body=b"")
        err = e.value.response["Error"]
        assert (e.value.response["ResponseMetadata"]["HTTPStatusCode"], err["Code"]) == (403, "AccessDenied"), err
        assert "not signed" in err["Message"]
        assert_absent(region, s3, name, "public.txt")
    # The same request with everything signed (botocore signs what it sends) is fine.
    added.clear()
    s3.put_object(Bucket=name, Key="public.txt", Body=b"ok", ACL="private", Metadata={"a": "b"})
    assert s3.get_object(Bucket=name, Key="public.txt")["Metadata"] == {"a": "b"}


def test_oss_presigned_links_sign_every_x_oss_header(region):
    """OSS v1 and v4 put every x-oss-* header into what is signed, links included: an added one
    breaks the signature."""
    auth = oss2.Auth(region.ak, region.secret)
    bucket = oss2.Bucket(auth, region.oss_http, unique("authoss"))
    bucket.create_bucket()
    try:
        bucket.put_object("secret.txt", b"the signer's private bytes")
        b4 = oss2.Bucket(oss2.AuthV4(region.ak, region.secret), region.oss_http, bucket.bucket_name,
                         region=OSS_REGION)
        # The Content-Type is signed too (urllib would otherwise send a form type).
        ctype = {"Content-Type": "text/plain"}
        for b in (bucket, b4):
            url = b.sign_url("PUT", "public.txt", 300, headers=ctype)
            status, body = send(url, "PUT", b"", {**ctype, "x-oss-copy-source": f"/{bucket.bucket_name}/secret.txt",
                                                  "x-oss-object-acl": "public-read"})
            assert status == 403 and b"SignatureDoesNotMatch" in body, body
            assert not bucket.object_exists("public.txt")
            assert send(url, "PUT", b"via link", ctype)[0] == 200
            bucket.delete_object("public.txt")
    finally:
        for o in oss2.ObjectIterator(bucket):
            bucket.delete_object(o.key)
        bucket.delete_bucket()


# ---------------------------------------------------------------- presigned lifetimes

def presign_s3(region, method, path, at, expires):
    """An S3 presigned URL signed at `at` (a datetime) for `expires` seconds, by hand: botocore
    always signs with the current time."""
    host = region.oss_http[len("http://"):]
    amz_date = at.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/{OSS_REGION}/s3/aws4_request"
    q = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": f"{region.ak}/{scope}",
         "X-Amz-Date": amz_date, "X-Amz-Expires": str(expires), "X-Amz-SignedHeaders": "host"}
    enc = lambda s: urllib.parse.quote(s, safe="-_.~")  # noqa: E731
    cq = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(q.items()))
    cr = f"{method}\n{path}\n{cq}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD"
    sts = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(cr.encode()).hexdigest()}"
    k = ("AWS4" + region.secret).encode()
    for part in (amz_date[:8], OSS_REGION, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return f"{region.oss_http}{path}?{cq}&X-Amz-Signature={hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()}"


def test_s3_presigned_links_live_at_most_a_week_and_not_from_the_future(region, s3_bucket):
    s3, name = s3_bucket
    path = f"/{name}/secret.txt"
    ten_years = s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "secret.txt"},
                                          ExpiresIn=10 * 365 * 86400)
    status, body = send(ten_years)
    assert status == 400 and b"AuthorizationQueryParametersError" in body, body
    assert b"X-Amz-Expires must be less than a week (in seconds) that is; 604800" in body
    week = s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "secret.txt"}, ExpiresIn=WEEK)
    assert send(week) == (200, b"the signer's private bytes")

    now = datetime.datetime.now(datetime.timezone.utc)
    assert send(presign_s3(region, "GET", path, now, 300))[0] == 200, "the hand-made link is right"
    # Within the 15-minute clock skew a link may start a little ahead of our clock.
    assert send(presign_s3(region, "GET", path, now + datetime.timedelta(minutes=10), 300))[0] == 200
    for ahead in (datetime.timedelta(minutes=20), datetime.timedelta(days=365)):
        status, body = send(presign_s3(region, "GET", path, now + ahead, 3600))
        assert status == 403 and b"<Code>AccessDenied</Code>" in body and b"not valid yet" in body, body
    # Ten years signed a day ago is still more than a week.
    status, body = send(presign_s3(region, "GET", path, now - datetime.timedelta(days=1), 10 * 365 * 86400))
    assert status == 400 and b"AuthorizationQueryParametersError" in body
    status, body = send(presign_s3(region, "GET", path, now, -1))
    assert status == 400 and b"AuthorizationQueryParametersError" in body


def test_oss_presigned_links_live_at_most_a_week(region):
    auth = oss2.Auth(region.ak, region.secret)
    bucket = oss2.Bucket(auth, region.oss_http, unique("authexp"))
    bucket.create_bucket()
    try:
        bucket.put_object("k", b"bytes")
        b4 = oss2.Bucket(oss2.AuthV4(region.ak, region.secret), region.oss_http, bucket.bucket_name,
                         region=OSS_REGION)
        for b in (bucket, b4):
            assert send(b.sign_url("GET", "k", WEEK)) == (200, b"bytes")
            status, body = send(b.sign_url("GET", "k", 10 * 365 * 86400))
            assert status == 403 and b"<Code>AccessDenied</Code>" in body and b"604800" in body, body
    finally:
        bucket.delete_object("k")
        bucket.delete_bucket()
