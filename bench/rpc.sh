#!/usr/bin/env bash
# Benchmark: signed DescribeRegions calls per second and p50/p99 latency over keep-alive HTTP and
# HTTPS, against a release build of `nimbus up` on this machine. Prints a table; asserts nothing.
# The load generator shares the machine's cores with the region, so figures are a floor.
# Usage: bench/rpc.sh [SECONDS_PER_RUN]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
cargo build --release -q -p nimbus -p nimbus-bench
dir=$(mktemp -d /tmp/nimbus-bench.XXXXXX)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
# Throttling stays on (its cost is part of every call) with a ceiling no run reaches; default
# logging, so each call also writes its audit event.
target/release/nimbus up --data-dir "$dir/data" --api-addr 127.0.0.1:0 --api-http-addr 127.0.0.1:0 \
  --throttle-rps 1000000 --throttle-burst 1000000 > "$dir/out" 2> "$dir/err" &
pid=$!
for _ in $(seq 100); do grep -q '^ready$' "$dir/out" 2>/dev/null && break; sleep 0.1; done
https=$(awk '$1=="OpenAPI" && $2 ~ /^https:/ {print $2}' "$dir/out")
http=$(awk '$1=="OpenAPI" && $2 ~ /^http:/ {print $2}' "$dir/out")
ak=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["AccessKeyId"])' "$dir/data/root-credentials")
sk=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["AccessKeySecret"])' "$dir/data/root-credentials")
echo "Nimbus OpenAPI front door: signed DescribeRegions (HMAC-SHA1), keep-alive, ${secs}s per run, $(nproc) cores shared by client and server"
for c in 1 16; do
  target/release/rpc-bench --endpoint "$http" --ak "$ak" --secret "$sk" --connections $c --seconds "$secs"
  target/release/rpc-bench --endpoint "$https" --ca "$dir/data/ca.pem" --ak "$ak" --secret "$sk" --connections $c --seconds "$secs"
done
