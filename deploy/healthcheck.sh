#!/bin/bash
# Container health check without curl: GET /healthz over bash's /dev/tcp.
#
#   bazaar-healthcheck [PORT]
#
# Without PORT it uses the port of the service this container serves: the
# first BAZAAR_<SVC>_LISTEN other than the gateway's (the image sets that one
# for `bazaar up`), else the gateway's, else 8000. Exit 0 when healthy.
set -euo pipefail

port="${1:-}"
if [[ -z $port ]]; then
  fallback=8000
  while IFS= read -r var; do
    case $var in
      BAZAAR_GATEWAY_LISTEN) fallback="${!var##*:}" ;;
      BAZAAR_*_LISTEN) port="${!var##*:}"; break ;;
    esac
  done < <(compgen -e)
  port="${port:-$fallback}"
fi

exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
IFS= read -r -t 4 status <&3
exec 3<&-
if [[ $status =~ ^HTTP/1\.[01]\ 200 ]]; then
  exit 0
fi
echo "unhealthy: ${status:-no answer} from 127.0.0.1:${port}/healthz" >&2
exit 1
