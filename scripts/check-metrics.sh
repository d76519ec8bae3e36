#!/usr/bin/env bash
# Lints what a running platform exposes, and the alert rules:
#   - starts `bazaar up` (all services, port-0 listeners, a fresh data dir),
#   - drives a little traffic through the gateway (register, log in, one
#     checkout to its final status),
#   - `promtool check metrics` on every service's /metrics and the gateway's
#     admin /metrics, and checks that each port serves only its own
#     service's series (plus the process's `process_*`/`bazaar_build_info`),
#   - `promtool check rules` and `promtool test rules` on deploy/prometheus/.
# Usage: scripts/check-metrics.sh   (builds the bazaar binary if needed;
# BAZAAR_BIN overrides which binary runs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v promtool >/dev/null || { echo "error: promtool missing (Debian package prometheus)" >&2; exit 1; }

promtool check rules deploy/prometheus/rules/*.yml
promtool test rules deploy/prometheus/tests/*.yml

if [[ -z ${BAZAAR_BIN:-} ]]; then
  cargo build --quiet -p bazaar
  BAZAAR_BIN="${CARGO_TARGET_DIR:-target}/debug/bazaar"
fi

work=$(mktemp -d)
pid=""
cleanup() {
  if [[ -n $pid ]]; then
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

env_ports=()
for s in GATEWAY IDENTITY CATALOG ORDERS PAYMENTS NOTIFICATIONS; do
  env_ports+=("BAZAAR_${s}_LISTEN=127.0.0.1:0")
done
env -u BAZAAR_DATABASE_URL -u BAZAAR_REDIS_URL -u BAZAAR_CONFIG "${env_ports[@]}" BAZAAR_DATA_DIR="$work/data" BAZAAR_LOG_LEVEL=warn \
  BAZAAR_BROKER_URL=embedded \
  "$BAZAAR_BIN" up >"$work/banner" 2>"$work/log" &
pid=$!
for _ in $(seq 1 120); do
  grep -q "Ctrl-C stops everything" "$work/banner" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/log" >&2; echo "error: bazaar up exited" >&2; exit 1; }
  sleep 0.5
done
grep -q "Ctrl-C stops everything" "$work/banner" || { cat "$work/banner" "$work/log" >&2; echo "error: bazaar up did not start" >&2; exit 1; }

gateway=$(awk '/Gateway \(public API\)/ {sub("/api/v1/", "", $4); print $4}' "$work/banner")
admin=$(awk '/Operator \(local\)/ {sub("/metrics", "", $3); print $3}' "$work/banner")
declare -A targets=([gateway]="$admin/metrics")
for s in identity catalog orders payments notifications; do
  url=$(awk -v s="$s" '$1 == s {print $2}' "$work/banner")
  targets[$s]="$url/metrics"
done

# A checkout through the gateway, as a shopper would.
json() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }
user="metrics$RANDOM"
pass="Sturdy-Metrics-Pass-42"
curl -fsS -o /dev/null -H 'content-type: application/json' \
  -d "{\"username\":\"$user\",\"email\":\"$user@example.com\",\"password\":\"$pass\"}" "$gateway/api/v1/auth/register/"
token=$(curl -fsS -H 'content-type: application/json' \
  -d "{\"username\":\"$user\",\"password\":\"$pass\"}" "$gateway/api/v1/auth/token/" | json "['access']")
product=$(curl -fsS "$gateway/api/v1/products/?in_stock=true" | json "['results'][0]['id']")
order=$(curl -fsS -H 'content-type: application/json' -H "authorization: Bearer $token" \
  -d "{\"items\":[{\"product_id\":\"$product\",\"quantity\":1}],\"payment_token\":\"tok_visa\",
       \"shipping_address\":{\"name\":\"Ada Lovelace\",\"line1\":\"12 St James's Sq\",\"city\":\"London\",\"postal_code\":\"SW1Y 4JH\",\"country\":\"GB\"}}" \
  "$gateway/api/v1/orders/" | json "['id']")
status=""
for _ in $(seq 1 60); do
  status=$(curl -fsS -H "authorization: Bearer $token" "$gateway/api/v1/orders/$order/" | json "['status']")
  [[ $status == confirmed || $status == rejected ]] && break
  sleep 0.5
done
[[ $status == confirmed ]] || { echo "error: order $order ended $status, not confirmed" >&2; exit 1; }
echo "checkout: order $order confirmed"

failed=0
for s in "${!targets[@]}"; do
  out="$work/$s.prom"
  curl -fsS "${targets[$s]}" >"$out"
  if ! promtool check metrics <"$out"; then
    echo "error: promtool check metrics failed on $s (${targets[$s]})" >&2
    failed=1
  fi
  # Samples of another service (or unlabelled, besides the process's own).
  foreign=$(grep -v '^#' "$out" | grep -v '^$' | grep -Ev '^(process_|bazaar_build_info)' | grep -v "service=\"$s\"" || true)
  if [[ -n $foreign ]]; then
    echo "error: $s's port serves series not its own:" >&2
    head -5 <<<"$foreign" >&2
    failed=1
  fi
  echo "$s: $(grep -c '^# HELP' "$out") families, $(grep -vc '^#' "$out") lines, promtool clean, own series only (${targets[$s]})"
done
grep -q '^orders_finished_total{service="orders",status="confirmed"' "$work/orders.prom" \
  || { echo "error: no orders_finished_total for the confirmed order" >&2; failed=1; }
exit "$failed"
