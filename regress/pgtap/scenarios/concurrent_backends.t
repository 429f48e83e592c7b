#!/usr/bin/env bash
# Backends racing for timestamps (pgbench, 2 and 4 clients, single rows and
# batches): every value is unique and each backend's values increase.
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/cluster.sh
here=regress/pgtap/scenarios
trap 'instance_stop concurrent >/dev/null 2>&1' EXIT

{ instance_init concurrent 24321 2 test-west && instance_start concurrent; } >/dev/null 2>&1 ||
  bail "could not start an instance"
instance_psql concurrent -d postgres \
  -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION pg_causal' \
  -c 'CREATE TABLE IF NOT EXISTS issued (seq bigserial, backend int, h causal.hlc)' >/dev/null ||
  bail "could not set up the database"

for clients in 2 4; do
  "$PGBIN/pgbench" -n -h "$CAUSAL_WORK" -p "$(instance_port concurrent)" -U postgres -d postgres \
    -c "$clients" -j 2 -T 3 -f "$here/issue_one.pgbench@3" -f "$here/issue_batch.pgbench@1" \
    >/dev/null 2>&1 || bail "pgbench with $clients clients failed"
done
tap_sql concurrent postgres "$here/concurrent_backends.sql"
