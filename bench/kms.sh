#!/usr/bin/env bash
# Benchmark: KMS API calls per second (Encrypt, Decrypt, GenerateDataKey) over keep-alive HTTPS
# against a release `nimbus up` with ActionTrail on (every call audited), as clients would use KMS.
# Prints figures; asserts nothing. Envelope throughput in GB/s next to raw AES-256-GCM is
# `cargo bench -p nimbus-kms`. Usage: bench/kms.sh [SECONDS_PER_RUN] (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
cargo build --release -q -p nimbus -p nimbus-bench
dir=$(mktemp -d /tmp/nimbus-kms-bench.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
target/release/nimbus up --data-dir "$dir/data" --api-addr 127.0.0.1:0 --api-http-addr 127.0.0.1:0 \
  --throttle-rps 1000000 --throttle-burst 1000000 --log warn > "$dir/out" 2> "$dir/err" &
pid=$!
for _ in $(seq 100); do grep -q '^ready$' "$dir/out" 2>/dev/null && break; sleep 0.1; done
export NIMBUS_CLI_CONFIG="$dir/cli.toml"
target/release/nimbus configure --from-data-dir "$dir/data" 2>/dev/null
https=$(awk '$1=="OpenAPI" && $2 ~ /^https:/ {print $2}' "$dir/out")
ak=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["AccessKeyId"])' "$dir/data/root-credentials")
sk=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["AccessKeySecret"])' "$dir/data/root-credentials")
key=$(target/release/nimbus kms CreateKey | python3 -c 'import json,sys; print(json.load(sys.stdin)["KeyMetadata"]["KeyId"])')
blob=$(target/release/nimbus kms Encrypt --KeyId "$key" --Plaintext "benchmark plaintext" | python3 -c 'import json,sys; print(json.load(sys.stdin)["CiphertextBlob"])')
echo "Nimbus KMS API over keep-alive HTTPS, every call audited to ActionTrail, ${secs}s per run, $(nproc) cores shared by client and server"
for c in 1 16; do
  for call in "Encrypt --param KeyId=$key --param Plaintext=benchmark-plaintext" "Decrypt --param CiphertextBlob=$blob" "GenerateDataKey --param KeyId=$key"; do
    # shellcheck disable=SC2086
    target/release/rpc-bench --endpoint "$https" --ca "$dir/data/ca.pem" --ak "$ak" --secret "$sk" --connections $c --seconds "$secs" --version 2016-01-20 --action $call
  done
done
