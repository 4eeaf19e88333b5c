#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests and benchmarks (no mock).
#
#   scripts/pg_test_server.sh start DIR   # initdb in DIR, start, print the URI
#   scripts/pg_test_server.sh stop DIR    # stop it and remove DIR
#
# The server listens on 127.0.0.1 (a free port) and on a unix socket in DIR;
# trust authentication, superuser "facerec", database "postgres", UTF-8, C
# collation, fsync off (test data only). PostgreSQL refuses to run as root,
# so as root it runs as the system user facerec-pg (created when absent).
# Binaries: $PG_BIN, else the newest /usr/lib/postgresql/*/bin, else PATH.
# Exit 3 (and a loud message) when PostgreSQL is not installed.
set -euo pipefail
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

pg_bin=${PG_BIN:-}
if [ -z "$pg_bin" ]; then
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [ -z "$pg_bin" ] && command -v initdb >/dev/null 2>&1 && pg_bin=$(dirname "$(command -v initdb)")
fi
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  [ "$cmd" = stop ] && { rm -rf "$dir"; exit 0; }
  echo "!!!!! pg_test_server: PostgreSQL binaries NOT FOUND (Debian package postgresql); PostgreSQL tests will be SKIPPED !!!!!" >&2
  exit 3
fi

as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  if ! id facerec-pg >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin facerec-pg
  fi
  as_owner=(runuser -u facerec-pg --)
fi

case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown facerec-pg "$dir"
    chmod 700 "$dir"
    "${as_owner[@]}" "$pg_bin/initdb" -D "$dir/data" -U facerec --auth=trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${as_owner[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    # The socket directory must be reachable by clients that are not its owner.
    chmod 755 "$dir"
    echo "postgresql://facerec@127.0.0.1:$port/postgres"
    ;;
  stop)
    if [ -d "$dir/data" ]; then
      "${as_owner[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
