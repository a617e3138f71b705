#!/usr/bin/env bash
# Install (if needed) and start the servers the tests use: PostgreSQL and Redis,
# on loopback, as the unprivileged users they insist on. Sourced by .ci/run;
# usable by hand too: `source .ci/services.sh && start_postgres`.
set -euo pipefail

PGPORT="${PGPORT:-54329}"
PGDATA_DIR="${PGDATA_DIR:-/tmp/conduit-ci-pg}"

need_packages() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

start_postgres() {
  need_packages postgresql-15 postgresql-client-15
  local bindir
  bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  if ! runuser -u postgres -- "$bindir/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
    rm -rf "$PGDATA_DIR"
    mkdir -p "$PGDATA_DIR" && chown postgres:postgres "$PGDATA_DIR"
    runuser -u postgres -- "$bindir/initdb" -D "$PGDATA_DIR" -A trust -U postgres >/dev/null
    runuser -u postgres -- "$bindir/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w \
      -o "-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  fi
  psql -h 127.0.0.1 -p "$PGPORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='conduit_test'" \
    | grep -q 1 || psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "CREATE DATABASE conduit_test"
  export TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$PGPORT/conduit_test"
  # The outage tests stop and start this very server.
  export TEST_PG_CTL="runuser -u postgres -- $bindir/pg_ctl -D $PGDATA_DIR"
  echo "PostgreSQL ready: $TEST_DATABASE_URL"
}
