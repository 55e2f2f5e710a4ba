#!/usr/bin/env bash
# Benchmark: signed DescribeRegions calls per second and p50/p99 latency over keep-alive HTTP and
# HTTPS against a release `nimbus up`, once with the ActionTrail audit sink (every call appended to
# the hash chain, group-committed before the answer) and once with the log sink, so the trail's cost
# per call shows side by side. Prints a table; asserts nothing. Client and region share the cores.
# Usage: bench/rpc.sh [SECONDS_PER_RUN]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
cargo build --release -q -p nimbus -p nimbus-bench
work=$(mktemp -d /tmp/nimbus-bench.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

run_region() {
  local sink=$1 dir="$work/$1"
  mkdir -p "$dir"
  # Throttling stays on (its cost is part of every call) with a ceiling no run reaches.
  target/release/nimbus up --data-dir "$dir/data" --api-addr 127.0.0.1:0 --api-http-addr 127.0.0.1:0 \
    --throttle-rps 1000000 --throttle-burst 1000000 --audit-sink "$sink" --log warn > "$dir/out" 2> "$dir/err" &
  pid=$!
  for _ in $(seq 100); do grep -q '^ready$' "$dir/out" 2>/dev/null && break; sleep 0.1; done
  local https http ak sk
  https=$(awk '$1=="OpenAPI" && $2 ~ /^https:/ {print $2}' "$dir/out")
  http=$(awk '$1=="OpenAPI" && $2 ~ /^http:/ {print $2}' "$dir/out")
  ak=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["AccessKeyId"])' "$dir/data/root-credentials")
  sk=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["AccessKeySecret"])' "$dir/data/root-credentials")
  for c in 1 16; do
    printf 'audit=%-5s ' "$sink"; target/release/rpc-bench --endpoint "$http" --ak "$ak" --secret "$sk" --connections $c --seconds "$secs"
    printf 'audit=%-5s ' "$sink"; target/release/rpc-bench --endpoint "$https" --ca "$dir/data/ca.pem" --ak "$ak" --secret "$sk" --connections $c --seconds "$secs"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

echo "Nimbus OpenAPI front door: signed DescribeRegions (HMAC-SHA1), keep-alive, ${secs}s per run, $(nproc) cores shared by client and server"
echo "audit=trail: ActionTrail hash chain in SQLite (synchronous=FULL), group commit before each answer"
echo "audit=log:   events serialised for the log but filtered at --log warn: no durable record (the trail's cost is the difference)"
run_region trail
run_region log
