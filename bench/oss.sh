#!/usr/bin/env bash
# Benchmark: OSS against a release `nimbus up`, client and region sharing this machine's cores.
#  1. 64 MiB PUT and GET in MB/s over loopback HTTP, next to the physical limit measured in the
#     same run on the same filesystem (three fsync'd writes of the same bytes; a page-cache read).
#  2. PUT/GET/HEAD operations per second for 4 KiB objects at 1 and 32 concurrent clients.
#  3. ListObjects of 1,000 keys from a bucket of 1,000,000 objects, with and without a delimiter
#     (rows loaded straight into the store first: ~1 minute).
# Prints figures; asserts nothing. Usage: bench/oss.sh [SECONDS_PER_SMALL_RUN] [--skip-million]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
cargo build --release -q -p nimbus -p nimbus-bench
work=$(mktemp -d /var/tmp/nimbus-oss-bench.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start() {
  target/release/nimbus up --data-dir "$work/data" --api-addr 127.0.0.1:0 --api-http-addr 127.0.0.1:0 \
    --oss-addr 127.0.0.1:0 --oss-http-addr 127.0.0.1:0 --oss-max-object-bytes $((128 << 20)) \
    --throttle-rps 1000000 --throttle-burst 1000000 --log warn > "$work/out" 2> "$work/err" &
  pid=$!
  for _ in $(seq 200); do grep -q '^ready$' "$work/out" 2>/dev/null && break; sleep 0.1; done
  oss=$(awk '$1=="OSS" && $2 ~ /^http:/ {print $2}' "$work/out")
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

start
ak=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["AccessKeyId"])' "$work/data/root-credentials")
sk=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["AccessKeySecret"])' "$work/data/root-credentials")
acct=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["AccountId"])' "$work/data/root-credentials")
conn=(--endpoint "$oss" --ak "$ak" --secret "$sk")
python3 - "$oss" "$ak" "$sk" <<'PY'
import sys, urllib.request, email.utils, hmac, hashlib, base64
ep, ak, sk = sys.argv[1:]
date = email.utils.formatdate(usegmt=True)
sig = base64.b64encode(hmac.new(sk.encode(), f"PUT\n\n\n{date}\n/bench/".encode(), hashlib.sha1).digest()).decode()
urllib.request.urlopen(urllib.request.Request(f"{ep}/bench", method="PUT", headers={"Date": date, "Authorization": f"OSS {ak}:{sig}"}))
PY
echo "Nimbus OSS on $(nproc) cores (client and region share them); replicas on $(df --output=source "$work" | tail -1), one disk"
echo "audit: ActionTrail on (every request group-committed before its answer)"
target/release/oss-bench big "${conn[@]}" --scratch "$work/data/oss/phys" --size-mib 64 --runs 5
for c in 1 32; do target/release/oss-bench small "${conn[@]}" --clients $c --seconds "$secs"; done
if [ "${2:-}" != "--skip-million" ]; then
  stop
  target/release/oss-bench load --store-url "sqlite://$work/data/state.db" --account "$acct" --bucket million
  start
  target/release/oss-bench list --endpoint "$oss" --ak "$ak" --secret "$sk" --bucket million
fi
