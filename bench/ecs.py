"""RunInstances -> SSH through the EIP, median of N, and QEMU memory overhead; see bench/ecs.sh."""
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "e2e"))
import conftest  # noqa: E402  (the e2e harness: starts a region, cleans the host after)
import test_instances as t  # noqa: E402
from aliyunsdkecs.request.v20140526 import DeleteInstanceRequest  # noqa: E402
from aliyunsdkvpc.request.v20160428 import (AllocateEipAddressRequest, AssociateEipAddressRequest,  # noqa: E402
                                            UnassociateEipAddressRequest)

N = int(os.environ.get("RUNS", "5"))


def main():
    gen = conftest.start_region()
    region = next(gen)
    try:
        w = t.make_world(region)
        eip = t.call(region, AllocateEipAddressRequest.AllocateEipAddressRequest())
        times, rss = [], []
        for n in range(N):
            t0 = time.monotonic()
            iid = t.run(region, w)[0]
            a = AssociateEipAddressRequest.AssociateEipAddressRequest()
            a.set_AllocationId(eip["AllocationId"]); a.set_InstanceId(iid)
            t.call(region, a)
            # Reached means: this instance answers SSH through the EIP (not the previous one).
            t.wait("SSH", lambda: t.ssh(w["key"], eip["EipAddress"], "nimbus-metadata meta-data/instance-id",
                                        timeout=3).stdout.strip() == iid, 300)
            took = time.monotonic() - t0
            times.append(took)
            pid = int((region.data_dir / "vm" / "instances" / iid / "qemu.pid").read_text())
            kib = int([l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:")][0].split()[1])
            rss.append(kib / 1024)
            print(f"run {n + 1}: RunInstances -> SSH {took:.2f} s, QEMU RSS {kib / 1024:.0f} MiB", flush=True)
            u = UnassociateEipAddressRequest.UnassociateEipAddressRequest(); u.set_AllocationId(eip["AllocationId"])
            t.call(region, u)
            d = DeleteInstanceRequest.DeleteInstanceRequest(); d.set_InstanceId(iid); d.set_Force(True)
            t.call(region, d)
            t.wait("the VM gone", lambda: not (region.data_dir / "vm" / "instances" / iid).exists(), 60)
        # As the region logged it (the harness passes --accel tcg: `--accel auto` probes, and on
        # these hosts KVM cannot boot a stock kernel, see bench/vm.sh).
        log = (region.data_dir.parent / "nimbus.log").read_text()
        found = re.search(r'VM accelerator (chosen by probe|forced by --accel)[^\n]*?accelerator="?(\w+)', log)
        accel = f"{found.group(2)} ({found.group(1)})" if found else "unknown (not in the region's log)"
        guest = 256
        print(f"\naccelerator: {accel}")
        print(f"RunInstances -> SSH-reachable through the EIP: median {statistics.median(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}, n={N})")
        print(f"QEMU RSS per instance ({t.TYPE}, {guest} MiB guest): median {statistics.median(rss):.0f} MiB; "
              f"RSS minus guest RAM: {statistics.median(rss) - guest:+.0f} MiB "
              f"(negative: the guest has not touched all its RAM; QEMU's own overhead is below this)")
    finally:
        try:
            next(gen)
        except StopIteration:
            pass


if __name__ == "__main__":
    main()
