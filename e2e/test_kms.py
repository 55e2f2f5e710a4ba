"""KMS through aliyun-python-sdk-kms (HTTPS, verified against the region CA): the key lifecycle,
decryption after rotation, EncryptionContext binding, and keys that refuse use."""
import json

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkkms.request.v20160120 import (CancelKeyDeletionRequest, CreateKeyRequest, CreateKeyVersionRequest,
                                            DecryptRequest, DescribeKeyRequest, DisableKeyRequest, EnableKeyRequest,
                                            EncryptRequest, GenerateDataKeyRequest, ScheduleKeyDeletionRequest)


def do(client, request, endpoint):
    request.set_endpoint(endpoint)
    request.set_protocol_type("https")
    return json.loads(client.do_action_with_exception(request))


@pytest.fixture(scope="module")
def kms(region):
    client = AcsClient(region.ak, region.secret, "local-1", verify=region.ca)
    return lambda request: do(client, request, region.https)


def encrypt(kms, key_id, text, context=None):
    r = EncryptRequest.EncryptRequest(); r.set_KeyId(key_id); r.set_Plaintext(text)
    if context:
        r.set_EncryptionContext(json.dumps(context))
    return kms(r)


def decrypt(kms, blob, context=None):
    r = DecryptRequest.DecryptRequest(); r.set_CiphertextBlob(blob)
    if context:
        r.set_EncryptionContext(json.dumps(context))
    return kms(r)


def test_full_key_lifecycle(kms):
    key = kms(CreateKeyRequest.CreateKeyRequest())["KeyMetadata"]["KeyId"]
    r = DescribeKeyRequest.DescribeKeyRequest(); r.set_KeyId(key)
    assert kms(r)["KeyMetadata"]["KeyState"] == "Enabled"

    old = encrypt(kms, key, "before rotation", {"app": "billing"})
    r = CreateKeyVersionRequest.CreateKeyVersionRequest(); r.set_KeyId(key); kms(r)
    new = encrypt(kms, key, "after rotation")
    assert new["KeyVersionId"] != old["KeyVersionId"]
    assert decrypt(kms, old["CiphertextBlob"], {"app": "billing"})["Plaintext"] == "before rotation"
    assert decrypt(kms, new["CiphertextBlob"])["Plaintext"] == "after rotation"

    with pytest.raises(ServerException) as e:
        decrypt(kms, old["CiphertextBlob"], {"app": "payroll"})
    assert e.value.get_error_code() == "InvalidCiphertext"

    r = GenerateDataKeyRequest.GenerateDataKeyRequest(); r.set_KeyId(key)
    dk = kms(r)
    assert decrypt(kms, dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]

    r = DisableKeyRequest.DisableKeyRequest(); r.set_KeyId(key); kms(r)
    with pytest.raises(ServerException) as e:
        encrypt(kms, key, "x")
    assert (e.value.get_http_status(), e.value.get_error_code()) == (409, "Rejected.Disabled")
    r = EnableKeyRequest.EnableKeyRequest(); r.set_KeyId(key); kms(r)

    r = ScheduleKeyDeletionRequest.ScheduleKeyDeletionRequest(); r.set_KeyId(key); r.set_PendingWindowInDays(7); kms(r)
    with pytest.raises(ServerException) as e:
        decrypt(kms, new["CiphertextBlob"])
    assert e.value.get_error_code() == "Rejected.PendingDeletion"
    r = CancelKeyDeletionRequest.CancelKeyDeletionRequest(); r.set_KeyId(key); kms(r)
    assert decrypt(kms, new["CiphertextBlob"])["Plaintext"] == "after rotation"
