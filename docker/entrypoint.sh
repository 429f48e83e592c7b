#!/usr/bin/env bash
# One region in a container: the same instance setup as the local test
# harness (regress/lib/cluster.sh), made fit to keep data, then the server in
# the foreground.
#   REGION             this region's name, required
#   POSTGRES_PASSWORD  the postgres role's password, required on first boot
#                      (every connection from outside the container needs it)
#   NODE_ID            its node id (0..65535); default: left to causalctl init
#   NETEM_DELAY        one-way delay added to everything the container sends
#   NETEM_JITTER       (tc netem: needs NET_ADMIN and the host's sch_netem;
#                      without them the region runs without delay, and says so)
#   PORT, LISTEN       where the server listens (5432, every address)
# The data lives in $CAUSAL_WORK (/var/lib/pg_causal): mount a volume there.
# regress/pgtap/scenarios/docker_entrypoint.t runs it outside a container.
set -euo pipefail
: "${REGION:?set REGION}"
export CAUSAL_WORK=${CAUSAL_WORK:-/var/lib/pg_causal}
source "$(dirname "$(realpath "$0")")/../regress/lib/cluster.sh"
data=$(instance_dir "$REGION")/data
if [ -n "${NETEM_DELAY:-}" ]; then
  tc qdisc replace dev eth0 root netem delay "$NETEM_DELAY" "${NETEM_JITTER:-0ms}" 2>/dev/null ||
    echo "entrypoint: no network delay: tc netem is not available (the container needs NET_ADMIN" \
         "and the host the sch_netem module); running without it" >&2
fi
if [ ! -f "$data/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD: connections from outside the container need it}"
  # causalctl init sets causal.node_id and causal.region when they are unset.
  # fsync on: the harness's instances turn it off (they crash processes, not
  # machines); a container's data must survive the machine.
  instance_init "$REGION" "${PORT:-5432}" "${NODE_ID:--1}" "${NODE_ID:+$REGION}" "listen_addresses = '${LISTEN:-*}'" \
    "causal.database = 'chat'" "fsync = on" "password_encryption = 'scram-sha-256'"
  # Inside the container the socket trusts; over TCP, loopback included, a
  # password, never trust (initdb's --auth=trust lines go).
  printf '%s\n' "local all all trust" "host all all 0.0.0.0/0 scram-sha-256" "host all all ::/0 scram-sha-256" |
    as_server tee "$data/pg_hba.conf" >/dev/null
  # The first boot's server listens on the socket only, so that the
  # healthcheck (TCP) cannot pass before the real server runs.
  as_server "$PGBIN/pg_ctl" -D "$data" -w -o "-c listen_addresses=''" start >/dev/null
  as_server psql -X -q -v ON_ERROR_STOP=1 -h "$CAUSAL_WORK" -p "${PORT:-5432}" -U postgres -d postgres \
    -v password="$POSTGRES_PASSWORD" <<'SQL'
ALTER ROLE postgres PASSWORD :'password';
CREATE DATABASE chat;
SQL
  as_server "$PGBIN/pg_ctl" -D "$data" -w stop >/dev/null
fi
if [ "$(id -u)" = 0 ]; then
  exec runuser -u "$CAUSAL_SERVER_USER" -- "$PGBIN/postgres" -D "$data"
fi
exec "$PGBIN/postgres" -D "$data"
