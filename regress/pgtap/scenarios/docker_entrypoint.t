#!/usr/bin/env bash
# docker/entrypoint.sh outside a container (this project's machine has no
# container engine): what docs/operations.md and docker/compose.yaml
# promise of a region's first boot and its next. fsync on, no trust from
# the network, the password required, the database made, pg_causal
# preloaded, and the data kept across a restart without a second
# initialization.
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/cluster.sh
source regress/lib/tap.sh
port=24317
work=$(mktemp -d)
chmod 0755 "$work"
[ "$(id -u)" = 0 ] && chown "${CAUSAL_SERVER_USER:-postgres}" "$work"
entrypoint() {  # the entrypoint in the background, as a container runs it
  env CAUSAL_WORK="$work" REGION=dock PORT=$port LISTEN=127.0.0.1 "$@" docker/entrypoint.sh \
    >>"$work/entrypoint.log" 2>&1 &
  pid=$!
}
stop() { CAUSAL_WORK="$work" instance_stop dock >/dev/null 2>&1; wait "$pid" 2>/dev/null; }
trap 'stop; rm -rf "$work"' EXIT
ready() {  # the healthcheck's probe, over TCP
  local i
  for i in $(seq 1 300); do
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p $port -U postgres -d chat && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
tcp() { PGCONNECT_TIMEOUT=5 psql -X -q -At -h 127.0.0.1 -p $port -U postgres -d chat "$@" 2>&1; }

entrypoint POSTGRES_PASSWORD=secret
ready
ok $? "the first boot ends with a server the healthcheck reaches over TCP"
first=$(CAUSAL_WORK=$work instance_dir dock)/data
is "$(PGPASSWORD=secret tcp -c "SELECT current_setting('fsync') || ' ' || current_setting('shared_preload_libraries')
                                   || ' ' || current_setting('password_encryption')")" \
   "on pg_causal scram-sha-256" "fsync on, pg_causal preloaded, passwords hashed with scram-sha-256"
out=$(PGPASSWORD=wrong tcp -c "SELECT 1")
ok "$([[ $out == *"password authentication failed"* ]]; echo $?)" \
   "over TCP a wrong password is refused${out:+: $(head -n 1 <<<"$out")}"
out=$(tcp -w -c "SELECT 1")
ok "$([[ $out == *"no password supplied"* ]]; echo $?)" "... and so is none"
is "$(grep -Ev '^[[:space:]]*(#|$)' "$first/pg_hba.conf" | awk '$1 != "local" && $NF == "trust"' | wc -l)" 0 \
   "pg_hba.conf trusts no TCP connection, not even from loopback"
is "$(PGPASSWORD=secret tcp -c "CREATE TABLE kept (x int); INSERT INTO kept VALUES (1); SELECT count(*) FROM kept")" 1 \
   "the database chat is there"
stop

# the next boot: the data is there, nothing is initialized again, and no
# password needs to be given
: >"$work/entrypoint.log"
entrypoint POSTGRES_PASSWORD=
ready
ok $? "the next boot, without POSTGRES_PASSWORD, serves the same data directory"
is "$(PGPASSWORD=secret tcp -c "SELECT count(*) FROM kept")" 1 "... with the data of the first boot"
stop
rm -rf "$first"
: >"$work/entrypoint.log"
env CAUSAL_WORK="$work" REGION=dock PORT=$port LISTEN=127.0.0.1 docker/entrypoint.sh >"$work/entrypoint.log" 2>&1
rc=$?
ok "$([ "$rc" != 0 ] && grep -q "POSTGRES_PASSWORD" "$work/entrypoint.log"; echo $?)" \
   "a first boot without POSTGRES_PASSWORD refuses to start, naming it (exit $rc)"
done_testing
