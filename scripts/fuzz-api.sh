#!/usr/bin/env bash
# Fuzzes the public API with schemathesis through the gateway's merged
# /openapi.json: the platform (`bazaar up`: SQLite, embedded bus, the demo
# catalog) on free ports; a shopper's token and a staff token (made with
# `bazaar createsuperuser`); every check (`--checks all`), every phase
# (examples, coverage, fuzzing, stateful: the document's links chain
# register → token → me, create order → get/cancel/events, create product →
# get/patch/delete); a fixed seed and a bounded budget. Exits non-zero on any
# failure, on any 5xx, or when the run did not create, fetch, cancel and
# stream orders. Before fuzzing, the document is validated
# (openapi-spec-validator) and linted (redocly, recommended-strict, see
# scripts/redocly.yaml).
#
#   scripts/fuzz-api.sh             # uses $CARGO_TARGET_DIR (or target)/debug/bazaar
#   BAZAAR_BIN=path/to/bazaar FUZZ_SEED=7 FUZZ_MAX_EXAMPLES=50 scripts/fuzz-api.sh
#
# The document's example product id (EXAMPLE_PRODUCT_ID below, the
# orders service's `OrderItemIn` example) is replaced by a product of the
# running demo catalog, so the examples phase really places orders.
# Reports (HAR of every exchange, JUnit, the platform's log) land in $FUZZ_REPORT_DIR
# (default: a temporary directory, removed at exit).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${BAZAAR_BIN:-$TARGET/debug/bazaar}"
SEED="${FUZZ_SEED:-24}"
MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-25}"
# Seconds per token's run; fuzzing and stateful repeat until it is spent.
MAX_TIME="${FUZZ_MAX_TIME:-120}"
EXAMPLE_PRODUCT_ID="0190a000-0000-7000-8000-000000000001"

TMP="$(mktemp -d)"
REPORTS="${FUZZ_REPORT_DIR:-$TMP/reports}"
mkdir -p "$REPORTS"
PLATFORM_PID=""
cleanup() {
  if [[ -n $PLATFORM_PID ]]; then
    kill "$PLATFORM_PID" 2>/dev/null || true
    wait "$PLATFORM_PID" 2>/dev/null || true
  fi
  if [[ -n ${FUZZ_REPORT_DIR:-} && -f $TMP/platform.log ]]; then
    cp "$TMP/platform.log" "$REPORTS/platform.log"
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

if [[ -z ${BAZAAR_BIN:-} ]]; then
  (cd "$ROOT" && cargo build --quiet -p bazaar --bin bazaar)
fi
[[ -x $BIN ]] || { echo "no bazaar binary at $BIN" >&2; exit 1; }
command -v st >/dev/null || { echo "schemathesis (st) is not installed" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

GW=$(free_port)
ADMIN=$(free_port)
BASE="http://127.0.0.1:$GW"
{
  echo "data_dir = \"$TMP/data\""
  echo 'log_level = "warn"'
  echo '[gateway]'
  echo "listen = \"127.0.0.1:$GW\""
  echo "admin_listen = \"127.0.0.1:$ADMIN\""
  # The fuzzer is one client sending thousands of requests: no edge limits
  # (the 429 is documented on every operation all the same).
  echo 'rate_limit = false'
  for svc in identity catalog orders payments notifications; do
    echo "[$svc]"
    echo 'listen = "127.0.0.1:0"'
  done
} >"$TMP/bazaar.toml"

"$BIN" --config "$TMP/bazaar.toml" up >"$TMP/platform.log" 2>&1 &
PLATFORM_PID=$!
for _ in $(seq 1 600); do
  curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null && break
  if ! kill -0 "$PLATFORM_PID" 2>/dev/null; then
    echo "the platform exited; its log:" >&2
    tail -n 40 "$TMP/platform.log" >&2
    exit 1
  fi
  sleep 0.1
done
curl -fsS -o /dev/null "$BASE/readyz" || { echo "gateway not ready at $BASE" >&2; tail -n 40 "$TMP/platform.log" >&2; exit 1; }
echo "platform up: gateway $BASE"

PASSWORD="fuzz-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
BAZAAR_SUPERUSER_PASSWORD="$PASSWORD" "$BIN" --config "$TMP/bazaar.toml" \
  createsuperuser --username fuzzstaff --email fuzzstaff@example.com --noinput >/dev/null

# token USER PASSWORD: an access token from the password grant.
token() {
  curl -fsS -H 'Content-Type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"$2\"}" "$BASE/api/v1/auth/token/" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])'
}
curl -fsS -o /dev/null -H 'Content-Type: application/json' \
  -d "{\"username\":\"fuzzshopper\",\"email\":\"fuzzshopper@example.com\",\"password\":\"$PASSWORD\"}" \
  "$BASE/api/v1/auth/register/"
USER_TOKEN=$(token fuzzshopper "$PASSWORD")
STAFF_TOKEN=$(token fuzzstaff "$PASSWORD")

# The merged document, its example product id replaced by one in stock.
PRODUCT=$(curl -fsS "$BASE/api/v1/products/?in_stock=true&page_size=1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["id"])')
curl -fsS "$BASE/openapi.json" >"$TMP/served.json"
grep -q "$EXAMPLE_PRODUCT_ID" "$TMP/served.json" ||
  { echo "the document lacks the example product id $EXAMPLE_PRODUCT_ID" >&2; exit 1; }
sed "s/$EXAMPLE_PRODUCT_ID/$PRODUCT/g" "$TMP/served.json" >"$TMP/openapi.json"

echo
echo "==> the merged document: openapi-spec-validator, redocly lint (scripts/redocly.yaml)"
openapi-spec-validator "$TMP/served.json"
redocly lint --config "$ROOT/scripts/redocly.yaml" --format stylish "$TMP/served.json"
echo "demo product for the examples: $PRODUCT"

status=0
for who in user staff; do
  if [[ $who == user ]]; then bearer=$USER_TOKEN; else bearer=$STAFF_TOKEN; fi
  echo
  echo "==> schemathesis as $who (seed $SEED, ≤ $MAX_EXAMPLES examples per operation, ≤ ${MAX_TIME}s)"
  (cd "$TMP" && st --no-color --config-file "$ROOT/scripts/fuzz-api.toml" \
    run "$TMP/openapi.json" --url "$BASE" \
    -H "Authorization: Bearer $bearer" \
    --checks all --phases examples,coverage,fuzzing,stateful \
    --seed "$SEED" --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME" \
    --request-timeout 30 --workers 2 \
    --report har,junit --report-dir "$REPORTS" \
    --report-har-path "$REPORTS/$who.har" --report-junit-path "$REPORTS/$who.xml") || status=1
done

echo
python3 "$ROOT/scripts/fuzz-report.py" "$REPORTS/user.har" "$REPORTS/staff.har" || status=1
if ((status != 0)); then
  echo "platform log (last 30 lines):" >&2
  tail -n 30 "$TMP/platform.log" >&2
fi
exit "$status"
