#!/usr/bin/env bash
# Shared by scripts/bench-gateway.sh and scripts/callgrind-gateway.sh (sourced,
# not run): ports, waiting, the tiny upstream and the gateway's configuration.
# Expects TARGET (the cargo target dir), TMP (a scratch dir) and PIDS (an
# array of processes to stop) in the caller.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_for URL: until it answers 2xx (60 s at most).
wait_for() {
  for _ in $(seq 1 600); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "not answering: $1" >&2
  exit 1
}

# start_upstream PORT: the fixed-response upstream (it also plays identity:
# serves the JWKS) on PORT; sets TOKEN to an access token it signed.
start_upstream() {
  "$TARGET/release/examples/bench_upstream" "127.0.0.1:$1" "$TMP/token" &
  PIDS+=($!)
  wait_for "http://127.0.0.1:$1/readyz"
  TOKEN=$(cat "$TMP/token")
}

# gateway_config FILE GW ADMIN UP [EXTRA GATEWAY LINES...]: every service is
# the upstream; rate limits on and checked on every request (per IP and per
# user), set high enough not to throttle the load generator.
gateway_config() {
  local file=$1 gw=$2 admin=$3 up=$4
  shift 4
  mkdir -p "$TMP/data"
  {
    echo "data_dir = \"$TMP/data\""
    echo 'log_level = "warn"'
    echo '[gateway]'
    echo "listen = \"127.0.0.1:$gw\""
    echo "admin_listen = \"127.0.0.1:$admin\""
    echo 'rate_limit = true'
    echo 'ip_limit = { rps = 10000000.0, burst = 10000000 }'
    echo 'user_limit = { rps = 10000000.0, burst = 10000000 }'
    local line
    for line in "$@"; do echo "$line"; done
    local svc
    for svc in identity catalog orders payments notifications; do
      echo "[$svc]"
      echo "url = \"http://127.0.0.1:$up\""
    done
  } >"$file"
}
