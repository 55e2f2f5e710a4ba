"""A Nimbus region for the end-to-end tests: the real `nimbus up` on free loopback ports."""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


NET_PREFIX = f"e2e{os.getpid() % 100000}"


class Region:
    def __init__(self, proc, data_dir, lines):
        self.proc = proc
        self.data_dir = pathlib.Path(data_dir)
        self.https = self.http = self.oss_https = self.oss_http = None
        for line in lines:
            parts = line.split()
            if parts[:1] == ["OpenAPI"]:
                url = parts[1]
                if url.startswith("https://"):
                    self.https = url[len("https://"):]
                else:
                    self.http = url[len("http://"):]
            if parts[:1] == ["OSS"]:
                # Full URLs: the OSS SDKs take the scheme from the endpoint.
                if parts[1].startswith("https://"):
                    self.oss_https = parts[1]
                else:
                    self.oss_http = parts[1]
        creds = json.loads((self.data_dir / "root-credentials").read_text())
        self.account_id = creds["AccountId"]
        self.ak = creds["AccessKeyId"]
        self.secret = creds["AccessKeySecret"]
        self.ca = str(self.data_dir / "ca.pem")
        self.net_prefix = NET_PREFIX

    def advance_clock(self, secs):
        """Moves the region's clock `secs` ahead (expiry without sleeping); the region follows
        within 50 ms."""
        f = self.data_dir.parent / "test-clock"
        now = int(f.read_text()) if f.exists() else 0
        f.write_text(str(now + int(secs * 1000)))
        time.sleep(0.2)

    def clock_offset(self):
        f = self.data_dir.parent / "test-clock"
        return int(f.read_text()) / 1000 if f.exists() else 0

    def admin(self, *args):
        """`nimbus admin …` against this region's data directory; returns stdout."""
        binary = os.environ.get("NIMBUS_BIN", str(ROOT / "target" / "debug" / "nimbus"))
        out = subprocess.run([binary, "admin", *args, "--data-dir", str(self.data_dir)],
                             check=True, capture_output=True, text=True)
        return out.stdout


@pytest.fixture(scope="session")
def region():
    yield from start_region()


def start_region():
    """A region on free loopback ports (a generator: yields it, then stops it and cleans up)."""
    binary = os.environ.get("NIMBUS_BIN", str(ROOT / "target" / "debug" / "nimbus"))
    tmp = tempfile.mkdtemp(prefix="nimbus-e2e-")
    data_dir = os.path.join(tmp, "data")
    proc = subprocess.Popen(
        # Short STS sessions allowed so a test can watch one expire.
        [binary, "up", "--data-dir", data_dir, "--api-addr", "127.0.0.1:0", "--api-http-addr", "127.0.0.1:0",
         "--sts-min-duration-secs", "1",
         # OSS: small single-PUT limit so oversized uploads are cheap to test; quick lifecycle passes.
         "--oss-addr", "127.0.0.1:0", "--oss-http-addr", "127.0.0.1:0",
         "--oss-max-object-bytes", str(8 << 20), "--oss-lifecycle-secs", "1",
         # Host network objects of this run carry their own prefix (VPC namespaces).
         "--net-prefix", NET_PREFIX, "--accel", "tcg",
         # Its own EIP pool, so a run never shares host routes with another region's.
         "--eip-pool", f"100.64.{os.getpid() % 250 + 1}.0/24"],
        stdout=subprocess.PIPE,
        stderr=open(os.path.join(tmp, "nimbus.log"), "w"),
        # Tests move the region's clock instead of sleeping (Region.advance_clock).
        env={**os.environ, "NIMBUS_TEST_CLOCK_FILE": os.path.join(tmp, "test-clock")},
        text=True,
    )
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.strip() == "ready":
            break
    else:
        raise RuntimeError(f"nimbus up exited before ready: {lines}; see {tmp}/nimbus.log")
    try:
        yield Region(proc, data_dir, lines)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, "nimbus up did not exit cleanly on SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
        clean_host(data_dir)
        # Disks, images and object replicas are hundreds of MiB a run (a Debian image run ~1 GiB);
        # the log and the state store stay for a look after a failure.
        for heavy in ("disks", "oss", "vm"):
            shutil.rmtree(os.path.join(data_dir, heavy), ignore_errors=True)


def clean_host(data_dir):
    """Instances outlive the control plane by design: stop this run's VMs and remove its host
    network objects (namespaces, the public bridge, its nftables table) so later runs start clean."""
    subprocess.run(["pkill", "-9", "-f", f"qemu-system-x86_64.*{data_dir}"], check=False)
    for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n"):
        name = ns.split(" ")[0]
        if name.startswith(f"{NET_PREFIX}-"):
            subprocess.run(["ip", "netns", "del", name], check=False)
    subprocess.run(["ip", "link", "del", f"{NET_PREFIX}-pub"], check=False, capture_output=True)
    subprocess.run(["nft", "delete", "table", "inet", f"{NET_PREFIX}_pub"], check=False, capture_output=True)
