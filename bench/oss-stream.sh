#!/usr/bin/env bash
# Benchmark: large PUTs are streamed. A release `nimbus up`; a 2 GiB object PUT through oss2 and
# through boto3 (aws-chunked with a CRC32 trailer), bodies generated as they are sent; the
# region's resident memory sampled every 50 ms throughout. Prints the object size, MB/s and the
# region's RSS before and at its peak; asserts nothing (the issue's bar: peak under 200 MiB).
# Usage: bench/oss-stream.sh [SIZE_MIB]   (default 2048; needs .venv from scripts/test-all)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-2048}
cargo build --release -q -p nimbus
[ -x .venv/bin/python ] || { echo "no .venv: run scripts/test-all (or python3 -m venv .venv && .venv/bin/pip install -r e2e/requirements.txt)"; exit 1; }
work=$(mktemp -d /var/tmp/nimbus-stream-bench.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
target/release/nimbus up --data-dir "$work/data" --api-addr 127.0.0.1:0 --api-http-addr 127.0.0.1:0 \
  --oss-addr 127.0.0.1:0 --oss-http-addr 127.0.0.1:0 --oss-max-object-bytes $(( (size + 1) << 20 )) \
  --accel tcg --log warn > "$work/out" 2> "$work/err" &
pid=$!
for _ in $(seq 300); do grep -q '^ready$' "$work/out" 2>/dev/null && break; sleep 0.1; done
oss=$(awk '$1=="OSS" && $2 ~ /^http:/ {print $2}' "$work/out")
echo "Nimbus OSS on $(nproc) cores (client and region share them); replicas on $(df --output=source "$work" | tail -1)"
.venv/bin/python bench/oss_stream.py "$oss" "$work/data/root-credentials" "$pid" "$size"
