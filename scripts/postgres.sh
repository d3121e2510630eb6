#!/usr/bin/env bash
# Make PostgreSQL's server binaries available for the tests (Debian's `postgresql` package),
# and print their folder. The tests start a throwaway cluster of their own from it
# (tests/postgres.py); nothing here starts a server.
set -euo pipefail
find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
bin=$(find_bin)
if [[ -z "$bin" || ! -x "$bin/pg_ctl" ]]; then
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "PostgreSQL server binaries not found: install Debian's postgresql package" >&2
    exit 1
  fi
  bin=$(find_bin)
fi
echo "$bin"
