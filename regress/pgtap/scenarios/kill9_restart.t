#!/usr/bin/env bash
# kill -9 of the postmaster under load (500 timestamps committed, and the
# load still running, when it dies), twice: once with the clock running
# 4 s ahead of the wall clock (a remote value adopted just before the crash),
# once with it at the wall clock. Both times the first timestamp after the
# restart is above every timestamp issued before the crash: the last the
# clock had issued when it was read, and every one the load committed.
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/cluster.sh
source regress/pgtap/scenarios/restarts.sh
trap 'instance_stop crash >/dev/null 2>&1' EXIT

{ instance_init crash 24322 3 test-south "causal.max_clock_offset = '5s'" && instance_start crash; } \
  >/dev/null 2>&1 || bail "could not start an instance"
restarts_setup crash || bail "could not set up the database"

# Phase "ahead": without a persisted ceiling the restarted clock would start
# at the wall clock, 4 s below what it had issued.
load_until_killed crash ahead || bail "the load did not run"
instance_psql crash -d postgres -c "
  SELECT causal.hlc_observe(causal.hlc_from_parts(
           (extract(epoch FROM clock_timestamp()) * 1000)::bigint + 4000, 0, 9))" >/dev/null
record_before crash ahead 'ahead_of_physical_ms > 2000' \
  'the clock resumes above the ceiling, ahead of the wall clock' || bail "could not record the clock"
kill -0 "$LOAD_PID" 2>/dev/null || bail "the load stopped before the kill"
instance_kill9 crash
load_killed
instance_start crash >/dev/null 2>&1 || bail "the instance did not restart after kill -9"
record_after crash ahead || bail "could not read the clock after the restart"

# Phase "at_wall_clock": the ceiling is at most a second ahead; the restart
# waits it out, so the clock starts at the wall clock, not above it.
load_until_killed crash at_wall_clock || bail "the load did not run"
record_before crash at_wall_clock 'ahead_of_physical_ms = 0' \
  'the restart waited out the ceiling instead of running ahead' || bail "could not record the clock"
kill -0 "$LOAD_PID" 2>/dev/null || bail "the load stopped before the kill"
instance_kill9 crash
load_killed
instance_start crash >/dev/null 2>&1 || bail "the instance did not restart after kill -9"
record_after crash at_wall_clock || bail "could not read the clock after the restart"

tap_sql crash postgres regress/pgtap/scenarios/restarts.sql
