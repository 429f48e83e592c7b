#!/usr/bin/env bash
# A rolling upgrade, as docs/operations.md (Upgrading) says, under load: three
# regions at 0.3.0 (its install script as it shipped, sql/updates/),
# subscribed to each other the way 0.3.0's causalctl init made it (links a
# superuser owns), writing replies all along, into a table of the demo and
# into a tenant's table 0.3.0 took and 0.4.0's shape does not (a default of
# uuid-ossp's, a CHECK calling its owner's function). One region at a time
# is restarted and updated to 0.4.0, so the mesh runs mixed for a while: an
# updated region's links move to causal_replicator during the update, its
# workers restart as it, while the others' stay a superuser's. Then
# causalctl status names the tenant's tables and init completes the mesh.
# No apply worker stops with an error at any step, and every region ends
# with the same messages in the same order, the tenant's too.
source "$(dirname "$0")/../lib/cluster-test.sh"
regions=(us-east eu-west ap-south)
MESH_PREFIX=mixed MESH_REGIONS=("${regions[@]}")
base=28100

# --- a 0.3.0 mesh ------------------------------------------------------------
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
  mesh_sql "$r" -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || bail "could not install 0.3.0 in $r"
SET client_min_messages = warning;
CREATE EXTENSION pg_causal VERSION '0.3.0';
CREATE EXTENSION "uuid-ossp";
SELECT causal.register_region('us-east', 1), causal.register_region('eu-west', 2), causal.register_region('ap-south', 3);
CREATE SCHEMA chat;
CREATE TABLE chat.messages (conversation_id bigint NOT NULL, sender text NOT NULL DEFAULT '', body text NOT NULL DEFAULT '');
SELECT causal.enable('chat.messages', conversation => 'conversation_id', notify => true);
CREATE ROLE app LOGIN;
CREATE SCHEMA legacy AUTHORIZATION app;
SET ROLE app;
CREATE FUNCTION legacy.polite(body text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT body <> 'rude' $$;
CREATE TABLE legacy.talk (conversation_id bigint NOT NULL, tag uuid DEFAULT uuid_generate_v4(),
                          body text NOT NULL DEFAULT '' CHECK (legacy.polite(body)));
RESET ROLE;
SELECT causal.enable('legacy.talk', conversation => 'conversation_id');
SQL
done
# 0.3.0's causalctl init: one subscription per link, to the three
# publications, made and owned by a superuser; causal_mesh then carries no
# message table.
for to in "${regions[@]}"; do
  for from in "${regions[@]}"; do
    [ "$from" = "$to" ] && continue
    link=causal_${from//-/_}_to_${to//-/_}
    mesh_sql "$to" -v ON_ERROR_STOP=1 -c "CREATE SUBSCRIPTION $link CONNECTION '$(mesh_region_dsn "$from")'
      PUBLICATION causal_mesh, causal_messages, causal_copy
      WITH (copy_data = true, synchronous_commit = 'local', slot_name = '$link')" \
      >/dev/null 2>&1 || bail "could not subscribe $to to $from"
  done
done
for r in "${regions[@]}"; do mesh_sql "$r" -c "SELECT causal.mesh_publication(false)" >/dev/null; done
mesh_wait_streaming || bail "the 0.3.0 mesh does not stream"

versions() { for r in "${regions[@]}"; do printf '%s ' "$(mesh_sql "$r" -At -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_causal'")"; done; }
is "$(versions)" "0.3.0 0.3.0 0.3.0 " "three regions at 0.3.0, joined as 0.3.0 joined them, by a superuser's links"

# What the servers logged as errors since the start, but a link's (or the
# relay's) connection lost or refused while its peer restarted: nothing
# else may stop an apply worker.
apply_errors() {
  local r
  for r in "${regions[@]}"; do
    grep -h ' ERROR: ' "$(instance_dir "$(mesh_instance "$r")")/server.log" |
      grep -Ev 'could not (connect to the publisher|send end-of-streaming message|receive data from WAL stream)|replication origin with ID [0-9]+ is already active|pg_causal relay: cannot reach region' |
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
INSERT INTO legacy.talk (conversation_id, body) VALUES (:conversation, 'legacy ' || current_setting('causal.region'));
SQL
now() { date +%s.%N; }
writer() {  # writer REGION: replies until $work/stop appears; when each went in, in $work/sent-REGION
  : >"$work/sent-$1"
  while [ ! -e "$work/stop" ]; do
    mesh_sql "$1" -f "$work/reply.sql" >/dev/null 2>&1 && now >>"$work/sent-$1"
    sleep 0.05
  done
}
# replies_between REGION FROM TO: how many replies REGION took in that time
replies_between() { awk -v from="$2" -v to="$3" '$1 >= from && $1 <= to' "$work/sent-$1" | wc -l; }
pids=()
for r in "${regions[@]}"; do writer "$r" & pids+=($!); done
sleep 4

# --- one region at a time: restart, update ---------------------------------------
for r in "${regions[@]}"; do
  echo "$(now)" >"$work/upgrade-$r"
  instance_stop "$(mesh_instance "$r")" && instance_start "$(mesh_instance "$r")" || bail "could not restart $r"
  out=$(mesh_sql "$r" -v ON_ERROR_STOP=1 -c "ALTER EXTENSION pg_causal UPDATE" 2>&1)
  ok $? "$r restarted and updated to 0.4.0 while the others run $(versions | tr ' ' '\n' | grep -c 0.3.0)x 0.3.0"
  ok "$([[ $out == *"legacy.talk is outside the shape of a message table"* ]]; echo $?)" \
     "... the update names the tenant's table it takes as it is (${out%%$'\n'*})"
  is "$(mesh_sql "$r" -At -c "SELECT string_agg(DISTINCT subowner::regrole::text, ',') FROM pg_subscription")" \
     causal_replicator "... its links belong to causal_replicator now"
  wait_until "$(mesh_instance "$r")" chat \
    "SELECT count(*) = 2 FROM pg_stat_subscription w JOIN pg_stat_activity a ON a.pid = w.pid
      WHERE w.relid IS NULL AND a.usename = 'causal_replicator'" 20
  ok $? "... and their workers run as it"
  if [ "$r" = us-east ]; then
    # a tombstone made by a region of 0.4.0 while its peers run 0.3.0
    mesh_sql us-east -c "DELETE FROM chat.messages WHERE msg_id = (SELECT msg_id FROM chat.messages
                           WHERE crdb_region = 'eu-west' AND deleted_at IS NULL ORDER BY hlc LIMIT 1)" >/dev/null
  fi
  sleep 3
  streaming 20
  ok $? "... and every link still streams"
  is "$(apply_errors)" "" "... and no apply worker has stopped on an error but a lost connection"
  echo "$(cat "$work/upgrade-$r") $(now)" >"$work/upgrade-$r"
done
is "$(versions)" "0.4.0 0.4.0 0.4.0 " "every region runs 0.4.0"
for r in eu-west ap-south; do
  wait_until "$(mesh_instance "$r")" chat \
    "SELECT count(*) = 1 FROM chat.messages WHERE deleted_at IS NOT NULL AND crdb_region = 'eu-west'" 20
  ok $? "the tombstone us-east made while mixed reached $r"
done

# --- status, then the new causalctl init ---------------------------------------------------
run out env CAUSALCTL_CONFIG="$config" "$CAUSAL_BUILD/causalctl" status
is "$rc" 1 "causalctl status after the update: exit 1, with what needs attention"
ok "$([[ $out == *"message table legacy.talk is outside the shape of a message table"* ]]; echo $?)" \
   "... it names the tenant's table outside the shape, in every region ($(grep -c 'legacy.talk is outside' <<<"$out"))"
run out env CAUSALCTL_CONFIG="$config" "$CAUSAL_BUILD/causalctl" init
is "$rc" 0 "causalctl init (0.4.0) on the updated mesh${out:+: $(tail -n 1 <<<"$out")}"
is "$(for r in "${regions[@]}"; do mesh_sql "$r" -At -c "SELECT string_agg(DISTINCT array_to_string(subpublications, ','), ' ')
                                                        FROM pg_subscription WHERE subname LIKE 'causal\_%'"; done | sort -u)" \
   "causal_mesh,causal_messages,causal_copy" "every link subscribes to the three publications"
sleep 2
touch "$work/stop"
for pid in "${pids[@]}"; do wait "$pid"; done
# All along: while each other region restarted and updated, and after.
quiet=""
read -r _ updated <"$work/upgrade-${regions[-1]}"
for r in "${regions[@]}"; do
  for u in "${regions[@]}"; do
    [ "$r" = "$u" ] && continue
    read -r from to <"$work/upgrade-$u"
    [ "$(replies_between "$r" "$from" "$to")" -gt 0 ] || quiet+=" $r(while $u updated)"
  done
  [ "$(replies_between "$r" "$updated" "$(now)")" -gt 0 ] || quiet+=" $r(after)"
done
sent=$(for r in "${regions[@]}"; do printf '%s:%s ' "$r" "$(wc -l <"$work/sent-$r")"; done)
is "$quiet" "" "every region took replies all along: while each other region updated, and after ($sent)"
is "$(apply_errors)" "" "no apply worker stopped on an error but a lost connection, from start to end"

# The tenant's table took every region's rows all along, stored as its owner.
legacy_counts=$(for r in "${regions[@]}"; do mesh_sql "$r" -At -c "SELECT count(*) FROM legacy.talk"; done | sort -u)
is "$(wc -l <<<"$legacy_counts")" 1 "every region holds the same rows of the tenant's table ($legacy_counts)"
is "$(mesh_sql us-east -At -c "SELECT string_agg(DISTINCT body, ',' ORDER BY body) FROM legacy.talk")" \
   "legacy ap-south,legacy eu-west,legacy us-east" "... written in all three regions through the upgrade"

# a tombstone now travels with its written_by
mesh_sql ap-south -c "DELETE FROM chat.messages WHERE msg_id = (SELECT msg_id FROM chat.messages
                       WHERE crdb_region = 'us-east' AND deleted_at IS NULL ORDER BY hlc LIMIT 1)" >/dev/null
for r in us-east eu-west; do
  wait_until "$(mesh_instance "$r")" chat "SELECT count(*) = 1 FROM chat.messages WHERE written_by = 'ap-south'" 20
  ok $? "a tombstone ap-south makes now reaches $r with its written_by"
done
run out env CAUSALCTL_CONFIG="$config" "$CAUSAL_BUILD/causalctl" verify --wait 30
is "$rc" 1 "causalctl verify: exit 1, for the tenant's table outside the shape"
is "$(grep -c 'legacy.talk cannot be verified' <<<"$out")" 3 "... which it names in every region"
ok "$(contains "$out" "the other 20 conversation histories and the fencing state agree")" "... and verifies the rest"
# A superuser brings the tenant's table into the shape, as the update's
# warning says: built-in functions only, then enable() again.
for r in "${regions[@]}"; do
  mesh_sql "$r" -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || diag "could not mend legacy.talk in $r"
ALTER TABLE legacy.talk ALTER COLUMN tag SET DEFAULT gen_random_uuid(), DROP CONSTRAINT talk_body_check,
  ADD CONSTRAINT talk_body_check CHECK (body <> 'rude');
SELECT causal.enable('legacy.talk', 'conversation_id');
SQL
done
run out env CAUSALCTL_CONFIG="$config" "$CAUSAL_BUILD/causalctl" verify --wait 30
is "$rc" 0 "causalctl verify: then every region holds the same messages in the same order, the tenant's too"
[ "$rc" = 0 ] || diag "$out"
is "$(for r in "${regions[@]}"; do mesh_sql "$r" -At -c "$MESH_ORDER_VIOLATIONS_SQL"; done | sort -u)" 0 \
   "no region delivers a reply before what it answers"
done_testing
