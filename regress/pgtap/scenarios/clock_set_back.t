#!/usr/bin/env bash
# The system clock set back by five minutes (libfaketime) across a clean
# restart and across a kill -9, then put right again: the clock never issues
# a value at or below one it issued before.
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/cluster.sh
source regress/pgtap/scenarios/restarts.sh
trap 'instance_stop setback >/dev/null 2>&1' EXIT

faketime_lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n 1)
[ -n "$faketime_lib" ] || bail "libfaketime is not installed (make deps)"
# Monotonic time stays real: PostgreSQL's timeouts and latches use it.
set_back=(LD_PRELOAD="$faketime_lib" FAKETIME="-300" FAKETIME_DONT_FAKE_MONOTONIC=1 FAKETIME_NO_CACHE=1)

{ instance_init setback 24323 4 test-north && instance_start setback; } >/dev/null 2>&1 ||
  bail "could not start an instance"
restarts_setup setback || bail "could not set up the database"

issue_load setback 1_clean_restart_set_back || bail "the load issued no timestamps"
record_before setback 1_clean_restart_set_back 'ahead_of_physical_ms BETWEEN 290000 AND 310000' \
  'the clock runs five minutes ahead of the set-back system clock' || bail "could not record the clock"
instance_stop setback >/dev/null || bail "could not stop the instance"
instance_start setback "${set_back[@]}" >/dev/null 2>&1 || bail "could not start under faketime"
record_after setback 1_clean_restart_set_back || bail "could not read the clock"

issue_load setback 2_kill9_still_set_back || bail "the load issued no timestamps"
record_before setback 2_kill9_still_set_back 'ahead_of_physical_ms BETWEEN 290000 AND 310000' \
  'it keeps running ahead after a crash' || bail "could not record the clock"
instance_kill9 setback
instance_start setback "${set_back[@]}" >/dev/null 2>&1 || bail "could not restart under faketime"
record_after setback 2_kill9_still_set_back || bail "could not read the clock"

issue_load setback 3_clock_put_right || bail "the load issued no timestamps"
record_before setback 3_clock_put_right 'ahead_of_physical_ms < 3000' \
  'with the system clock right again it follows the system clock' || bail "could not record the clock"
instance_stop setback >/dev/null || bail "could not stop the instance"
instance_start setback >/dev/null 2>&1 || bail "could not start with the real clock"
record_after setback 3_clock_put_right || bail "could not read the clock"

log=$(instance_dir setback)/server.log
grep -q "behind pg_causal's persisted clock ceiling" "$log" || bail "no WARNING about the set-back clock in $log"
tap_sql setback postgres regress/pgtap/scenarios/restarts.sql
