#!/usr/bin/env bash
# One region in a container: the same instance setup as the local test
# harness (regress/lib/cluster.sh), then the server in the foreground.
#   NODE_ID   this region's node id (0..65535), required
#   REGION    this region's name, required
set -euo pipefail
: "${NODE_ID:?set NODE_ID}" "${REGION:?set REGION}"
export CAUSAL_WORK=${CAUSAL_WORK:-/var/lib/pg_causal}
source /opt/pg_causal/regress/lib/cluster.sh
data=$(instance_dir "$REGION")/data
if [ ! -f "$data/PG_VERSION" ]; then
  instance_init "$REGION" 5432 "$NODE_ID" "$REGION" "listen_addresses = '*'"
  echo "host all all 0.0.0.0/0 trust" | as_server tee -a "$data/pg_hba.conf" >/dev/null
fi
exec runuser -u "$CAUSAL_SERVER_USER" -- "$PGBIN/postgres" -D "$data"
