#!/usr/bin/env bash
# Tests scripts/install-deps's package resolution with `apt-get --simulate` against this host's
# apt lists, replaying the machine image as it ships: qemu-utils 10.0 (a backport, known only to
# dpkg) installed and qemu-system-x86 absent, where a plain `apt-get install qemu-system-x86`
# removes qemu-utils (and qemu-img with it). Changes nothing on the host: dpkg and apt read a copy
# of the status database (NIMBUS_DPKG_ADMINDIR). Skips, saying why, where there is no apt.
# Usage: scripts/tests/install-deps.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v apt-get >/dev/null || [ ! -r /var/lib/dpkg/status ]; then
  echo "SKIP install-deps.sh: no apt-get or dpkg status on this host"; exit 0
fi
if ! grep -q 'Candidate: 1:' <<<"$(apt-cache policy qemu-system-x86 2>/dev/null)"; then
  echo "SKIP install-deps.sh: apt knows no qemu-system-x86 (apt-get update first)"; exit 0
fi
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/admin/updates" "$tmp/admin/info"
# The shipped image: no package of source qemu but the backported qemu-utils 10.0.
awk 'BEGIN { RS = ""; ORS = "\n\n" } !/(^|\n)Source: qemu( |\n|$)/ && !/^Package: qemu-/' /var/lib/dpkg/status \
  >"$tmp/admin/status"
cat scripts/tests/fixtures/qemu-utils-10-backport.status >>"$tmp/admin/status"
echo >>"$tmp/admin/status"
export NIMBUS_DPKG_ADMINDIR="$tmp/admin"

naive=$(apt-get -o "Dir::State::status=$tmp/admin/status" --simulate install -y --no-install-recommends \
  qemu-system-x86 2>&1 || true)
check "the replayed image has the conflict: a plain install removes qemu-utils" \
  'grep -q "^Remv qemu-utils" <<<"$naive"'

out=$(scripts/install-deps --simulate 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | sed 's/^/     | /'
check "install-deps --simulate resolves (exit 0)" '[ "$rc" -eq 0 ]'
check "it installs qemu-system-x86" 'grep -q "^install-deps: plan: .* qemu-system-x86" <<<"$out"'
cand=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ { print $2 }')
check "it pins qemu-utils to qemu-system-x86's candidate $cand (a downgrade)" \
  'grep -q "pinning qemu-utils .* → $cand (downgrade" <<<"$out" && grep -q "qemu-utils=$cand" <<<"$out"'
check "it removes nothing Nimbus needs" '! grep -q "refusing" <<<"$out" && ! grep -qE "removes:.*qemu" <<<"$out"'

# One package list, used by both README commands.
check "scripts/test-all and pg-start install through install-deps, with no apt-get install of their own" \
  'grep -q "scripts/install-deps" scripts/test-all && ! grep -q "apt-get.* install" scripts/test-all scripts/pg-start'
check "the README's first command runs install-deps" \
  'sed -n "/^\`\`\`sh/,/^\`\`\`/p" README.md | sed -n 2p | grep -q "scripts/install-deps"'
check "--list prints the package list" 'grep -qx qemu-system-x86 <<<"$(scripts/install-deps --list)"'
exit $fail
