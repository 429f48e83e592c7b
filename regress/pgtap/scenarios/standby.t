#!/usr/bin/env bash
# A hot standby has its primary's causal.node_id but not its clock: it must
# not issue timestamps, which could repeat the primary's.
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/cluster.sh
trap 'instance_stop standby-replica >/dev/null 2>&1; instance_stop standby-primary >/dev/null 2>&1' EXIT
{ instance_init standby-primary 24327 7 test-standby && instance_start standby-primary; } >/dev/null 2>&1 ||
  bail "could not start the primary"
instance_psql standby-primary -d postgres -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION pg_causal" -c "CREATE EXTENSION dblink" >/dev/null ||
  bail "could not set up the primary"
replica=$(instance_dir standby-replica)
rm -rf "$replica"; mkdir -p "$replica"
[ "$(id -u)" = 0 ] && chown "$CAUSAL_SERVER_USER" "$replica"
echo 24328 >"$replica/port"
as_server "$PGBIN/pg_basebackup" -h "$CAUSAL_WORK" -p 24327 -U postgres -D "$replica/data" -R --checkpoint=fast >/dev/null 2>&1 ||
  bail "pg_basebackup failed"
echo "port = 24328" | as_server tee -a "$replica/data/postgresql.conf" >/dev/null
instance_start standby-replica >/dev/null 2>&1 || bail "could not start the standby"
# pgTAP needs temporary tables, which a standby refuses: it asks from the primary.
tap_sql standby-primary postgres regress/pgtap/scenarios/standby.sql -v standby="host=$CAUSAL_WORK port=24328 dbname=postgres user=postgres"
