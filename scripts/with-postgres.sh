#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL server on a loopback port, and
# CHAINDOCK_TEST_POSTGRES_DSN pointing at it. Installs Debian's postgresql
# package when it is missing (as root). If PostgreSQL cannot be had, the
# command still runs and the PostgreSQL tests skip, saying why.
set -uo pipefail

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

pgbin=$(find_bin)
if [ -z "$pgbin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "with-postgres: installing Debian's postgresql package" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >/dev/null 2>&1 \
    || echo "with-postgres: apt-get install postgresql failed" >&2
  pgbin=$(find_bin)
fi
if [ -z "$pgbin" ]; then
  echo "with-postgres: no PostgreSQL server found (/usr/lib/postgresql/*/bin); PostgreSQL tests will skip" >&2
  exec "$@"
fi

dir=$(mktemp -d /tmp/chaindock-pg.XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then
  # initdb refuses to run as root; the package made a postgres user.
  chown postgres "$dir"
  as_pg=(runuser -u postgres --)
fi
port=55432
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done

cleanup() {
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1
  rm -rf "$dir"
}
trap cleanup EXIT

if ! "${as_pg[@]}" "$pgbin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1; then
  cat "$dir/initdb.log" >&2
  echo "with-postgres: initdb failed; PostgreSQL tests will skip" >&2
  "$@"; exit $?
fi
if ! "${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
     -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null; then
  cat "$dir/server.log" >&2
  echo "with-postgres: the server did not start; PostgreSQL tests will skip" >&2
  "$@"; exit $?
fi
export CHAINDOCK_TEST_POSTGRES_DSN="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
# Tests that look for secrets in the database's own files read them here.
export CHAINDOCK_TEST_POSTGRES_DATA="$dir/data"
echo "with-postgres: PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
"$@"
