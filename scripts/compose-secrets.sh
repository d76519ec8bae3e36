#!/usr/bin/env bash
# Writes the Compose secrets of deploy/compose.yaml into deploy/secrets/
# (git-ignored): random passwords and client secrets, and the URLs built
# from them. Existing files are kept, so running it again changes nothing.
#
#   scripts/compose-secrets.sh [DIR]     (DIR defaults to deploy/secrets)
#
# Compose bind-mounts secret files with their host owner and mode, and the
# Bazaar containers run as uid 10001: run as root and the files become
# 0400 owned by 10001; otherwise they are 0644 (the containers could not
# read 0600 files of another uid) and Bazaar warns that they are
# world-readable, which on a shared host you should fix with the chown.
set -euo pipefail

dir="${1:-$(dirname "${BASH_SOURCE[0]}")/../deploy/secrets}"
mkdir -p "$dir"
umask 077

random() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# put NAME VALUE: writes the file once.
put() {
  local path="$dir/$1"
  [[ -e $path ]] && return 0
  printf '%s\n' "$2" >"$path"
  if [[ $(id -u) -eq 0 ]]; then
    chown 10001:10001 "$path"
    chmod 0400 "$path"
  else
    chmod 0644 "$path"
  fi
}

read_or_new() {
  local path="$dir/$1"
  if [[ -e $path ]]; then head -n1 "$path"; else random; fi
}

pg=$(read_or_new postgres-password)
put postgres-password "$pg"
mq=$(read_or_new rabbitmq-password)
put rabbitmq-password "$mq"
put rabbitmq.conf "default_user = bazaar
default_pass = $mq"
put broker-url.rabbitmq "amqp://bazaar:$mq@rabbitmq:5672/%2f"
put broker-url.nats "nats://nats:4222"
put broker-url.redis "redis://redis:6379"
put grafana-admin-password "$(random)"
for svc in identity catalog orders payments notifications; do
  put "$svc-database-url" "postgres://bazaar:$pg@$svc-db:5432/$svc"
done
for svc in gateway identity catalog orders payments notifications; do
  put "$svc-client-secret" "$(random)"
done
echo "Compose secrets in $dir"
