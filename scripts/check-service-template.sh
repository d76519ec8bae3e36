#!/usr/bin/env bash
# Checks that every service crate has the shape of docs/service-template.md:
# the template's files, no other top-level source file, and a lib.rs of at
# most MAX_LIB_LINES lines of code (blank lines and comments not counted).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SERVICES=(identity catalog orders payments notifications)
REQUIRED=(lib.rs config.rs state.rs error.rs openapi.rs
  routes/mod.rs domain/mod.rs store/mod.rs events/mod.rs)
# grpc.rs is the one optional top-level file: the service's internal RPCs.
TOP_LEVEL=(lib.rs config.rs state.rs error.rs openapi.rs grpc.rs)
MAX_LIB_LINES=60

failed=0
fail() {
  echo "error: $*" >&2
  failed=1
}

for service in "${SERVICES[@]}"; do
  src="crates/$service/src"
  [[ -d $src ]] || { fail "$src is missing"; continue; }
  for file in "${REQUIRED[@]}"; do
    [[ -f $src/$file ]] || fail "$service: $src/$file is missing (see docs/service-template.md)"
  done
  for file in "$src"/*.rs; do
    name=$(basename "$file")
    if [[ ! " ${TOP_LEVEL[*]} " == *" $name "* ]]; then
      fail "$service: $file is not a template file; move it into a folder (see docs/service-template.md)"
    fi
  done
  if [[ -f $src/lib.rs ]]; then
    code=$(grep -cvE '^\s*($|//)' "$src/lib.rs" || true)
    if ((code > MAX_LIB_LINES)); then
      fail "$service: lib.rs has $code lines of code (at most $MAX_LIB_LINES: wiring only)"
    fi
  fi
  for dir in migrations/sqlite migrations/postgres; do
    [[ -d crates/$service/$dir ]] || fail "$service: crates/$service/$dir is missing"
  done
done

if ((failed)); then
  exit 1
fi
echo "service template: ${SERVICES[*]} match docs/service-template.md"
