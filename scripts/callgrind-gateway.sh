#!/usr/bin/env bash
# Instructions per proxied request through the gateway, counted by
# callgrind: repeatable on a shared machine (the same binary and inputs give
# the same count whatever else runs), unlike timings.
#
# Starts the tiny upstream and the gateway (one worker, JWT + rate limits
# on, as in scripts/bench-gateway.sh) under `valgrind --tool=callgrind` with
# instrumentation off, warms it up, switches instrumentation on for a
# `wrk -t1 -c8` run, and divides the instructions counted by the requests
# served. Prints the total and the ten costliest functions (inclusive).
#
# Needs: valgrind, wrk (apt-get install -y valgrind wrk).
# Usage: scripts/callgrind-gateway.sh [duration (8s)]
# Env:   BENCH_NO_BUILD=1 skips the release build; CARGO_TARGET_DIR honoured.
set -euo pipefail

DURATION=${1:-8s}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

for tool in valgrind callgrind_control callgrind_annotate wrk curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y valgrind wrk curl" >&2; exit 1; }
done
if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
  (cd "$ROOT" && cargo build --release -p bazaar -p bazaar-gateway --bin bazaar --example bench_upstream)
fi

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

# shellcheck source=scripts/gateway-bench-lib.sh
source "$ROOT/scripts/gateway-bench-lib.sh"
UP=$(free_port); GW=$(free_port); ADMIN=$(free_port)
start_upstream "$UP"
gateway_config "$TMP/bazaar.toml" "$GW" "$ADMIN" "$UP" 'workers = 1'
(cd "$TMP" && exec env -u BAZAAR_REDIS_URL valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$TMP/callgrind.out" \
  "$TARGET/release/bazaar" --config "$TMP/bazaar.toml" serve gateway > "$TMP/gateway.log" 2>&1) &
PIDS+=($!)
wait_for "http://127.0.0.1:$GW/readyz"
URL="http://127.0.0.1:$GW/api/v1/orders/"
wrk -t1 -c8 -d3s -H "Authorization: Bearer $TOKEN" "$URL" >/dev/null
callgrind_control -i on >/dev/null
out=$(wrk -t1 -c8 -d"$DURATION" -H "Authorization: Bearer $TOKEN" "$URL")
callgrind_control -i off >/dev/null
callgrind_control -d >/dev/null
sleep 1
requests=$(awk '/requests in/ {print $1}' <<<"$out")
if grep -q "Non-2xx" <<<"$out"; then echo "non-2xx answers: $out" >&2; exit 1; fi
file=$(ls -S "$TMP"/callgrind.out* | head -1)
total=$(callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
[[ -n $total && -n $requests ]] || { echo "no count (file $file, requests $requests)" >&2; exit 1; }
echo "requests: $requests   instructions: $total   per request: $((total / requests))"
echo
echo "costliest functions (inclusive instructions per request):"
callgrind_annotate --inclusive=yes "$file" 2>/dev/null \
  | awk -v n="$requests" '/^ *[0-9,]+ .*\(/ { c=$1; gsub(",", "", c); $1=""; printf "%8d %s\n", c / n, $0 }' \
  | head -25
