#!/usr/bin/env bash
# A region its links cannot bring back, rebuilt: causalctl reseed. us-east,
# killed and failed over, loses the survivors' slots for it to
# max_slot_wal_keep_size while they write; status calls those links lost,
# rejoin refuses and names reseed, and reseed rebuilds it: every message
# the others wrote, its fence lifted, writing again. Then ap-south, killed,
# comes back as a new server restored from a dump of eu-west (with eu-west's
# subscriptions and registration): reseed makes it ap-south again.
source "$(dirname "$0")/../lib/cluster-test.sh"
regions=(us-east eu-west ap-south)
MESH_CONF=("max_slot_wal_keep_size = 1")  # MB: a slot left behind is lost after a few segments
mesh_up rs 28800 5 "${regions[@]}" || bail "could not build the mesh"
# A region's messages, or which region did not answer: two regions that
# both fail to answer never compare equal.
count() {
  local n
  n=$(mesh_sql "$1" -At -c "SELECT count(*) FROM chat.messages" 2>/dev/null)
  [[ $n =~ ^[1-9][0-9]*$ ]] && echo "$n" || echo "no messages from $1"
}
write() {  # write REGION N: N messages
  mesh_sql "$1" -c "INSERT INTO chat.messages (conversation_id, sender, body)
                    SELECT g % 7, current_setting('causal.region'), 'line ' || g FROM generate_series(1, $2) g" >/dev/null
}
own=2000  # us-east's own messages, everywhere before it fails: what a copy would send again
write us-east $own
for r in eu-west ap-south; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" "SELECT count(*) = $own FROM chat.messages" 30 || bail "the first messages did not reach $r"
done

# --- slots lost -------------------------------------------------------------------
instance_kill9 "$(mesh_instance us-east)"
run out causalctl_mesh failover us-east --wait 15
is "$rc" 0 "us-east killed and failed over"
for r in eu-west ap-south; do
  write "$r" 100
  for _ in $(seq 1 8); do  # segments the slot for us-east would need, recycled
    mesh_sql "$r" -c "INSERT INTO chat.messages (conversation_id, body) VALUES (0, 'segment ' || clock_timestamp())" \
      -c "SELECT pg_switch_wal()" -c "CHECKPOINT" >/dev/null
    [ "$(mesh_sql "$r" -At -c "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'causal_${r//-/_}_to_us_east'")" = lost ] && break
  done
done
is "$(for r in eu-west ap-south; do mesh_sql "$r" -At -c "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'causal_${r//-/_}_to_us_east'"; done | tr '\n' ' ')" \
   "lost lost " "the survivors' slots for us-east are lost"
instance_start "$(mesh_instance us-east)" || bail "us-east did not restart"
run out causalctl_mesh status
ok "$(grep -qE '^  eu-west -> us-east +lost ' <<<"$out" && contains "$out" "causalctl reseed us-east" >/dev/null; echo $?)" \
   "status: the link eu-west -> us-east is lost, and it says to reseed us-east"
run out causalctl_mesh rejoin us-east --wait 5
is "$rc" 4 "rejoin us-east: refused, exit 4"
ok "$(contains "$out" "causalctl reseed us-east")" "... saying to reseed it"
[ "$rc" = 4 ] || diag "$out"

survivors=$(count eu-west)
had=$(count us-east)
# What each region's relay pulled and its apply path dropped as already
# there, before and after: reseed copies what is missing, not everything.
pulled() { mesh_sql "$1" -At -c "SELECT rows FROM causal.relay_stats()"; }
dropped() { mesh_sql "$1" -At -c "SELECT coalesce(sum(duplicates), 0) FROM causal.stat_tables"; }
declare -A pulled_before dropped_before
for r in "${regions[@]}"; do pulled_before[$r]=$(pulled "$r"); dropped_before[$r]=$(dropped "$r"); done
run out causalctl_mesh reseed us-east --wait 60
is "$rc" 0 "reseed us-east: exit 0"
[ "$rc" = 0 ] || diag "$out"
is "$(count us-east)" "$survivors" "us-east holds every message the others have ($survivors)"
missing=$((survivors - had))
lacked=$((survivors - own))  # when it came back (the relay's tail may have brought some since)
got=$(( $(pulled us-east) - ${pulled_before[us-east]} ))
diag "us-east had $had of $survivors messages ($own when it came back); its relay pulled $got rows"
# At least what it lacked; at most about twice what it lacked when it came
# back (an unheard peer's rows may also come through another before its own
# pull, and the stable point stays below what the tail brought), never what
# it had.
ok "$([ "$got" -ge "$missing" ] && [ "$got" -le $((2 * lacked + 100)) ]; echo $?)" \
   "... it got the $missing it lacked by pull, reading $got rows for the $lacked it lacked when it came back"
for r in eu-west ap-south; do
  again=$(( $(dropped "$r") - ${dropped_before[$r]} ))
  ok "$([ "$again" -lt $((own / 2)) ]; echo $?)" \
     "... and $r did not get us-east's $own messages again ($again dropped as already there)"
done
is "$(for r in "${regions[@]}"; do mesh_sql "$r" -At -c "SELECT state FROM causal.regions WHERE region = 'us-east'"; done | tr '\n' ' ')" \
   "active active active " "... and every region sees it active"
mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (1, 'ana', 'back')" >/dev/null
for r in eu-west ap-south; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body = 'back'" 20
  ok $? "... and what it writes reaches $r"
done

# --- restored from another region's dump --------------------------------------------
dump=$work/eu-west.dump
PGHOST=$CAUSAL_WORK PGPORT=$(instance_port "$(mesh_instance eu-west)") PGUSER=postgres \
  "$PGBIN/pg_dump" -Fc -d "$MESH_DB" -f "$dump" || bail "pg_dump of eu-west failed"
instance_kill9 "$(mesh_instance ap-south)"
run out causalctl_mesh failover ap-south --wait 15
is "$rc" 0 "ap-south killed and failed over"
write eu-west 30
port=$(instance_port "$(mesh_instance ap-south)")
mesh_region_start ap-south "$port" || bail "no new server for ap-south"
"$PGBIN/pg_restore" -h "$CAUSAL_WORK" -p "$port" -U postgres -d "$MESH_DB" "$dump" >"$work/restore.log" 2>&1
diag "pg_restore: $(grep -c 'error' "$work/restore.log") errors: $(grep -m 3 error "$work/restore.log" | tr '\n' ' ')"
is "$(mesh_sql ap-south -At -c "SELECT count(*) FROM pg_subscription WHERE subname LIKE 'causal\_%\_to\_eu\_west'")" 2 \
   "the new ap-south came back with eu-west's subscriptions, from the dump"
# --json: one document on stdout, init's and rejoin's reports inside it,
# nothing on stderr (PostgreSQL parses it: jsonb refuses two documents).
doc=$(causalctl_mesh reseed ap-south --wait 60 --json 2>"$work/reseed.stderr"); rc=$?
is "$rc" 0 "reseed ap-south --json: exit 0"
[ "$rc" = 0 ] || diag "$doc" "$(cat "$work/reseed.stderr")"
json() { mesh_sql eu-west -At -v doc="$doc" 2>&1 <<<"SELECT $1 FROM (SELECT :'doc'::jsonb AS d) x"; }
is "$(json "d->>'ok', d->>'reseeded', d->'init'->>'ok', d->'rejoin'->>'ok', d->'rejoin'->>'rejoined'" | tr '\n' ' ')" \
   "true|ap-south|true|true|ap-south " "... its stdout is one JSON document: reseeded, init's and rejoin's reports inside"
ok "$([ "$(json "jsonb_array_length(d->'dropped') > 0")" = t ]; echo $?)" "... naming the links it dropped"
is "$(cat "$work/reseed.stderr")" "" "... and nothing on stderr"
is "$(mesh_sql ap-south -At -c "SELECT string_agg(subname, ',' ORDER BY subname) FROM pg_subscription")" \
   "causal_eu_west_to_ap_south,causal_us_east_to_ap_south" "... its subscriptions are ap-south's own"
is "$(count ap-south)" "$(count eu-west)" "... and it holds every message"
run out causalctl_mesh verify --wait 30
is "$rc" 0 "verify: the three converge"
[ "$rc" = 0 ] || diag "$out"
run out causalctl_mesh status
is "$rc" 0 "status: exit 0, every link streaming"
[ "$rc" = 0 ] || diag "$out"
done_testing
