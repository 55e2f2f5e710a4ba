"""OSS through the official clients: oss2 (v1 and v4 signatures), alibabacloud-oss-v2 and boto3,
against one region. Every client runs with its CRC/checksum validation on (the defaults)."""
import base64
import datetime
import hashlib
import json
import os
import pathlib
import socket
import time
import urllib.error
import urllib.request
import uuid

import alibabacloud_oss_v2 as ossv2
import boto3
import botocore
import oss2
import pytest
from aliyunsdkcore.client import AcsClient
from aliyunsdkkms.request.v20160120 import CreateKeyRequest, DisableKeyRequest, EnableKeyRequest
from aliyunsdkram.request.v20150501 import AttachPolicyToRoleRequest, CreatePolicyRequest, CreateRoleRequest
from aliyunsdksts.request.v20150401.AssumeRoleRequest import AssumeRoleRequest
from botocore.config import Config

OSS_REGION = "local-1"


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def rpc(region, request):
    request.set_endpoint(region.https)
    request.set_protocol_type("https")
    client = AcsClient(region.ak, region.secret, "local-1", verify=region.ca)
    return json.loads(client.do_action_with_exception(request))


@pytest.fixture
def auth(region):
    return oss2.Auth(region.ak, region.secret)


@pytest.fixture
def bucket(region, auth):
    b = oss2.Bucket(auth, region.oss_http, unique("e2e"))
    b.create_bucket()
    yield b
    for o in oss2.ObjectIterator(b):
        b.delete_object(o.key)
    for u in oss2.MultipartUploadIterator(b):
        b.abort_multipart_upload(u.key, u.upload_id)
    b.delete_bucket()


def s3_client(region, ak=None, secret=None, token=None, endpoint=None):
    return boto3.client(
        "s3", endpoint_url=endpoint or region.oss_http, region_name=OSS_REGION,
        aws_access_key_id=ak or region.ak, aws_secret_access_key=secret or region.secret, aws_session_token=token,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def v2_client(region, v1=False, endpoint=None):
    cfg = ossv2.config.load_default()
    cfg.credentials_provider = ossv2.credentials.StaticCredentialsProvider(region.ak, region.secret)
    cfg.region = OSS_REGION
    cfg.endpoint = endpoint or region.oss_http
    if v1:
        cfg.signature_version = "v1"
    return ossv2.Client(cfg)


def replica_files(region):
    return [p for p in (region.data_dir / "oss").rglob("*") if p.is_file()]


# ---------------------------------------------------------------- buckets

def test_bucket_lifecycle_with_oss2(region, auth):
    name = unique("bkt")
    b = oss2.Bucket(auth, region.oss_http, name)
    b.create_bucket(oss2.BUCKET_ACL_PRIVATE)
    b.create_bucket()  # creating one's own bucket again is a retry, not an error
    info = b.get_bucket_info()
    assert (info.name, info.acl.grant, info.location, info.owner.id) == (name, "private", "oss-local-1", region.account_id)
    assert b.get_bucket_location().location == "oss-local-1"
    assert name in [x.name for x in oss2.BucketIterator(oss2.Service(auth, region.oss_http))]
    b.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ)
    assert b.get_bucket_acl().acl == "public-read"
    b.put_object("k", b"x")
    with pytest.raises(oss2.exceptions.BucketNotEmpty):
        b.delete_bucket()
    b.delete_object("k")
    b.delete_bucket()
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.get_bucket_info()


def test_bucket_configuration_documents(bucket):
    bucket.put_bucket_tagging(oss2.models.Tagging(oss2.models.TaggingRule()))
    rule = oss2.models.TaggingRule(); rule.add("team", "storage")
    bucket.put_bucket_tagging(oss2.models.Tagging(rule))
    assert bucket.get_bucket_tagging().tag_set.tagging_rule == {"team": "storage"}
    cors = oss2.models.CorsRule(allowed_origins=["*"], allowed_methods=["GET"], max_age_seconds=100)
    bucket.put_bucket_cors(oss2.models.BucketCors([cors]))
    assert bucket.get_bucket_cors().rules[0].allowed_methods == ["GET"]
    bucket.delete_bucket_cors()
    with pytest.raises(oss2.exceptions.NoSuchCors):
        bucket.get_bucket_cors()
    bucket.put_bucket_website(oss2.models.BucketWebsite("index.html", "error.html"))
    assert bucket.get_bucket_website().index_file == "index.html"
    bucket.put_bucket_encryption(oss2.models.ServerSideEncryptionRule(sse_algorithm="AES256"))
    assert bucket.get_bucket_encryption().sse_algorithm == "AES256"
    bucket.delete_bucket_encryption()
    with pytest.raises(oss2.exceptions.NoSuchServerSideEncryptionRule):
        bucket.get_bucket_encryption()


def test_invalid_bucket_names_are_refused(region):
    # oss2 checks names itself; boto3 lets them through to the server.
    s3 = s3_client(region)
    for name in ["ab", "Upper", "-dash", "dash-", "under_score"]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.create_bucket(Bucket=name)
        assert (e.value.response["ResponseMetadata"]["HTTPStatusCode"], e.value.response["Error"]["Code"]) == \
            (400, "InvalidBucketName")


# ---------------------------------------------------------------- objects

@pytest.mark.parametrize("signing", ["v1", "v4"])
def test_object_operations_with_oss2(region, bucket, signing):
    b = bucket if signing == "v1" else oss2.Bucket(oss2.AuthV4(region.ak, region.secret), region.oss_http,
                                                     bucket.bucket_name, region=OSS_REGION)
    key = "dir/a b+c é.txt"
    body = os.urandom(300_000)
    r = b.put_object(key, body, headers={"Content-Type": "text/plain", "x-oss-meta-author": "alice",
                                          "x-oss-tagging": "a=1&b=2"})
    assert r.etag == hashlib.md5(body).hexdigest().upper() and r.crc is not None
    g = b.get_object(key)
    assert g.read() == body and g.headers["x-oss-meta-author"] == "alice" and g.content_type == "text/plain"
    assert b.get_object(key, byte_range=(10, 19)).read() == body[10:20]
    assert b.head_object(key).content_length == len(body)
    assert b.get_object_meta(key).content_length == len(body)
    assert b.get_object_tagging(key).tag_set.tagging_rule == {"a": "1", "b": "2"}
    assert b.object_exists(key) and not b.object_exists("missing")
    with pytest.raises(oss2.exceptions.NoSuchKey):
        b.get_object("missing")
    # Conditions.
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        b.get_object(key, headers={"If-Match": '"0000"'})
    with pytest.raises(oss2.exceptions.NotModified):
        b.get_object(key, headers={"If-None-Match": '"' + r.etag + '"'})
    # Copy keeps data and metadata; ACL on the object.
    b.copy_object(b.bucket_name, key, "copy.txt")
    assert b.get_object("copy.txt").read() == body
    assert b.head_object("copy.txt").headers["x-oss-meta-author"] == "alice"
    b.put_object_acl("copy.txt", oss2.OBJECT_ACL_PUBLIC_READ)
    assert b.get_object_acl("copy.txt").acl == "public-read"
    # Append.
    a = b.append_object("log.txt", 0, b"one,")
    a = b.append_object("log.txt", a.next_position, b"two")
    assert b.get_object("log.txt").read() == b"one,two"
    with pytest.raises(oss2.exceptions.PositionNotEqualToLength):
        b.append_object("log.txt", 1, b"x")
    with pytest.raises(oss2.exceptions.ObjectNotAppendable):
        b.append_object(key, len(body), b"x")
    # Listing with delimiter and url encoding (oss2 always asks for it).
    listing = b.list_objects(delimiter="/")
    assert listing.prefix_list == ["dir/"] and sorted(o.key for o in listing.object_list) == ["copy.txt", "log.txt"]
    assert [o.key for o in b.list_objects_v2(prefix="dir/").object_list] == [key]
    # Delete one, then many.
    b.delete_object("copy.txt")
    assert not b.object_exists("copy.txt")
    result = b.batch_delete_objects([key, "log.txt", "never-existed"])
    assert sorted(result.deleted_keys) == sorted([key, "log.txt", "never-existed"])
    assert list(oss2.ObjectIterator(b)) == []


def test_listing_pages_through_many_keys(bucket):
    keys = [f"p/{i:03d}" for i in range(25)] + ["q/1", "q/2", "top"]
    for k in keys:
        bucket.put_object(k, b"")
    assert [o.key for o in oss2.ObjectIterator(bucket, max_keys=7)] == sorted(keys)
    assert [o.key for o in oss2.ObjectIteratorV2(bucket, max_keys=4, prefix="p/")] == keys[:25]
    tops = [(o.key, o.is_prefix()) for o in oss2.ObjectIterator(bucket, delimiter="/", max_keys=1)]
    assert tops == [("p/", True), ("q/", True), ("top", False)]


def test_multipart_with_crc_check(bucket):
    key = "big/object.bin"
    parts_data = [os.urandom(200 << 10), os.urandom(200 << 10), os.urandom(50 << 10)]
    upload_id = bucket.init_multipart_upload(key).upload_id
    parts = []
    for i, data in enumerate(parts_data, start=1):
        r = bucket.upload_part(key, upload_id, i, data)
        parts.append(oss2.models.PartInfo(i, r.etag))
    assert [p.part_number for p in bucket.list_parts(key, upload_id).parts] == [1, 2, 3]
    assert upload_id in [u.upload_id for u in oss2.MultipartUploadIterator(bucket)]
    # oss2 combines the part CRCs itself and compares with the server's whole-object CRC.
    bucket.complete_multipart_upload(key, upload_id, parts)
    whole = b"".join(parts_data)
    assert bucket.get_object(key).read() == whole
    assert bucket.head_object(key).etag.endswith("-3")
    assert bucket.get_object(key, byte_range=(200 << 10, (200 << 10) + 9)).read() == whole[200 << 10:(200 << 10) + 10]
    # Aborting another upload frees it.
    other = bucket.init_multipart_upload("abandoned").upload_id
    bucket.upload_part("abandoned", other, 1, b"x" * 10)
    bucket.abort_multipart_upload("abandoned", other)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts("abandoned", other)


def test_multipart_refuses_bad_part_lists(bucket):
    key = "mp"
    uid = bucket.init_multipart_upload(key).upload_id
    e1 = bucket.upload_part(key, uid, 1, b"a" * 10).etag
    e2 = bucket.upload_part(key, uid, 2, b"b" * 10).etag
    with pytest.raises(oss2.exceptions.ServerError) as e:
        # (oss2 sorts the list itself; a repeated part number is out of order all the same.)
        bucket.complete_multipart_upload(key, uid, [oss2.models.PartInfo(1, e1), oss2.models.PartInfo(1, e1)])
    assert e.value.code == "InvalidPartOrder"
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.complete_multipart_upload(key, uid, [oss2.models.PartInfo(1, "0" * 32)])
    assert e.value.code == "InvalidPart"
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.complete_multipart_upload(key, uid, [oss2.models.PartInfo(1, e1), oss2.models.PartInfo(2, e2)])
    assert e.value.code == "EntityTooSmall"
    assert not bucket.object_exists(key)


def test_resumable_upload_and_download(bucket, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 << 20))
    oss2.resumable_upload(bucket, "resumable.bin", str(src), multipart_threshold=1 << 20, part_size=512 << 10,
                          num_threads=2, store=oss2.ResumableStore(root=str(tmp_path)))
    dst = tmp_path / "dst.bin"
    oss2.resumable_download(bucket, "resumable.bin", str(dst), multiget_threshold=1 << 20, part_size=512 << 10,
                            num_threads=2, store=oss2.ResumableDownloadStore(root=str(tmp_path)))
    assert dst.read_bytes() == src.read_bytes()


# ---------------------------------------------------------------- presigned links and STS

def test_presigned_links_v1_and_v4(region, bucket):
    bucket.put_object("shared.txt", b"shared bytes")
    url = bucket.sign_url("GET", "shared.txt", 60)
    assert urllib.request.urlopen(url).read() == b"shared bytes"
    # The Content-Type is part of what a v1 link signs (urllib would otherwise send a form type).
    put_url = bucket.sign_url("PUT", "uploaded.txt", 60, headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(urllib.request.Request(put_url, data=b"via link", method="PUT",
                                                  headers={"Content-Type": "text/plain"})).read()
    assert bucket.get_object("uploaded.txt").read() == b"via link"
    b4 = oss2.Bucket(oss2.AuthV4(region.ak, region.secret), region.oss_http, bucket.bucket_name, region=OSS_REGION)
    assert urllib.request.urlopen(b4.sign_url("GET", "shared.txt", 60)).read() == b"shared bytes"
    # Forged: a different key under the same signature.
    forged = url.replace("shared.txt", "uploaded.txt")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(forged)
    assert e.value.code == 403 and b"SignatureDoesNotMatch" in e.value.read()
    # Expired.
    old = bucket.sign_url("GET", "shared.txt", 1)
    region.advance_clock(2.1)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(old)
    assert e.value.code == 403 and b"Request has expired" in e.value.read()


def test_sts_credentials_with_oss2_and_boto3(region, bucket):
    role = unique("oss-reader")
    trust = {"Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow",
                            "Principal": {"RAM": [f"acs:ram::{region.account_id}:root"]}}], "Version": "1"}
    r = CreateRoleRequest.CreateRoleRequest(); r.set_RoleName(role); r.set_AssumeRolePolicyDocument(json.dumps(trust))
    arn = rpc(region, r)["Role"]["Arn"]
    policy = unique("read-bucket")
    r = CreatePolicyRequest.CreatePolicyRequest(); r.set_PolicyName(policy)
    r.set_PolicyDocument(json.dumps({"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": ["oss:GetObject", "oss:ListObjects"],
         "Resource": [f"acs:oss:*:{region.account_id}:{bucket.bucket_name}",
                      f"acs:oss:*:{region.account_id}:{bucket.bucket_name}/*"]}]}))
    rpc(region, r)
    r = AttachPolicyToRoleRequest.AttachPolicyToRoleRequest(); r.set_PolicyType("Custom")
    r.set_PolicyName(policy); r.set_RoleName(role)
    rpc(region, r)
    r = AssumeRoleRequest(); r.set_RoleArn(arn); r.set_RoleSessionName("e2e"); r.set_DurationSeconds(900)
    c = rpc(region, r)["Credentials"]
    bucket.put_object("readable.txt", b"for the role")

    sts_bucket = oss2.Bucket(oss2.StsAuth(c["AccessKeyId"], c["AccessKeySecret"], c["SecurityToken"]),
                             region.oss_http, bucket.bucket_name)
    assert sts_bucket.get_object("readable.txt").read() == b"for the role"
    assert [o.key for o in sts_bucket.list_objects().object_list] == ["readable.txt"]
    with pytest.raises(oss2.exceptions.AccessDenied):
        sts_bucket.put_object("nope.txt", b"x")
    url = sts_bucket.sign_url("GET", "readable.txt", 60)
    assert "security-token" in url and urllib.request.urlopen(url).read() == b"for the role"

    s3 = s3_client(region, c["AccessKeyId"], c["AccessKeySecret"], c["SecurityToken"])
    assert s3.get_object(Bucket=bucket.bucket_name, Key="readable.txt")["Body"].read() == b"for the role"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket=bucket.bucket_name, Key="nope.txt", Body=b"x")
    assert e.value.response["Error"]["Code"] == "AccessDenied"


# ---------------------------------------------------------------- ACLs and bucket policies

def test_acl_inheritance_for_anonymous_readers(region, bucket):
    bucket.put_object("obj.txt", b"maybe public")
    anon = oss2.Bucket(oss2.AnonymousAuth(), region.oss_http, bucket.bucket_name)
    with pytest.raises(oss2.exceptions.AccessDenied):
        anon.get_object("obj.txt")
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ)
    assert anon.get_object("obj.txt").read() == b"maybe public"
    with pytest.raises(oss2.exceptions.AccessDenied):
        anon.put_object("write.txt", b"x")
    # An object's own ACL overrides the bucket's.
    bucket.put_object_acl("obj.txt", oss2.OBJECT_ACL_PRIVATE)
    with pytest.raises(oss2.exceptions.AccessDenied):
        anon.get_object("obj.txt")
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PRIVATE)
    bucket.put_object("pub.txt", b"public object", headers={"x-oss-object-acl": "public-read"})
    assert anon.get_object("pub.txt").read() == b"public object"
    # Plain HTTP without any SDK, as a browser would.
    url = f"{region.oss_http}/{bucket.bucket_name}/pub.txt"
    assert urllib.request.urlopen(url).read() == b"public object"


def test_cross_account_access_only_through_bucket_policy(region, bucket):
    other = json.loads(region.admin("account", "create", "--name", unique("tenant")))
    theirs = oss2.Bucket(oss2.Auth(other["AccessKeyId"], other["AccessKeySecret"]), region.oss_http, bucket.bucket_name)
    bucket.put_object("report.csv", b"a,b\n")
    with pytest.raises(oss2.exceptions.AccessDenied):
        theirs.get_object("report.csv")
    policy = {"Version": "1", "Statement": [{
        "Effect": "Allow", "Principal": [other["AccountId"]], "Action": ["oss:GetObject"],
        "Resource": [f"acs:oss:*:{region.account_id}:{bucket.bucket_name}/*"]}]}
    bucket.put_bucket_policy(json.dumps(policy))
    assert json.loads(bucket.get_bucket_policy().policy) == policy
    assert theirs.get_object("report.csv").read() == b"a,b\n"
    with pytest.raises(oss2.exceptions.AccessDenied):
        theirs.put_object("report.csv", b"overwritten")
    with pytest.raises(oss2.exceptions.AccessDenied):
        theirs.list_objects()
    bucket.delete_bucket_policy()
    with pytest.raises(oss2.exceptions.AccessDenied):
        theirs.get_object("report.csv")
    # Their own buckets list without ours.
    assert bucket.bucket_name not in [b.name for b in oss2.BucketIterator(
        oss2.Service(oss2.Auth(other["AccessKeyId"], other["AccessKeySecret"]), region.oss_http))]


# ---------------------------------------------------------------- server-side encryption

def kms_key(region):
    return rpc(region, CreateKeyRequest.CreateKeyRequest())["KeyMetadata"]["KeyId"]


def test_sse_kms_round_trip_and_disabled_key(region, bucket):
    key_id = kms_key(region)
    secret = b"top secret payload " * 1000
    r = bucket.put_object("enc.bin", secret, headers={"x-oss-server-side-encryption": "KMS",
                                                       "x-oss-server-side-encryption-key-id": key_id})
    assert r.headers["x-oss-server-side-encryption"] == "KMS"
    assert bucket.get_object("enc.bin").read() == secret
    assert bucket.get_object("enc.bin", byte_range=(5, 14)).read() == secret[5:15]
    # Stored data is ciphertext: no replica file holds the plaintext.
    assert not any(b"top secret payload" in p.read_bytes() for p in replica_files(region))
    r = DisableKeyRequest.DisableKeyRequest(); r.set_KeyId(key_id); rpc(region, r)
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.get_object("enc.bin")
    assert e.value.status == 403
    r = EnableKeyRequest.EnableKeyRequest(); r.set_KeyId(key_id); rpc(region, r)
    assert bucket.get_object("enc.bin").read() == secret


def test_sse_bucket_default_applies_to_puts_and_multipart(region, bucket):
    key_id = kms_key(region)
    bucket.put_bucket_encryption(oss2.models.ServerSideEncryptionRule(sse_algorithm="KMS", kms_master_keyid=key_id))
    data = os.urandom(150 << 10)
    assert bucket.put_object("default.bin", data).headers["x-oss-server-side-encryption"] == "KMS"
    uid = bucket.init_multipart_upload("mp.bin").upload_id
    e1 = bucket.upload_part("mp.bin", uid, 1, data).etag
    e2 = bucket.upload_part("mp.bin", uid, 2, b"tail").etag
    bucket.complete_multipart_upload("mp.bin", uid, [oss2.models.PartInfo(1, e1), oss2.models.PartInfo(2, e2)])
    assert bucket.get_object("mp.bin").read() == data + b"tail"
    assert bucket.head_object("mp.bin").headers["x-oss-server-side-encryption-key-id"] == key_id
    bucket.put_object("aes.bin", b"service managed", headers={"x-oss-server-side-encryption": "AES256"})
    assert bucket.get_object("aes.bin").read() == b"service managed"


# ---------------------------------------------------------------- alibabacloud-oss-v2

@pytest.mark.parametrize("v1", [False, True])
def test_oss_v2_sdk(region, v1):
    client = v2_client(region, v1=v1)
    name = unique("v2")
    client.put_bucket(ossv2.PutBucketRequest(bucket=name, acl="private"))
    body = os.urandom(70_000)
    client.put_object(ossv2.PutObjectRequest(bucket=name, key="dir/a b.txt", body=body))
    got = client.get_object(ossv2.GetObjectRequest(bucket=name, key="dir/a b.txt"))
    assert got.body.read() == body
    assert client.head_object(ossv2.HeadObjectRequest(bucket=name, key="dir/a b.txt")).content_length == len(body)
    keys = [o.key for o in client.list_objects_v2(ossv2.ListObjectsV2Request(bucket=name)).contents]
    assert keys == ["dir/a b.txt"]
    pre = client.presign(ossv2.GetObjectRequest(bucket=name, key="dir/a b.txt"),
                         expires=datetime.timedelta(minutes=5))
    assert urllib.request.urlopen(pre.url).read() == body
    # Multipart through the SDK's uploader (CRC checked on upload and download by default).
    big = os.urandom(700 << 10)
    up = client.uploader(part_size=200 << 10)
    up.upload_from(ossv2.PutObjectRequest(bucket=name, key="big.bin"), reader=__import__("io").BytesIO(big))
    assert client.get_object(ossv2.GetObjectRequest(bucket=name, key="big.bin")).body.read() == big
    for k in ["dir/a b.txt", "big.bin"]:
        client.delete_object(ossv2.DeleteObjectRequest(bucket=name, key=k))
    client.delete_bucket(ossv2.DeleteBucketRequest(bucket=name))


# ---------------------------------------------------------------- boto3

def test_boto3_s3_operations(region):
    s3 = s3_client(region)
    name = unique("s3")
    s3.create_bucket(Bucket=name)
    s3.head_bucket(Bucket=name)
    body = os.urandom(100_000)
    s3.put_object(Bucket=name, Key="dir/x y.bin", Body=body, Metadata={"owner": "bob"}, ContentType="image/png")
    got = s3.get_object(Bucket=name, Key="dir/x y.bin")
    assert got["Body"].read() == body and got["Metadata"] == {"owner": "bob"} and got["ContentType"] == "image/png"
    assert s3.get_object(Bucket=name, Key="dir/x y.bin", Range="bytes=0-9")["Body"].read() == body[:10]
    assert s3.head_object(Bucket=name, Key="dir/x y.bin")["ContentLength"] == len(body)
    s3.copy_object(Bucket=name, Key="copy.bin", CopySource={"Bucket": name, "Key": "dir/x y.bin"})
    assert s3.get_object(Bucket=name, Key="copy.bin")["Body"].read() == body
    v1 = s3.list_objects(Bucket=name, Delimiter="/")
    assert [c["Prefix"] for c in v1["CommonPrefixes"]] == ["dir/"] and [o["Key"] for o in v1["Contents"]] == ["copy.bin"]
    v2 = s3.list_objects_v2(Bucket=name, MaxKeys=1)
    assert v2["IsTruncated"] and v2["KeyCount"] == 1
    rest = s3.list_objects_v2(Bucket=name, ContinuationToken=v2["NextContinuationToken"])
    assert [o["Key"] for o in v2["Contents"] + rest["Contents"]] == ["copy.bin", "dir/x y.bin"]
    s3.put_object_tagging(Bucket=name, Key="copy.bin", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    assert s3.get_object_tagging(Bucket=name, Key="copy.bin")["TagSet"] == [{"Key": "k", "Value": "v"}]
    url = s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "dir/x y.bin"}, ExpiresIn=60)
    assert urllib.request.urlopen(url).read() == body
    s3.put_object(Bucket=name, Key="kms.bin", Body=b"sealed", ServerSideEncryption="AES256")
    assert s3.head_object(Bucket=name, Key="kms.bin")["ServerSideEncryption"] == "AES256"
    # Multipart through s3transfer, with boto's default checksums.
    big = os.urandom(12 << 20)
    from boto3.s3.transfer import TransferConfig
    import io
    s3.upload_fileobj(io.BytesIO(big), name, "big.bin",
                      Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
    assert s3.get_object(Bucket=name, Key="big.bin")["Body"].read() == big
    out = s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": k} for k in
                                                             ["dir/x y.bin", "copy.bin", "kms.bin", "big.bin"]]})
    assert len(out["Deleted"]) == 4
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=name, Key="copy.bin")
    assert e.value.response["Error"]["Code"] == "NoSuchKey"
    s3.delete_bucket(Bucket=name)


def test_boto3_over_https_streams_aws_chunked(region):
    s3 = s3_client(region, endpoint=region.oss_https)
    s3._endpoint.http_session._verify = region.ca
    name = unique("s3tls")
    s3.create_bucket(Bucket=name)
    sent = []
    s3.meta.events.register("before-send.s3.PutObject",
                            lambda request, **_: sent.append(request.headers.get("X-Amz-Content-SHA256")))
    body = os.urandom(200_000)
    s3.put_object(Bucket=name, Key="k", Body=body)
    # botocore streams over TLS with a trailing CRC32: the server decoded and checked it.
    assert sent == [b"STREAMING-UNSIGNED-PAYLOAD-TRAILER"]
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == body
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)


# ---------------------------------------------------------------- bad input

def raw_request(region, method, path, headers, body):
    """Sends exactly these bytes (to declare a length and send less)."""
    host, port = region.oss_http[len("http://"):].split(":")
    s = socket.create_connection((host, int(port)))
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    s.sendall(head.encode() + b"\r\n" + body)
    s.shutdown(socket.SHUT_WR)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return data


def test_bad_input_is_refused_and_nothing_is_stored(region, bucket):
    before = set(replica_files(region))
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.put_object("k" * 1024, b"x")
    assert (e.value.status, e.value.code) == (400, "InvalidObjectName")
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.put_object("md5.txt", b"payload", headers={"Content-MD5": base64.b64encode(b"0" * 16).decode()})
    assert (e.value.status, e.value.code) == (400, "InvalidDigest")
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.put_object("huge.bin", b"\0" * ((8 << 20) + 1))
    assert e.value.code == "EntityTooLarge"
    # Malformed XML (anonymously, on a public-read-write bucket, so no SDK rewrites the body).
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ_WRITE)
    req = urllib.request.Request(f"{region.oss_http}/{bucket.bucket_name}/?delete", method="POST",
                                 data=b"<Delete><Object><Key>x</Key>")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 400 and b"<Code>MalformedXML</Code>" in e.value.read()
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PRIVATE)
    # A body shorter than its Content-Length: refused, nothing visible.
    url_path = f"/{bucket.bucket_name}/truncated.bin"
    reply = raw_request(region, "PUT", url_path, {"Content-Length": "1000", "Connection": "close"}, b"x" * 10)
    assert b" 400 " in reply.split(b"\r\n")[0] or b" 403 " in reply.split(b"\r\n")[0]
    assert not bucket.object_exists("truncated.bin")
    assert set(replica_files(region)) == before, "refused uploads leave no replica files behind"


def test_lifecycle_expiration_deletes_due_objects(bucket):
    bucket.put_object("logs/old.txt", b"old")
    bucket.put_object("keep/new.txt", b"new")
    rule = oss2.models.LifecycleRule("expire-logs", "logs/", status=oss2.models.LifecycleRule.ENABLED,
                                     expiration=oss2.models.LifecycleExpiration(
                                         created_before_date=datetime.date.today() + datetime.timedelta(days=1)))
    bucket.put_bucket_lifecycle(oss2.models.BucketLifecycle([rule]))
    assert bucket.get_bucket_lifecycle().rules[0].id == "expire-logs"
    deadline = time.time() + 15
    while bucket.object_exists("logs/old.txt") and time.time() < deadline:
        time.sleep(0.5)
    assert not bucket.object_exists("logs/old.txt")
    assert bucket.object_exists("keep/new.txt")


def test_every_oss_call_is_an_actiontrail_event(region, bucket):
    bucket.put_object("audited.txt", b"x")
    from aliyunsdkactiontrail.request.v20200706.LookupEventsRequest import LookupEventsRequest
    r = LookupEventsRequest()
    r.set_LookupAttributes([{"Key": "EventName", "Value": "PutObject"}])
    events = rpc(region, r)["Events"]
    assert any(f"{bucket.bucket_name}/audited.txt" in json.dumps(e) for e in events)


# ---------------------------------------------------------------- CORS, static website, virtual hosts

def test_cors_preflight_and_response_headers(region, bucket):
    cors = oss2.models.CorsRule(allowed_origins=["https://*.example.com"], allowed_methods=["GET", "PUT"],
                                allowed_headers=["x-oss-*", "content-type"], expose_headers=["ETag"],
                                max_age_seconds=120)
    bucket.put_bucket_cors(oss2.models.BucketCors([cors]))
    url = f"{region.oss_http}/{bucket.bucket_name}/page.txt"
    pre = urllib.request.Request(url, method="OPTIONS", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "x-oss-meta-a, content-type"})
    r = urllib.request.urlopen(pre)
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "PUT" in r.headers["Access-Control-Allow-Methods"] and r.headers["Access-Control-Max-Age"] == "120"
    for origin, method in [("https://evil.com", "GET"), ("https://app.example.com", "DELETE")]:
        bad = urllib.request.Request(url, method="OPTIONS", headers={"Origin": origin, "Access-Control-Request-Method": method})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad)
        assert e.value.code == 403
    bucket.put_object("page.txt", b"hi")
    got = bucket.get_object("page.txt", headers={"Origin": "https://app.example.com"})
    assert got.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert got.headers["Access-Control-Expose-Headers"] == "ETag"
    assert "Access-Control-Allow-Origin" not in bucket.get_object("page.txt", headers={"Origin": "https://evil.com"}).headers


def test_static_website_index_and_error_documents(region, bucket):
    bucket.put_object("index.html", b"<h1>home</h1>", headers={"Content-Type": "text/html"})
    bucket.put_object("docs/index.html", b"<h1>docs</h1>", headers={"Content-Type": "text/html"})
    bucket.put_object("404.html", b"<h1>not here</h1>", headers={"Content-Type": "text/html"})
    bucket.put_bucket_website(oss2.models.BucketWebsite("index.html", "404.html"))
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ)
    base = f"{region.oss_http}/{bucket.bucket_name}"
    assert urllib.request.urlopen(base + "/").read() == b"<h1>home</h1>"
    assert urllib.request.urlopen(base + "/docs/").read() == b"<h1>docs</h1>"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(base + "/missing.html")
    assert e.value.code == 404 and e.value.read() == b"<h1>not here</h1>"
    # Signed requests are API calls, not website visits: the listing is a listing.
    assert "index.html" in [o.key for o in bucket.list_objects().object_list]


def test_virtual_host_addressing(region, bucket):
    import http.client
    bucket.put_object("vhost.txt", b"by host name", headers={"x-oss-object-acl": "public-read"})
    host, port = region.oss_http[len("http://"):].split(":")
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("GET", "/vhost.txt", headers={"Host": f"{bucket.bucket_name}.oss.local-1.nimbus.internal:{port}"})
    r = conn.getresponse()
    assert (r.status, r.read()) == (200, b"by host name")


# ---------------------------------------------------------------- versioning

def test_versioning_with_oss2(bucket):
    bucket.put_bucket_versioning(oss2.models.BucketVersioningConfig(oss2.BUCKET_VERSIONING_ENABLE))
    assert bucket.get_bucket_versioning().status == "Enabled"
    v1 = bucket.put_object("doc.txt", b"first").versionid
    v2 = bucket.put_object("doc.txt", b"second").versionid
    assert v1 and v2 and v1 != v2
    assert bucket.get_object("doc.txt").read() == b"second"
    assert bucket.get_object("doc.txt", params={"versionId": v1}).read() == b"first"
    deleted = bucket.delete_object("doc.txt")
    assert deleted.delete_marker and deleted.versionid
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object("doc.txt")
    listing = bucket.list_object_versions()
    assert [(v.key, v.versionid, v.is_latest) for v in listing.versions] == [("doc.txt", v2, False), ("doc.txt", v1, False)]
    assert [(m.key, m.versionid, m.is_latest) for m in listing.delete_marker] == [("doc.txt", deleted.versionid, True)]
    # Removing the delete marker restores the newest version; removing a version is permanent.
    bucket.delete_object("doc.txt", params={"versionId": deleted.versionid})
    assert bucket.get_object("doc.txt").read() == b"second"
    bucket.delete_object("doc.txt", params={"versionId": v2})
    assert bucket.get_object("doc.txt").read() == b"first"
    # Copy from an old version.
    bucket.put_object("doc.txt", b"third")
    bucket.copy_object(bucket.bucket_name, "doc.txt", "restored.txt", params={"versionId": v1})
    assert bucket.get_object("restored.txt").read() == b"first"
    # Clean up every version so the fixture can delete the bucket.
    for v in bucket.list_object_versions().versions:
        bucket.delete_object(v.key, params={"versionId": v.versionid})
    for m in bucket.list_object_versions().delete_marker:
        bucket.delete_object(m.key, params={"versionId": m.versionid})
    assert bucket.list_object_versions().versions == []


def test_versioning_with_boto3(region):
    s3 = s3_client(region)
    name = unique("s3ver")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    a = s3.put_object(Bucket=name, Key="k", Body=b"a")["VersionId"]
    b = s3.put_object(Bucket=name, Key="k", Body=b"b")["VersionId"]
    assert s3.get_object(Bucket=name, Key="k", VersionId=a)["Body"].read() == b"a"
    s3.delete_object(Bucket=name, Key="k")
    versions = s3.list_object_versions(Bucket=name)
    assert [v["VersionId"] for v in versions["Versions"]] == [b, a]
    assert len(versions["DeleteMarkers"]) == 1 and versions["DeleteMarkers"][0]["IsLatest"]
    # Suspended: new writes replace the null version; old versions stay.
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Suspended"})
    assert s3.put_object(Bucket=name, Key="k", Body=b"c").get("VersionId") in (None, "null")
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"c"
    everything = s3.list_object_versions(Bucket=name)
    s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": v["Key"], "VersionId": v["VersionId"]}
                                                         for v in everything["Versions"] + everything["DeleteMarkers"]]})
    assert "Versions" not in s3.list_object_versions(Bucket=name)
    s3.delete_bucket(Bucket=name)


def test_sse_kms_without_a_key_uses_the_oss_managed_key(region, bucket):
    r = bucket.put_object("managed.bin", b"under the default key", headers={"x-oss-server-side-encryption": "KMS"})
    key_id = r.headers["x-oss-server-side-encryption-key-id"]
    assert bucket.get_object("managed.bin").read() == b"under the default key"
    # The same key every time, visible to the account under its reserved alias.
    r2 = bucket.put_object("managed2.bin", b"again", headers={"x-oss-server-side-encryption": "KMS"})
    assert r2.headers["x-oss-server-side-encryption-key-id"] == key_id
    from aliyunsdkkms.request.v20160120 import ListAliasesRequest
    aliases = rpc(region, ListAliasesRequest.ListAliasesRequest())["Aliases"]["Alias"]
    assert {"AliasName": "alias/acs/oss", "KeyId": key_id}.items() <= next(
        a for a in aliases if a["AliasName"] == "alias/acs/oss").items()


def test_upload_part_copy_with_oss2_and_boto3(region, bucket):
    source = os.urandom(300 << 10)
    bucket.put_object("source.bin", source)
    uid = bucket.init_multipart_upload("assembled.bin").upload_id
    p1 = bucket.upload_part_copy(bucket.bucket_name, "source.bin", (0, (200 << 10) - 1), "assembled.bin", uid, 1)
    p2 = bucket.upload_part("assembled.bin", uid, 2, b"tail")
    bucket.complete_multipart_upload("assembled.bin", uid, [oss2.models.PartInfo(1, p1.etag), oss2.models.PartInfo(2, p2.etag)])
    assert bucket.get_object("assembled.bin").read() == source[:200 << 10] + b"tail"

    s3 = s3_client(region)
    up = s3.create_multipart_upload(Bucket=bucket.bucket_name, Key="s3-assembled.bin")["UploadId"]
    c1 = s3.upload_part_copy(Bucket=bucket.bucket_name, Key="s3-assembled.bin", UploadId=up, PartNumber=1,
                             CopySource={"Bucket": bucket.bucket_name, "Key": "source.bin"},
                             CopySourceRange="bytes=100-204899")["CopyPartResult"]["ETag"]
    c2 = s3.upload_part(Bucket=bucket.bucket_name, Key="s3-assembled.bin", UploadId=up, PartNumber=2, Body=b"end")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket.bucket_name, Key="s3-assembled.bin", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": c1}, {"PartNumber": 2, "ETag": c2}]})
    assert s3.get_object(Bucket=bucket.bucket_name, Key="s3-assembled.bin")["Body"].read() == source[100:204900] + b"end"
