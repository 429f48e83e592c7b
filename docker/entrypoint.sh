#!/usr/bin/env bash
# One region in a container: the same instance setup as the local test
# harness (regress/lib/cluster.sh), then the server in the foreground.
#   REGION        this region's name, required
#   NODE_ID       its node id (0..65535); default: left to causalctl init
#   NETEM_DELAY   one-way delay added to everything the container sends
#   NETEM_JITTER  (tc netem; needs NET_ADMIN)
set -euo pipefail
: "${REGION:?set REGION}"
export CAUSAL_WORK=${CAUSAL_WORK:-/var/lib/pg_causal}
source /opt/pg_causal/regress/lib/cluster.sh
data=$(instance_dir "$REGION")/data
if [ -n "${NETEM_DELAY:-}" ]; then
  tc qdisc replace dev eth0 root netem delay "$NETEM_DELAY" "${NETEM_JITTER:-0ms}"
fi
if [ ! -f "$data/PG_VERSION" ]; then
  # causalctl init sets causal.node_id and causal.region when they are unset
  instance_init "$REGION" 5432 "${NODE_ID:--1}" "${NODE_ID:+$REGION}" "listen_addresses = '*'" \
    "causal.database = 'chat'"
  echo "host all all 0.0.0.0/0 trust" | as_server tee -a "$data/pg_hba.conf" >/dev/null
  as_server "$PGBIN/pg_ctl" -D "$data" -w start >/dev/null
  as_server psql -X -q -h "$CAUSAL_WORK" -U postgres -d postgres -c "CREATE DATABASE chat"
  as_server "$PGBIN/pg_ctl" -D "$data" -w stop >/dev/null
fi
exec runuser -u "$CAUSAL_SERVER_USER" -- "$PGBIN/postgres" -D "$data"
