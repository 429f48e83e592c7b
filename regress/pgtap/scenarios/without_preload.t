#!/usr/bin/env bash
# Without shared_preload_libraries the type works and the clock refuses with
# a message that says how to fix it.
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/cluster.sh
trap 'instance_stop nopreload >/dev/null 2>&1' EXIT
{ instance_init nopreload 24324 5 test-lone "shared_preload_libraries = ''" && instance_start nopreload; } \
  >/dev/null 2>&1 || bail "could not start an instance"
instance_psql nopreload -d postgres -c 'CREATE EXTENSION pgtap' >/dev/null || bail "no pgtap"
tap_sql nopreload postgres regress/pgtap/scenarios/without_preload.sql
