#!/usr/bin/env bash
# Benchmark: the VM accelerator this host offers (chosen by a probe boot), QEMU start -> guest
# init time (median of 5, microvm) and QEMU's memory overhead. Prints figures; asserts nothing.
# Needs qemu-system-x86, busybox-static and a kernel in /boot (scripts/test-all installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p nimbus-bench
target/release/vm-bench
