"""bench/oss-stream.sh's client: PUT SIZE MiB through oss2 and boto3 while sampling the region's RSS."""
import hashlib
import json
import sys
import threading
import time

import boto3
import oss2
from botocore.config import Config

endpoint, creds_path, pid, size_mib = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
creds = json.load(open(creds_path))
SIZE = size_mib << 20
MIB = 1 << 20


def rss_mib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler:
    def __init__(self):
        self.peak, self.stop = 0.0, False
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, rss_mib())
            time.sleep(0.05)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *a):
        self.stop = True
        self.t.join()


class Body:
    """SIZE bytes made as they are read: the client holds a few MiB at most."""

    def __init__(self, size):
        self.size, self.pos = size, 0
        self.block = hashlib.sha256(b"nimbus").digest() * (MIB // 32)

    def read(self, n=-1):
        n = self.size - self.pos if n is None or n < 0 else min(n, self.size - self.pos)
        out = bytearray()
        while len(out) < n:
            off = (self.pos + len(out)) % MIB
            out += self.block[off:off + n - len(out)]
        self.pos += n
        return bytes(out)

    def __len__(self):
        return self.size

    def seek(self, pos, whence=0):
        self.pos = pos if whence == 0 else (self.size + pos if whence == 2 else self.pos + pos)
        return self.pos

    def tell(self):
        return self.pos


bucket = oss2.Bucket(oss2.Auth(creds["AccessKeyId"], creds["AccessKeySecret"]), endpoint, "stream-bench")
bucket.create_bucket()
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="local-1", aws_access_key_id=creds["AccessKeyId"],
                  aws_secret_access_key=creds["AccessKeySecret"],
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))

print(f"{'client':<28}{'object':>10}{'MB/s':>9}{'RSS before':>13}{'RSS peak':>11}")
for name, put in [
    ("oss2 put_object", lambda key: bucket.put_object(key, Body(SIZE))),
    ("boto3 put_object (chunked)", lambda key: s3.put_object(Bucket="stream-bench", Key=key, Body=Body(SIZE),
                                                            ContentLength=SIZE)),
]:
    key = name.split()[0] + ".bin"
    before = rss_mib()
    with Sampler() as s:
        t = time.time()
        put(key)
        secs = time.time() - t
    size = bucket.head_object(key).content_length
    assert size == SIZE, (size, SIZE)
    print(f"{name:<28}{size_mib:>7} MiB{SIZE / secs / 1e6:>9.0f}{before:>9.0f} MiB{s.peak:>7.0f} MiB")
    bucket.delete_object(key)
print("bar (issue 12): RSS peak under 200 MiB for a 2 GiB PUT")
