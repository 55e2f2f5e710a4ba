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
GUEST_MIB = 256


def memory_of(pid):
    """(QEMU RSS, the part of it that is guest RAM, TCG's translation cache, what its cgroup is
    charged), in MiB. Guest RAM is the one anonymous mapping of exactly the guest's size in
    /proc/PID/smaps; the translation cache is the one writable and executable mapping."""
    total = guest = tb = 0
    size, perms = None, ""
    for line in open(f"/proc/{pid}/smaps"):
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):
            perms = head[1]
        elif line.startswith("Size:"):
            size = int(line.split()[1])
        elif line.startswith("Rss:"):
            rss = int(line.split()[1])
            total += rss
            if size == GUEST_MIB * 1024:
                guest = max(guest, rss)
            if perms == "rwxp":
                tb += rss
    charged = None
    for line in open(f"/proc/{pid}/cgroup"):
        _, ctrls, path = line.strip().split(":", 2)
        for f in ([f"/sys/fs/cgroup/memory{path}/memory.usage_in_bytes"] if "memory" in ctrls.split(",") else
                  [f"/sys/fs/cgroup{path}/memory.current"] if ctrls == "" else []):
            if os.path.exists(f) and "nimbus-" in path:
                charged = int(open(f).read()) / (1 << 20)
    return total / 1024, guest / 1024, tb / 1024, charged


def main():
    gen = conftest.start_region()
    region = next(gen)
    try:
        w = t.make_world(region)
        eip = t.call(region, AllocateEipAddressRequest.AllocateEipAddressRequest())
        times, rss, own, tbs, charged = [], [], [], [], []
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
            total, guest, tb, cg = memory_of(pid)
            rss.append(total); own.append(total - guest); tbs.append(tb)
            if cg is not None:
                charged.append(cg)
            print(f"run {n + 1}: RunInstances -> SSH {took:.2f} s, QEMU RSS {total:.0f} MiB "
                  f"(guest RAM {guest:.0f}, QEMU itself {total - guest:.0f} of which TCG cache {tb:.0f}), cgroup charged "
                  f"{'n/a' if cg is None else f'{cg:.0f}'} MiB", flush=True)
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
        guest = GUEST_MIB
        print(f"\naccelerator: {accel}")
        print(f"RunInstances -> SSH-reachable through the EIP: median {statistics.median(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}, n={N})")
        print(f"QEMU RSS per instance ({t.TYPE}, {guest} MiB guest): median {statistics.median(rss):.0f} MiB; "
              f"RSS minus guest RAM: {statistics.median(rss) - guest:+.0f} MiB "
              f"(negative: the guest has not touched all its RAM)")
        print(f"QEMU's own memory (RSS outside the guest-RAM mapping, from smaps): median "
              f"{statistics.median(own):.0f} MiB (min {min(own):.0f}, max {max(own):.0f}), of which TCG's "
              f"translation cache {statistics.median(tbs):.0f} MiB (bounded by tb-size=128; none under KVM)")
        if charged:
            print(f"charged to the instance's cgroup (RSS + its page cache), limit {guest + 256} MiB: median "
                  f"{statistics.median(charged):.0f} MiB")
    finally:
        try:
            next(gen)
        except StopIteration:
            pass


if __name__ == "__main__":
    main()
