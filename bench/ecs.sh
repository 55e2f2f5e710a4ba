#!/usr/bin/env bash
# Benchmark: RunInstances -> SSH-reachable through the EIP (median of 5), and the memory overhead
# per instance (QEMU RSS minus guest RAM), on this host's accelerator. Brings up its own region
# with the release binary, drives it with aliyun-python-sdk-ecs/-vpc and the real ssh client.
# Prints figures; asserts nothing. Needs root and what scripts/test-all installs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p nimbus
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -r e2e/requirements.txt; }
NIMBUS_BIN=target/release/nimbus .venv/bin/python bench/ecs.py "$@"
