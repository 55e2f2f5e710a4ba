"""A bucket-policy Deny on a prefix holds against every OSS operation that touches objects under
it — single and batch, read and write, copy source and destination, multipart — for a RAM user
whose own policy allows `oss:*`; and nothing under the prefix changes."""
import json

import oss2
import pytest
from aliyunsdkram.request.v20150501 import (AttachPolicyToUserRequest, CreateAccessKeyRequest,
                                            CreatePolicyRequest, CreateUserRequest)

from test_oss import rpc, unique


@pytest.fixture
def setup(region):
    owner = oss2.Bucket(oss2.Auth(region.ak, region.secret), region.oss_http, unique("prefix"))
    owner.create_bucket()
    owner.put_object("protected/doc.txt", b"secret")
    owner.put_object("open/doc.txt", b"public")
    user = unique("mallory")
    rpc(region, _req(CreateUserRequest.CreateUserRequest(), UserName=user))
    pol = unique("oss-all")
    doc = json.dumps({"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:*", "Resource": "*"}]})
    rpc(region, _req(CreatePolicyRequest.CreatePolicyRequest(), PolicyName=pol, PolicyDocument=doc))
    rpc(region, _req(AttachPolicyToUserRequest.AttachPolicyToUserRequest(), UserName=user, PolicyType="Custom",
                     PolicyName=pol))
    key = rpc(region, _req(CreateAccessKeyRequest.CreateAccessKeyRequest(), UserName=user))["AccessKey"]
    policy = {"Version": "1", "Statement": [{
        "Effect": "Deny", "Action": ["oss:*"],
        "Principal": [f"acs:ram::{region.account_id}:user/{user}"],
        "Resource": [f"acs:oss:*:{region.account_id}:{owner.bucket_name}/protected/*"]}]}
    owner.put_bucket_policy(json.dumps(policy))
    mallory = oss2.Bucket(oss2.Auth(key["AccessKeyId"], key["AccessKeySecret"]), region.oss_http, owner.bucket_name)
    yield owner, mallory
    owner.delete_bucket_policy()
    for u in oss2.MultipartUploadIterator(owner):
        owner.abort_multipart_upload(u.key, u.upload_id)
    for o in oss2.ObjectIterator(owner):
        owner.delete_object(o.key)
    owner.delete_bucket()


def _req(r, **kw):
    for k, v in kw.items():
        getattr(r, f"set_{k}")(v)
    return r


def refusal(fn):
    """None when `fn` is refused with 403 AccessDenied, else what happened."""
    try:
        fn()
    except oss2.exceptions.ServerError as e:
        return None if (e.status, e.code) == (403, "AccessDenied") else f"{e.status} {e.code}"
    return "it succeeded"


def test_a_prefix_deny_holds_for_every_object_operation(setup):
    owner, m = setup
    p = "protected/doc.txt"
    upload = owner.init_multipart_upload("protected/mp.bin").upload_id
    owner.upload_part("protected/mp.bin", upload, 1, b"x" * 100)
    ops = {
        "PutObject": lambda: m.put_object("protected/new.txt", b"x"),
        "GetObject": lambda: m.get_object(p).read(),
        "HeadObject": lambda: m.head_object(p),
        "GetObjectMeta": lambda: m.get_object_meta(p),
        "DeleteObject": lambda: m.delete_object(p),
        "DeleteMultipleObjects": lambda: m.batch_delete_objects(["open/doc.txt", p]),
        "DeleteMultipleObjects (versions)": lambda: m.delete_object_versions(
            oss2.models.BatchDeleteObjectVersionList([oss2.models.BatchDeleteObjectVersion(p, "null")])),
        "CopyObject (destination)": lambda: m.copy_object(owner.bucket_name, "open/doc.txt", "protected/copy.txt"),
        "CopyObject (source)": lambda: m.copy_object(owner.bucket_name, p, "open/stolen.txt"),
        "AppendObject": lambda: m.append_object("protected/app.txt", 0, b"x"),
        "InitiateMultipartUpload": lambda: m.init_multipart_upload("protected/new.bin"),
        "UploadPart": lambda: m.upload_part("protected/mp.bin", upload, 2, b"y" * 100),
        "UploadPartCopy (source)": lambda: m.upload_part_copy(owner.bucket_name, p, (0, 5), "open/mp.bin",
                                                              m.init_multipart_upload("open/mp.bin").upload_id, 1),
        "ListParts": lambda: m.list_parts("protected/mp.bin", upload),
        "CompleteMultipartUpload": lambda: m.complete_multipart_upload("protected/mp.bin", upload, []),
        "AbortMultipartUpload": lambda: m.abort_multipart_upload("protected/mp.bin", upload),
        "PutObjectAcl": lambda: m.put_object_acl(p, oss2.OBJECT_ACL_PUBLIC_READ),
        "GetObjectAcl": lambda: m.get_object_acl(p),
        "PutObjectTagging": lambda: m.put_object_tagging(p, oss2.models.Tagging(oss2.models.TaggingRule())),
        "GetObjectTagging": lambda: m.get_object_tagging(p),
        "DeleteObjectTagging": lambda: m.delete_object_tagging(p),
    }
    failures = [f"{name}: {why}" for name, op in ops.items() if (why := refusal(op))]
    assert not failures, "not refused: " + "; ".join(failures)
    # The Allow is real: outside the prefix the same user may act.
    assert m.get_object("open/doc.txt").read() == b"public"
    # Nothing under the prefix changed; nothing was copied out of it.
    assert owner.get_object(p).read() == b"secret"
    assert owner.get_object_acl(p).acl == oss2.OBJECT_ACL_DEFAULT
    assert not owner.object_exists("open/stolen.txt")
    assert [o.key for o in oss2.ObjectIterator(owner, prefix="protected/")] == [p]
    assert owner.object_exists("open/doc.txt"), "a refused batch deletes none of its objects"
