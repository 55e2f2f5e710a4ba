"""Large uploads are streamed to the replicas as they arrive, after authentication and
authorization: through oss2 and boto3 (aws-chunked with a trailing checksum, or a signed payload),
with SSE, and refused before their body is read when the caller may not write.
The memory figure (a 2 GiB PUT) is bench/oss-stream.sh's, not a test's."""
import hashlib
import socket
import urllib.parse

import oss2
import pytest

from test_oss import s3_client, unique

MIB = 1 << 20


class Pattern:
    """A file-like body of `size` deterministic bytes, produced as read (never all in memory)."""

    def __init__(self, size, seed=b"nimbus"):
        self.size, self.pos, self.seed = size, 0, seed
        self.md5 = hashlib.md5()

    def read(self, n=-1):
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, self.size - self.pos)
        out = bytearray()
        while len(out) < n:
            at = self.pos + len(out)
            # Byte i depends on i alone (64 KiB blocks), however the client reads.
            block = hashlib.sha256(self.seed + (at >> 16).to_bytes(8, "big")).digest() * 2048
            out += block[at & 0xFFFF:][: n - len(out)]
        self.pos += n
        self.md5.update(out)
        return bytes(out)

    def __len__(self):
        return self.size

    def seek(self, pos, whence=0):
        self.pos = pos if whence == 0 else (self.size + pos if whence == 2 else self.pos + pos)
        if self.pos == 0:
            self.md5 = hashlib.md5()
        return self.pos

    def tell(self):
        return self.pos


def digest_of(size):
    p = Pattern(size)
    while p.read(4 * MIB):
        pass
    return p.md5.hexdigest()


@pytest.fixture
def bucket(region):
    b = oss2.Bucket(oss2.Auth(region.ak, region.secret), region.oss_http, unique("stream"))
    b.create_bucket()
    yield b
    for o in oss2.ObjectIterator(b):
        b.delete_object(o.key)
    b.delete_bucket()


@pytest.mark.parametrize("sse", [None, "AES256"])
def test_a_large_oss2_put_round_trips_streamed(bucket, sse):
    size = 7 * MIB + 12345  # above the 4 MiB streaming threshold, below the e2e region's 8 MiB cap
    headers = {"x-oss-server-side-encryption": sse} if sse else None
    r = bucket.put_object("big.bin", Pattern(size), headers=headers)
    assert r.status == 200
    got = bucket.get_object("big.bin")
    h = hashlib.md5()
    for chunk in got:
        h.update(chunk)
    assert h.hexdigest() == digest_of(size)
    assert bucket.head_object("big.bin").content_length == size


def test_a_large_boto3_put_round_trips_streamed(region, bucket):
    s3 = s3_client(region)
    size = 7 * MIB + 7
    s3.put_object(Bucket=bucket.bucket_name, Key="s3.bin", Body=Pattern(size).read())
    body = s3.get_object(Bucket=bucket.bucket_name, Key="s3.bin")["Body"].read()
    assert len(body) == size and hashlib.md5(body).hexdigest() == digest_of(size)
    # A multipart upload with streamed parts.
    s3.upload_fileobj(Pattern(2 * 8 * MIB + 5), bucket.bucket_name, "mp.bin")
    body = s3.get_object(Bucket=bucket.bucket_name, Key="mp.bin")["Body"].read()
    assert hashlib.md5(body).hexdigest() == digest_of(2 * 8 * MIB + 5)


def test_a_refused_oversized_put_is_answered_not_hung(bucket):
    # Beyond the region's single-PUT cap and refused before reading: the client still gets the
    # answer (the remainder is drained), even though it sends everything before reading.
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.put_object("too-big.bin", Pattern(12 * MIB))
    assert e.value.code == "EntityTooLarge"


def test_a_streamed_put_with_a_wrong_content_md5_leaves_nothing(bucket):
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.put_object("bad.bin", Pattern(6 * MIB), headers={"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="})
    assert e.value.code == "InvalidDigest"
    assert not bucket.object_exists("bad.bin")


def raw_put(region, path, length, send, headers=""):
    """Sends a PUT declaring `length` bytes, then `send` bytes of it; returns the response head."""
    u = urllib.parse.urlparse(region.oss_http)
    with socket.create_connection((u.hostname, u.port), timeout=20) as s:
        s.sendall(f"PUT {path} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Length: {length}\r\n{headers}\r\n".encode())
        s.sendall(b"x" * send)
        return s.recv(4096).decode(errors="replace")


def test_an_unauthenticated_1gib_put_is_refused_before_its_body_is_read(region, bucket):
    # Only 64 KiB of the declared GiB are ever sent: the answer must come without the rest.
    head = raw_put(region, f"/{bucket.bucket_name}/huge.bin", 1 << 30, 64 << 10)
    assert head.startswith("HTTP/1.1 403"), head
    assert not bucket.object_exists("huge.bin")


def test_a_streamed_put_cut_short_commits_nothing(region, bucket):
    # Public-write bucket, so an unsigned PUT is authorized and streamed; the client then stops.
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ_WRITE)
    u = urllib.parse.urlparse(region.oss_http)
    with socket.create_connection((u.hostname, u.port), timeout=20) as s:
        s.sendall(f"PUT /{bucket.bucket_name}/cut.bin HTTP/1.1\r\nHost: {u.netloc}\r\n"
                  f"Content-Length: {7 * MIB}\r\n\r\n".encode())
        s.sendall(b"y" * (6 * MIB))
        s.shutdown(socket.SHUT_WR)
        s.recv(4096)
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PRIVATE)
    assert not bucket.object_exists("cut.bin")
