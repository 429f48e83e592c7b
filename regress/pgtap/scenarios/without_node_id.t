#!/usr/bin/env bash
# Preloaded but without causal.node_id or causal.region: the clock refuses to
# issue, and says so; setting the node id and reloading is enough.
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/cluster.sh
trap 'instance_stop nonode >/dev/null 2>&1' EXIT
{ instance_init nonode 24325 -1 '' && instance_start nonode; } >/dev/null 2>&1 ||
  bail "could not start an instance"
instance_psql nonode -d postgres -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION pg_causal' >/dev/null ||
  bail "could not set up the database"
tap_sql nonode postgres regress/pgtap/scenarios/without_node_id.sql
