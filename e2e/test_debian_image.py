"""The Debian system image: built by `nimbus admin image build` (debootstrap from the host's
mirror, a progress bar), stored in OSS with its digests, then booted for a customer through the
SDK: systemd, OpenSSH with host keys made per instance, nimbus-init taking the key and user-data
from the metadata service."""
import base64
import os
import re
import subprocess

from aliyunsdkecs.request.v20140526 import (AllocatePublicIpAddressRequest, DeleteInstanceRequest,
                                            DescribeImagesRequest, GetInstanceConsoleOutputRequest,
                                            RunInstancesRequest, StopInstanceRequest)
from test_instances import call, make_world, ssh, status, wait

DEBIAN = "debian_12_x64_nimbus"


def test_debian_image_builds_with_progress_and_boots_with_its_own_host_keys(region):
    binary = os.environ.get("NIMBUS_BIN", "target/debug/nimbus")
    built = subprocess.run([binary, "admin", "image", "build", DEBIAN, "--data-dir", str(region.data_dir)],
                           capture_output=True, text=True, timeout=1500)
    assert built.returncode == 0, built.stderr[-3000:]
    # Not a terminal: one line per step, percentages rising to 100.
    steps = [m for m in (re.match(r"\s*(\d+)%\s+(.*)", l) for l in built.stderr.splitlines()) if m]
    percents = [int(m.group(1)) for m in steps]
    steps = [m.group(2) for m in steps]
    assert len(steps) > 10 and percents == sorted(percents) and percents[-1] == 100, built.stderr[-3000:]
    assert any("debootstrap" in l for l in steps) and any("SHA-256" in l for l in steps) and steps[-1] == "done"
    d = DescribeImagesRequest.DescribeImagesRequest(); d.set_ImageId(DEBIAN)
    img = call(region, d)["Images"]["Image"][0]
    assert (img["Status"], img["Progress"], img["ImageOwnerAlias"]) == ("Available", "100%", "system")

    w = make_world(region, tag="debian", third=160)
    r = RunInstancesRequest.RunInstancesRequest()
    r.set_ImageId(DEBIAN); r.set_InstanceType("ecs.t6-c1m0.medium"); r.set_VSwitchId(w["vsw"])
    r.set_SecurityGroupId(w["sg"]); r.set_KeyPairName(w["key_name"]); r.set_Amount(2)
    r.set_UserData(base64.b64encode(b"#!/bin/sh\necho debian-user-data > /root/ud.txt\n").decode())
    ids = call(region, r)["InstanceIdSets"]["InstanceIdSet"]
    keys = []
    for iid in ids:
        wait(f"{iid} Running", lambda: status(region, iid) == "Running")
        ap = AllocatePublicIpAddressRequest.AllocatePublicIpAddressRequest(); ap.set_InstanceId(iid)
        ip = call(region, ap)["IpAddress"]
        out = wait(f"SSH to {iid}", lambda: (lambda x: x if x.returncode == 0 and "debian-user-data" in x.stdout else None)(
            ssh(w["key"], ip, ". /etc/os-release; echo $ID $VERSION_CODENAME; cat /root/ud.txt; "
                              "systemctl is-active ssh nimbus-init; nimbus-metadata meta-data/instance-id", timeout=10)), 300)
        lines = out.stdout.split("\n")
        assert lines[0].split()[0] == "debian" and lines[1] == "debian-user-data", out.stdout
        assert lines[2:4] == ["active", "active"] and lines[4] == iid, out.stdout
        scan = subprocess.run(["ssh-keyscan", "-t", "ed25519", ip], capture_output=True, text=True, timeout=30)
        keys.append(scan.stdout.split()[-1])
    assert keys[0] != keys[1], "two instances of one image share an SSH host key"
    # A plain StopInstance presses the ACPI power button: systemd shuts Debian down cleanly.
    st = StopInstanceRequest.StopInstanceRequest(); st.set_InstanceId(ids[0]); call(region, st)
    wait("Stopped", lambda: status(region, ids[0]) == "Stopped", 60)
    c = GetInstanceConsoleOutputRequest.GetInstanceConsoleOutputRequest(); c.set_InstanceId(ids[0])
    console = base64.b64decode(call(region, c)["ConsoleOutput"]).decode(errors="replace")
    assert "reboot: Power down" in console, console[-2000:]
    for iid in ids:
        dl = DeleteInstanceRequest.DeleteInstanceRequest(); dl.set_InstanceId(iid); dl.set_Force(True); call(region, dl)
