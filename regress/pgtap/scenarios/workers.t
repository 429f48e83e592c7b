#!/usr/bin/env bash
# pg_causal's background workers in PostgreSQL's idiom: a round that fails
# costs the round, not the worker, which reports it and sleeps at least a
# second before the next; the liveness settings are checked, in their
# order, where the workers use them, at start and on reload; a clock
# WARNING a process would repeat for every row is rate-limited.
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/tap.sh
source regress/lib/cluster.sh

name=workers
db=causal_workers
trap 'instance_stop $name >/dev/null 2>&1 || true' EXIT
instance_init $name 24331 1 w-east "causal.database = '$db'" "causal.heartbeat_interval = 200ms" \
  "causal.relay_after = 100ms" "causal.self_fence_after = 150ms" >/dev/null || bail "initdb failed"
instance_start $name || bail "the server did not start"
log="$(instance_dir $name)/server.log"
sql() { instance_psql $name -d $db -At "$@"; }
instance_psql $name -d postgres -c "CREATE DATABASE $db" >/dev/null || bail "no database"
sql -c "CREATE EXTENSION pg_causal" -c "SELECT causal.register_region('w-east', 1)" >/dev/null ||
  bail "no extension"
worker_pid() { sql -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_causal liveness'"; }
wait_until $name $db "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'pg_causal liveness')" 30 ||
  bail "no liveness worker"

# --- the settings' order, at start and on reload -------------------------------
wait_until $name $db "SELECT count(*) = 1 FROM causal.heartbeats" 30 || bail "no heartbeat"
ok "$(grep -c 'WARNING:  causal.relay_after (100 ms) is not above causal.heartbeat_interval (200 ms)' "$log" |
      grep -qx 1; echo $?)" "at start: a relay_after not above the heartbeat interval is named, with the value used"
ok "$(grep -q 'WARNING:  causal.self_fence_after (150 ms) is not above causal.relay_after (400 ms).*using 600 ms' "$log";
      echo $?)" "... and a self_fence_after not above the relay_after in use, with the value used"
sql -c "ALTER SYSTEM SET causal.relay_after = '1s'" -c "ALTER SYSTEM SET causal.self_fence_after = '2s'" \
    -c "SELECT pg_reload_conf()" >/dev/null
sql -c "ALTER SYSTEM SET causal.relay_after = '50ms'" -c "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 1 100); do
  grep -q 'causal.relay_after (50 ms) is not above' "$log" && break
  sleep 0.1
done
ok "$(grep -q 'WARNING:  causal.relay_after (50 ms) is not above causal.heartbeat_interval (200 ms)' "$log"; echo $?)" \
   "on reload: the setting out of order is named again"
ok "$(grep -q 'causal.self_fence_after (2000 ms) is not above' "$log"; [ $? = 1 ]; echo $?)" \
   "... and a setting in order is not"

# --- a round that fails ----------------------------------------------------------
pid=$(worker_pid)
sql -c "CREATE FUNCTION public.refuse_beat() RETURNS trigger LANGUAGE plpgsql AS
          \$\$ BEGIN RAISE EXCEPTION 'no beat today'; END \$\$" \
    -c "CREATE TRIGGER refuse_beat BEFORE INSERT OR UPDATE ON causal.heartbeats
          FOR EACH ROW EXECUTE FUNCTION public.refuse_beat()" \
    >/dev/null
for _ in $(seq 1 150); do
  [ "$(grep -c "\[$pid\] ERROR:  no beat today" "$log")" -ge 4 ] && break
  sleep 0.1
done
errors=$(grep "\[$pid\] ERROR:  no beat today" "$log")
ok "$([ "$(wc -l <<<"$errors")" -ge 4 ]; echo $?)" "a failing round is reported in the log, round after round"
is "$(worker_pid)" "$pid" "... by the same worker: the error cost the round, not the process"
# The log's own timestamps (%m): each report at least a second after the
# one before, whatever the load (a slower machine only widens the gaps).
gaps=$(awk '{ split($2, t, ":"); s = t[1] * 3600 + t[2] * 60 + t[3]; if (NR > 1) printf "%.3f\n", s - last; last = s }' \
         <<<"$errors")
ok "$(awk '$1 < 1.0 { short = 1 } END { exit short }' <<<"$gaps"; echo $?)" \
   "... which sleeps at least a second after each (gaps: $(tr '\n' ' ' <<<"$gaps"))"
before=$(sql -c "SELECT beat FROM causal.heartbeats")
sql -c "DROP TRIGGER refuse_beat ON causal.heartbeats" >/dev/null
wait_until $name $db "SELECT beat > $before FROM causal.heartbeats" 30
ok $? "... and beats again once the cause is gone"

# --- a clock WARNING per row, rate-limited ----------------------------------------
far=$(sql -c "SELECT causal.hlc_from_parts(causal.hlc_physical_ms(causal.hlc_now()) + 60000, 0, 9)")
rejected=$(sql -c "SELECT offset_rejections FROM causal.clock_status")
out=$(sql -c "SET client_min_messages = warning" \
          -c "SELECT count(causal.hlc_observe('$far'::causal.hlc)) FROM generate_series(1, 5)" \
          -c "SELECT causal.hlc_observe('$far'::causal.hlc)" 2>&1 >/dev/null)
is "$(grep -c 'not adopted' <<<"$out")" 1 "six hlcs too far ahead in one session: one WARNING"
is "$(sql -c "SELECT offset_rejections - $rejected FROM causal.clock_status")" 6 "... and six counted rejections"

done_testing
