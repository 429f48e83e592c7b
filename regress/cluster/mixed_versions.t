#!/usr/bin/env bash
# A rolling upgrade, as README's "Upgrading" says to do it, under load: three
# regions at 0.2.0 (its install script as it shipped, sql/updates/),
# subscribed to each other the way 0.2.0's causalctl init made it, writing
# replies all along. One region at a time is restarted and updated to 0.3.0,
# so the mesh runs mixed for a while (a tombstone made by an updated region
# meanwhile too); then the new causalctl init moves the links to 0.3.0's
# publications. No apply worker stops with an error at any step, and every
# region ends with the same messages in the same order.
source "$(dirname "$0")/../lib/cluster-test.sh"
regions=(us-east eu-west ap-south)
MESH_PREFIX=mixed MESH_REGIONS=("${regions[@]}")
base=28100

# --- a 0.2.0 mesh ------------------------------------------------------------
config="$CAUSAL_WORK/mixed.causalctl.conf"
: >"$config"
i=0
for r in "${regions[@]}"; do
  instance_init "$(mesh_instance "$r")" $((base + i)) $((i + 1)) "$r" \
    "wal_retrieve_retry_interval = '500ms'" "max_wal_senders = 20" "max_replication_slots = 20" \
    "max_logical_replication_workers = 20" "max_worker_processes = 32" "causal.database = 'chat'" \
    "causal.heartbeat_interval = '250ms'" >/dev/null || bail "could not make $r"
  instance_start "$(mesh_instance "$r")" || bail "could not start $r"
  echo "region = $r=$(mesh_dsn $((base + i)))" >>"$config"
  i=$((i + 1))
done
for r in "${regions[@]}"; do
  instance_psql "$(mesh_instance "$r")" -d postgres -c "CREATE DATABASE chat" >/dev/null || bail "no database in $r"
  mesh_sql "$r" -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || bail "could not install 0.2.0 in $r"
SET client_min_messages = warning;
CREATE EXTENSION pg_causal VERSION '0.2.0';
SELECT causal.register_region('us-east', 1), causal.register_region('eu-west', 2), causal.register_region('ap-south', 3);
CREATE SCHEMA chat;
CREATE TABLE chat.messages (conversation_id bigint NOT NULL, sender text NOT NULL DEFAULT '', body text NOT NULL DEFAULT '');
SELECT causal.enable('chat.messages', conversation => 'conversation_id', notify => true);
SQL
done
# 0.2.0's causalctl init: one subscription per link, to causal_mesh alone.
for to in "${regions[@]}"; do
  for from in "${regions[@]}"; do
    [ "$from" = "$to" ] && continue
    link=causal_${from//-/_}_to_${to//-/_}
    mesh_sql "$to" -v ON_ERROR_STOP=1 -c "CREATE SUBSCRIPTION $link CONNECTION '$(mesh_region_dsn "$from")'
      PUBLICATION causal_mesh WITH (copy_data = true, synchronous_commit = 'local', slot_name = '$link')" \
      >/dev/null 2>&1 || bail "could not subscribe $to to $from"
  done
done
mesh_wait_streaming || bail "the 0.2.0 mesh does not stream"

versions() { for r in "${regions[@]}"; do printf '%s ' "$(mesh_sql "$r" -At -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_causal'")"; done; }
is "$(versions)" "0.2.0 0.2.0 0.2.0 " "three regions at 0.2.0, joined as 0.2.0 joined them"

# What the servers logged as errors since the start, but a link's
# connection lost or refused while its peer restarted: nothing else may
# stop an apply worker.
apply_errors() {
  local r
  for r in "${regions[@]}"; do
    grep -h ' ERROR: ' "$(instance_dir "$(mesh_instance "$r")")/server.log" |
      grep -Ev 'could not (connect to the publisher|send end-of-streaming message|receive data from WAL stream)|replication origin with ID [0-9]+ is already active' |
      sed "s/^/$r: /"
  done
}
streaming() {  # every region's apply workers run, one per peer
  local r
  for r in "${regions[@]}"; do
    wait_until "$(mesh_instance "$r")" chat "SELECT count(*) = 2 FROM $MESH_APPLY_WORKERS" "${1:-20}" || return 1
  done
}

# --- replies in every region, all along ----------------------------------------
# One psql per reply, so that a writer reconnects after its region restarts.
cat >"$work/reply.sql" <<'SQL'
SELECT 1 + (random() * 19)::int AS conversation \gset
INSERT INTO chat.messages (conversation_id, sender, body, deps)
SELECT :conversation, current_setting('causal.region'), 'reply',
       ARRAY(SELECT hlc FROM chat.messages WHERE conversation_id = :conversation ORDER BY hlc DESC LIMIT 1);
SQL
seconds=40
writer() {  # writer REGION: replies until the time is up; how many went in, in $work/sent-REGION
  local end=$((SECONDS + seconds)) n=0
  while [ $SECONDS -lt $end ]; do
    mesh_sql "$1" -f "$work/reply.sql" >/dev/null 2>&1 && n=$((n + 1))
    sleep 0.05
  done
  echo "$n" >"$work/sent-$1"
}
pids=()
for r in "${regions[@]}"; do writer "$r" & pids+=($!); done
sleep 4

# --- one region at a time: restart, update ---------------------------------------
for r in "${regions[@]}"; do
  instance_stop "$(mesh_instance "$r")" && instance_start "$(mesh_instance "$r")" || bail "could not restart $r"
  out=$(mesh_sql "$r" -v ON_ERROR_STOP=1 -c "ALTER EXTENSION pg_causal UPDATE" 2>&1)
  ok $? "$r restarted and updated to 0.3.0 while the others run $(versions | tr ' ' '\n' | grep -c 0.2.0)x 0.2.0${out:+: $out}"
  if [ "$r" = us-east ]; then
    # a tombstone made by a region of 0.3.0 (it has written_by) while its
    # peers run 0.2.0 (whose tables lack the column)
    mesh_sql us-east -c "DELETE FROM chat.messages WHERE msg_id = (SELECT msg_id FROM chat.messages
                           WHERE crdb_region = 'eu-west' AND deleted_at IS NULL ORDER BY hlc LIMIT 1)" >/dev/null
  fi
  sleep 3
  streaming 20
  ok $? "... and every link still streams"
  is "$(apply_errors)" "" "... and no apply worker has stopped on an error but a lost connection"
done
is "$(versions)" "0.3.0 0.3.0 0.3.0 " "every region runs 0.3.0"
for r in eu-west ap-south; do
  wait_until "$(mesh_instance "$r")" chat \
    "SELECT count(*) = 1 FROM chat.messages WHERE deleted_at IS NOT NULL AND crdb_region = 'eu-west'" 20
  ok $? "the tombstone us-east made while mixed reached $r"
done

# --- the new causalctl init moves the links ---------------------------------------------
out=$(CAUSALCTL_CONFIG="$config" "$CAUSAL_BUILD/causalctl" init 2>&1)
ok $? "causalctl init (0.3.0) moves the mesh to 0.3.0's publications${out:+: $(tail -n 1 <<<"$out")}"
is "$(for r in "${regions[@]}"; do mesh_sql "$r" -At -c "SELECT string_agg(DISTINCT array_to_string(subpublications, ','), ' ')
                                                        FROM pg_subscription WHERE subname LIKE 'causal\_%'"; done | sort -u)" \
   "causal_mesh,causal_messages,causal_copy" "every link subscribes to the three publications"
is "$(for r in "${regions[@]}"; do mesh_sql "$r" -At -c "SELECT count(*) FROM pg_publication_tables
                                                        WHERE pubname = 'causal_mesh' AND schemaname = 'chat'"; done | sort -u)" \
   0 "no region's causal_mesh carries the messages any longer"
for pid in "${pids[@]}"; do wait "$pid"; done
sent=$(for r in "${regions[@]}"; do printf '%s:%s ' "$r" "$(cat "$work/sent-$r")"; done)
diag "replies written during the upgrade: $sent"
ok "$(for r in "${regions[@]}"; do [ "$(cat "$work/sent-$r")" -gt 100 ] || echo no; done | grep -q no; [ $? = 1 ]; echo $?)" \
   "every region took replies all along (more than 100 in ${seconds} s each: $sent)"
is "$(apply_errors)" "" "no apply worker stopped on an error but a lost connection, from start to end"

# a tombstone now travels with its written_by
mesh_sql ap-south -c "DELETE FROM chat.messages WHERE msg_id = (SELECT msg_id FROM chat.messages
                       WHERE crdb_region = 'us-east' AND deleted_at IS NULL ORDER BY hlc LIMIT 1)" >/dev/null
for r in us-east eu-west; do
  wait_until "$(mesh_instance "$r")" chat "SELECT count(*) = 1 FROM chat.messages WHERE written_by = 'ap-south'" 20
  ok $? "a tombstone ap-south makes now reaches $r with its written_by"
done
run out env CAUSALCTL_CONFIG="$config" "$CAUSAL_BUILD/causalctl" verify --wait 30
is "$rc" 0 "causalctl verify: every region holds the same messages in the same order"
[ "$rc" = 0 ] || diag "$out"
is "$(for r in "${regions[@]}"; do mesh_sql "$r" -At -c "$MESH_ORDER_VIOLATIONS_SQL"; done | sort -u)" 0 \
   "no region delivers a reply before what it answers"
done_testing
