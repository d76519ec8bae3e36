#!/usr/bin/env bash
# Gateway benchmark, in one run, against one tiny fixed-response upstream:
#   (a) the upstream direct,
#   (b) through the Bazaar gateway (JWT pre-verification + rate limiting on),
#   (c) through Debian's nginx as a plain reverse proxy (keep-alive upstream).
# Prints requests/s and p99 for each, the CPU time each proxy spent per
# request (user + system, from /proc), and the ratios (b)/(a), (b)/(c).
# The three run in turn, ROUNDS times (a b c, a b c, ...), so that load from
# elsewhere on the machine falls on all of them alike; the table gives each
# one's median over the rounds, and every round's (b)/(c).
#
# Needs: wrk and nginx (apt-get install -y nginx wrk).
# Usage: scripts/bench-gateway.sh [duration per run (10s)] [connections (64)] [wrk threads (2)]
# Env:   ROUNDS (3); BENCH_NO_BUILD=1 skips `cargo build --release`;
#        CARGO_TARGET_DIR honoured.
set -euo pipefail

DURATION=${1:-10s}
CONNECTIONS=${2:-64}
THREADS=${3:-2}
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

for tool in wrk nginx curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y nginx wrk curl" >&2; exit 1; }
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
UP=$(free_port); GW=$(free_port); NG=$(free_port); ADMIN=$(free_port)
start_upstream "$UP"
gateway_config "$TMP/bazaar.toml" "$GW" "$ADMIN" "$UP"
env -u BAZAAR_REDIS_URL "$TARGET/release/bazaar" --config "$TMP/bazaar.toml" serve gateway > "$TMP/gateway.log" 2>&1 &
GW_PID=$!
PIDS+=($GW_PID)
wait_for "http://127.0.0.1:$GW/readyz"

# nginx as a plain reverse proxy with upstream keep-alive.
mkdir -p "$TMP/nginx/logs"
cat > "$TMP/nginx/nginx.conf" <<NGINX
worker_processes auto;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  upstream bench { server 127.0.0.1:$UP; keepalive 256; }
  server {
    listen 127.0.0.1:$NG;
    location / {
      proxy_pass http://bench;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX
nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' &
NG_PID=$!
PIDS+=($NG_PID)
wait_for "http://127.0.0.1:$NG/readyz"

PATH_UNDER_TEST=/api/v1/orders/
# The gateway must really verify: no token → 401, token → 200.
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GW$PATH_UNDER_TEST")
[[ "$code" == 401 ]] || { echo "gateway without token answered $code, expected 401" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW$PATH_UNDER_TEST")
[[ "$code" == 200 ]] || { echo "gateway with token answered $code, expected 200" >&2; exit 1; }

# CPU ticks (user + system) of a process and its children's threads so far.
ticks() {
  local total=0 pid
  for pid in "$@" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# run URL [PID] → "rps p99_ms cpu_us_per_request"
run() {
  local url=$1 pid=${2:-} out before=0 after=0
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -H "Authorization: Bearer $TOKEN" "$url" >/dev/null
  [[ -n $pid ]] && before=$(ticks "$pid")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" "$url")
  [[ -n $pid ]] && after=$(ticks "$pid")
  if grep -q "Non-2xx" <<<"$out"; then
    echo "non-2xx responses from $url:" >&2; echo "$out" >&2; exit 1
  fi
  local rps p99 total
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; printf "%.2f", v}' <<<"$out")
  awk -v r="$rps" -v p="$p99" -v t="$((after - before))" -v n="$total" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%s %s %.1f\n", r, p, (n > 0 ? t / hz * 1e6 / n : 0) }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

A=() B=() C=()
for round in $(seq 1 "$ROUNDS"); do
  A+=("$(run "http://127.0.0.1:$UP$PATH_UNDER_TEST")")
  B+=("$(run "http://127.0.0.1:$GW$PATH_UNDER_TEST" "$GW_PID")")
  C+=("$(run "http://127.0.0.1:$NG$PATH_UNDER_TEST" "$NG_PID")")
  read -r b_rps _ <<<"${B[-1]}"; read -r c_rps _ <<<"${C[-1]}"
  awk -v r="$round" -v b="$b_rps" -v c="$c_rps" 'BEGIN { printf "round %d: (b)/(c) = %.2f\n", r, b / c }'
done
col() { local i=$1; shift; for row in "$@"; do awk -v i="$i" '{ print $i }' <<<"$row"; done | median; }
A_RPS=$(col 1 "${A[@]}"); A_P99=$(col 2 "${A[@]}")
B_RPS=$(col 1 "${B[@]}"); B_P99=$(col 2 "${B[@]}"); B_CPU=$(col 3 "${B[@]}")
C_RPS=$(col 1 "${C[@]}"); C_P99=$(col 2 "${C[@]}"); C_CPU=$(col 3 "${C[@]}")

echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION x $ROUNDS rounds (medians), GET $PATH_UNDER_TEST (Bearer token), $(nproc) cores, $(nginx -v 2>&1 | sed 's/.*version: //')"
echo
echo "| setup | requests/s | p99 (ms) | proxy CPU per request (µs) |"
echo "|---|---:|---:|---:|"
printf "| (a) upstream direct | %.0f | %s | — |\n" "$A_RPS" "$A_P99"
printf "| (b) Bazaar gateway (JWT + rate limits) | %.0f | %s | %s |\n" "$B_RPS" "$B_P99" "$B_CPU"
printf "| (c) nginx plain reverse proxy | %.0f | %s | %s |\n" "$C_RPS" "$C_P99" "$C_CPU"
echo
awk -v a="$A_RPS" -v b="$B_RPS" -v c="$C_RPS" -v bc="$B_CPU" -v cc="$C_CPU" \
  'BEGIN { printf "(b)/(a) = %.2f   (b)/(c) = %.2f   CPU per request (b)/(c) = %.2f\n", b/a, b/c, bc/cc }'
