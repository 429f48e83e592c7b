#!/usr/bin/env bash
# Monitoring with Prometheus: Debian's prometheus-postgres-exporter (0.11.1)
# runs with monitoring/pg_causal-queries.yaml against eu-west of a real
# three-region mesh, logged in as `exporter`, a member of pg_monitor and
# nothing else, with a schema of hostile operators and functions first on
# its search_path. Scraped over HTTP with curl, it shows both links into
# eu-west and both slots out of it with their labels, every region's epoch
# and fence, the peers' liveness, the clock and the stable cursor, and no
# message table until the exporter may read it. Then real events move the
# metrics: a row quarantined by a CHECK only eu-west has, a row whose hlc
# is 10 s ahead (an offset rejection), a cut link whose last-message age
# grows while the other link's does not (and falls back after the heal),
# us-east killed (its liveness age and the stable cursor's lag grow, its
# slot goes inactive and holds more WAL, the link from it has no worker),
# and failed over (its fenced metric becomes 1, its epoch grows).
source "$(dirname "$0")/../lib/cluster-test.sh"

exporter_bin=$(dpkg -L prometheus-postgres-exporter 2>/dev/null | grep '/bin/prometheus-postgres-exporter$')
[ -x "$exporter_bin" ] || bail "prometheus-postgres-exporter is not installed (tools/install-deps installs it)"
command -v curl >/dev/null || bail "curl is not installed (tools/install-deps installs it)"
queries=$PWD/monitoring/pg_causal-queries.yaml
exporter_port=28420
exporter_pid=""
stop_exporter() {
  [ -n "$exporter_pid" ] || return 0
  kill "$exporter_pid" 2>/dev/null
  wait "$exporter_pid" 2>/dev/null
  exporter_pid=""
}
if [ -n "${KEEP_INSTANCES:-}" ]; then trap stop_exporter EXIT; else trap 'stop_exporter; cluster_test_cleanup' EXIT; fi

MESH_CONF=()
mesh_up exporter 28300 5 us-east eu-west ap-south || bail "could not build the mesh"
eu_west=$(mesh_instance eu-west)

# The exporter's login, in every region (roles are not replicated): pg_monitor
# and no more. In eu-west, which it scrapes, its search_path starts with a
# schema whose = - / now() current_setting() lower() raise.
for r in us-east eu-west ap-south; do
  mesh_sql "$r" -c "CREATE ROLE exporter LOGIN IN ROLE pg_monitor" >/dev/null || bail "could not create the exporter login in $r"
done
mesh_sql eu-west >/dev/null <<'SQL' || bail "could not create the trap schema"
CREATE SCHEMA trap;
GRANT USAGE ON SCHEMA trap TO PUBLIC;
CREATE FUNCTION trap.raise(text) RETURNS boolean LANGUAGE plpgsql AS $$BEGIN RAISE 'trapped %', $1; END$$;
CREATE FUNCTION trap.eq(name, text) RETURNS boolean LANGUAGE sql AS $$SELECT trap.raise('=(name,text)')$$;
CREATE FUNCTION trap.eq(text, text) RETURNS boolean LANGUAGE sql AS $$SELECT trap.raise('=(text,text)')$$;
CREATE FUNCTION trap.eq(oid, oid) RETURNS boolean LANGUAGE sql AS $$SELECT trap.raise('=(oid,oid)')$$;
CREATE FUNCTION trap.minus(timestamptz, timestamptz) RETURNS interval LANGUAGE sql AS $$SELECT trap.raise('-(timestamptz,timestamptz)')::int * interval '1s'$$;
CREATE FUNCTION trap.minus(double precision, numeric) RETURNS numeric LANGUAGE sql AS $$SELECT trap.raise('-(float8,numeric)')::int::numeric$$;
CREATE FUNCTION trap.div(bigint, numeric) RETURNS numeric LANGUAGE sql AS $$SELECT trap.raise('/(bigint,numeric)')::int::numeric$$;
CREATE FUNCTION trap.div(integer, numeric) RETURNS numeric LANGUAGE sql AS $$SELECT trap.raise('/(integer,numeric)')::int::numeric$$;
CREATE OPERATOR trap.= (LEFTARG = name, RIGHTARG = text, FUNCTION = trap.eq);
CREATE OPERATOR trap.= (LEFTARG = text, RIGHTARG = text, FUNCTION = trap.eq);
CREATE OPERATOR trap.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = trap.eq);
CREATE OPERATOR trap.- (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = trap.minus);
CREATE OPERATOR trap.- (LEFTARG = double precision, RIGHTARG = numeric, FUNCTION = trap.minus);
CREATE OPERATOR trap./ (LEFTARG = bigint, RIGHTARG = numeric, FUNCTION = trap.div);
CREATE OPERATOR trap./ (LEFTARG = integer, RIGHTARG = numeric, FUNCTION = trap.div);
CREATE FUNCTION trap.now() RETURNS timestamptz LANGUAGE sql AS $$SELECT trap.raise('now()')::int * interval '1s' + 'epoch'::timestamptz$$;
CREATE FUNCTION trap.current_setting(text) RETURNS text LANGUAGE sql AS $$SELECT trap.raise('current_setting()')::text$$;
CREATE FUNCTION trap.lower(text) RETURNS text LANGUAGE sql AS $$SELECT trap.raise('lower()')::text$$;
ALTER ROLE exporter SET search_path = trap, pg_catalog;
SQL
run out mesh_sql eu-west -U exporter -At -c "SELECT 'a'::text = 'a'::text"
ok "$(contains "$out" "trapped =(text,text)")" "eu-west: the exporter login's search_path puts trap's = before pg_catalog's"

# A message from us-east, so that eu-west counts chat.messages: a table is
# in causal.stat_tables from its first counted event.
is "$(mesh_sql eu-west -At -c "SELECT count(*) FROM causal.stat_tables")" 0 "eu-west has counted nothing yet"
mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (1, 'ana', 'first')" >/dev/null ||
  bail "could not write in us-east"
wait_until "$eu_west" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body = 'first'" 20 ||
  bail "the first message did not reach eu-west"
# eu-west hears both peers, and has a heartbeat of each (its stable cursor).
wait_until "$eu_west" "$MESH_DB" "SELECT count(heard_ms_ago) = 2 AND max(heard_ms_ago) < 1000 FROM causal.liveness()" 20 ||
  bail "eu-west does not hear its peers' heartbeats"
wait_until "$eu_west" "$MESH_DB" \
  "SELECT causal.hlc_physical_ms(causal.stable_hlc()) > (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 2000" 20 ||
  bail "eu-west's stable cursor does not follow real time"

# The real exporter, only the queries file's metrics (and its own).
DATA_SOURCE_NAME="host=127.0.0.1 port=$(instance_port "$eu_west") user=exporter dbname=$MESH_DB sslmode=disable" \
  "$exporter_bin" --web.listen-address="127.0.0.1:$exporter_port" --extend.query-path="$queries" \
  --disable-default-metrics --disable-settings-metrics --no-collector.database --no-collector.bgwriter \
  >"$work/exporter.log" 2>&1 &
exporter_pid=$!

scrapes=0 scrape_errors=0
# scrape: /metrics into $work/metrics; counts the scrapes in which a query failed
scrape() {
  curl -sf --max-time 5 -o "$work/metrics" "http://127.0.0.1:$exporter_port/metrics" || return 1
  scrapes=$((scrapes + 1))
  [ "$(value pg_exporter_last_scrape_error)" = 0 ] || scrape_errors=$((scrape_errors + 1))
}
# value NAME [LABEL=VALUE ...]: the sample of the series NAME that has those
# labels, in the last scrape; nothing when there is none
value() {
  local name=$1 line l; shift
  while IFS= read -r line; do
    for l in "$@"; do [[ $line == *[{,]"${l%%=*}=\"${l#*=}\""[,}]* ]] || continue 2; done
    echo "${line##* }"
    return 0
  done < <(grep -E "^$name[{ ]" "$work/metrics")
}
series() { grep -cE "^$1[{ ]" "$work/metrics"; }
# num A OP B: a comparison of numbers; false when A is not a number (NaN, absent)
num() { [[ $1 =~ ^-?[0-9.]+(e[-+]?[0-9]+)?$ ]] && awk -v a="$1" -v b="$3" "BEGIN { exit !(a $2 b) }"; }
# scrape_until SECONDS COMMAND...: scrapes until COMMAND holds for the scrape
scrape_until() {
  local deadline=$((SECONDS + $1)); shift
  while :; do
    scrape && "$@" && return 0
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.25
  done
}
names() { grep -oE '^pg_causal[a-z_]*' "$work/metrics" | LC_ALL=C sort -u | tr '\n' ' '; }

up() { [ "$(value pg_up)" = 1 ]; }
scrape_until 15 up
ok $? "the exporter answers on 127.0.0.1:$exporter_port and reaches eu-west (pg_up 1)"
is "$(value pg_exporter_user_queries_load_error)" 0 "it loads the queries file"
is "$(value pg_exporter_last_scrape_error)" 0 "every query of the file runs as the exporter login (pg_exporter_last_scrape_error 0)"

metrics="pg_causal_clock_ahead_of_physical_seconds pg_causal_clock_max_clock_offset_seconds \
pg_causal_clock_max_remote_lead_seconds pg_causal_clock_offset_rejections pg_causal_link_apply_error_count \
pg_causal_link_last_msg_age_seconds pg_causal_link_latest_end_age_seconds pg_causal_link_sync_error_count \
pg_causal_link_worker_running pg_causal_peer_heard pg_causal_peer_heard_seconds_ago pg_causal_region_epoch \
pg_causal_region_fenced pg_causal_relay_failed_pulls pg_causal_relay_pages pg_causal_relay_pulls \
pg_causal_relay_rows pg_causal_relay_seconds pg_causal_self_fenced pg_causal_slot_active pg_causal_slot_lost \
pg_causal_slot_retained_wal_bytes pg_causal_slot_unconfirmed_wal_bytes pg_causal_stable_lag_seconds "
table_metrics="pg_causal_table_announced pg_causal_table_applied pg_causal_table_duplicates \
pg_causal_table_local_inserts pg_causal_table_offset_rejections pg_causal_table_orphans \
pg_causal_table_quarantined pg_causal_table_winners_replaced "
is "$(names)" "$metrics" "the pg_causal metrics, and no message table's: the exporter may not read chat.messages"
is "$(mesh_sql eu-west -At -c "SELECT applied FROM causal.stat_tables WHERE relid = 'chat.messages'::regclass")" 1 \
  "... while a superuser sees eu-west's counters of chat.messages"
is "$(grep -E '^pg_' "$work/metrics" | grep -vE '^(pg_causal_|pg_up |pg_exporter_)' | head -n 3)" "" \
  "none of the exporter's own PostgreSQL metrics (--disable-default-metrics ... --no-collector.bgwriter)"

# Links into eu-west, slots out of it.
server=127.0.0.1:$(instance_port "$eu_west")
is "$(grep -E '^pg_causal_' "$work/metrics" | grep -vc "[{,]server=\"$server\"[,}]")" 0 \
  "every pg_causal sample carries server=\"$server\""
is "$(series pg_causal_link_worker_running) $(series pg_causal_slot_active)" "2 2" "two links into eu-west, two slots out of it"
for from in us-east ap-south; do
  sub=causal_${from//-/_}_to_eu_west
  is "$(value pg_causal_link_worker_running subscription="$sub" from_region="$from" to_region=eu-west server="$server")" 1 \
    "link $from -> eu-west: subscription=$sub, from_region, to_region, server=$server; its apply worker runs"
  ok "$(num "$(value pg_causal_link_last_msg_age_seconds from_region="$from")" '<' 2; echo $?)" \
    "... it heard from $from less than 2 s ago ($(value pg_causal_link_last_msg_age_seconds from_region="$from") s)"
  is "$(value pg_causal_link_apply_error_count from_region="$from") $(value pg_causal_link_sync_error_count from_region="$from")" "0 0" \
    "... no apply or sync errors"
done
for to in us-east ap-south; do
  slot=causal_eu_west_to_${to//-/_}
  is "$(value pg_causal_slot_active slot_name="$slot" to_region="$to" wal_status=reserved) $(value pg_causal_slot_lost slot_name="$slot")" "1 0" \
    "slot $slot: to_region=$to, wal_status=reserved, active, not lost"
  ok "$(num "$(value pg_causal_slot_retained_wal_bytes slot_name="$slot")" '>=' 0; echo $?)" \
    "... retained_wal_bytes is a number ($(value pg_causal_slot_retained_wal_bytes slot_name="$slot"))"
done
for r in us-east ap-south; do
  ok "$(num "$(value pg_causal_peer_heard_seconds_ago region="$r")" '<' 2 && [ "$(value pg_causal_peer_heard region="$r")" = 1 ]; echo $?)" \
    "eu-west heard $r $(value pg_causal_peer_heard_seconds_ago region="$r") s ago"
done
is "$(for r in ap-south eu-west us-east; do printf '%s:%s:%s ' "$r" "$(value pg_causal_region_epoch region="$r")" "$(value pg_causal_region_fenced region="$r")"; done)" \
  "ap-south:0:0 eu-west:0:0 us-east:0:0 " "every region's epoch 0, none fenced"
is "$(value pg_causal_clock_offset_rejections region=eu-west node_id=2) $(value pg_causal_clock_max_clock_offset_seconds region=eu-west)" "0 0.5" \
  "the clock of eu-west (node 2): no offset rejections, max offset 0.5 s"
is "$(value pg_causal_self_fenced region=eu-west)" 0 "eu-west has not fenced itself"
ok "$(num "$(value pg_causal_stable_lag_seconds region=eu-west)" '<' 3; echo $?)" \
  "the stable cursor is $(value pg_causal_stable_lag_seconds region=eu-west) s behind"

# The exporter may read chat.messages: its counters appear.
mesh_sql eu-west -c "GRANT SELECT ON chat.messages TO exporter" -c "GRANT USAGE ON SCHEMA chat TO exporter" >/dev/null ||
  bail "could not grant SELECT to the exporter"
scrape || bail "no scrape"
held_metrics="pg_causal_held_held pg_causal_held_oldest_seconds"
is "$(names)" "$(echo $metrics $held_metrics $table_metrics | tr ' ' '\n' | LC_ALL=C sort | tr '\n' ' ')" \
  "with SELECT on chat.messages the exporter shows its counters and held messages too"
is "$(value pg_causal_held_held table=chat.messages) $(value pg_causal_held_oldest_seconds table=chat.messages)" "0 0" \
  "chat.messages: nothing held for a dependency"
is "$(value pg_causal_table_applied table=chat.messages) $(value pg_causal_table_quarantined table=chat.messages)" "1 0" \
  "chat.messages: 1 applied, none quarantined"
types=$(grep -oE '^# TYPE pg_causal[a-z_]* counter' "$work/metrics" | awk '{ print $3 }' | LC_ALL=C sort | tr '\n' ' ')
is "$types" "pg_causal_clock_offset_rejections pg_causal_link_apply_error_count pg_causal_link_sync_error_count \
pg_causal_relay_failed_pulls pg_causal_relay_pages pg_causal_relay_pulls pg_causal_relay_rows pg_causal_relay_seconds \
$table_metrics" \
  "the counters are typed counter"

# A quarantine: a CHECK only eu-west has refuses a row from ap-south.
mesh_sql eu-west -c "ALTER TABLE chat.messages ADD CONSTRAINT short_bodies CHECK (length(body) < 100)" >/dev/null ||
  bail "could not add the CHECK in eu-west"
mesh_sql ap-south -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (2, 'cy', repeat('long ', 30))" \
  -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (2, 'cy', 'after the long one')" >/dev/null ||
  bail "could not write in ap-south"
wait_until "$eu_west" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body = 'after the long one'" 20 ||
  bail "replication from ap-south stopped at the long row"
mesh_sql eu-west -c "ALTER TABLE chat.messages DROP CONSTRAINT short_bodies" >/dev/null
scrape || bail "no scrape"
is "$(value pg_causal_table_quarantined table=chat.messages)" 1 "a row eu-west's CHECK refuses: pg_causal_table_quarantined 1"

# An offset rejection: ap-south sends a row stamped 10 s ahead (written
# around its own trigger, as a bad clock would stamp it).
mesh_sql ap-south >/dev/null <<'SQL' || bail "could not write the row from the future in ap-south"
ALTER TABLE chat.messages DISABLE TRIGGER causal_message;
INSERT INTO chat.messages (conversation_id, sender, body, hlc, crdb_region, epoch)
VALUES (3, 'cy', 'from 10 s ahead', causal.hlc_from_parts(causal.hlc_physical_ms(causal.hlc_now()) + 10000, 0, 3), 'ap-south', 0);
ALTER TABLE chat.messages ENABLE ALWAYS TRIGGER causal_message;
SQL
wait_until "$eu_west" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body = 'from 10 s ahead'" 20 ||
  bail "the row from 10 s ahead did not reach eu-west"
scrape || bail "no scrape"
is "$(value pg_causal_clock_offset_rejections region=eu-west) $(value pg_causal_table_offset_rejections table=chat.messages)" "1 1" \
  "a row 10 s ahead: pg_causal_clock_offset_rejections 1, pg_causal_table_offset_rejections 1"
ok "$(num "$(value pg_causal_clock_max_remote_lead_seconds)" '>=' 9; echo $?)" \
  "... pg_causal_clock_max_remote_lead_seconds $(value pg_causal_clock_max_remote_lead_seconds)"

# A cut link: eu-west's subscription to us-east hears nothing more.
cut_link_silent() { num "$(value pg_causal_link_last_msg_age_seconds from_region=us-east)" '>=' 3; }
wan cut "$(wan_link us-east eu-west)" >/dev/null || bail "could not cut us-east -> eu-west"
cut_at=$(now)
scrape_until 8 cut_link_silent
ok $? "link us-east -> eu-west cut: its last message is $(value pg_causal_link_last_msg_age_seconds from_region=us-east) s old ($(since "$cut_at") s after the cut)"
ok "$(num "$(value pg_causal_link_last_msg_age_seconds from_region=ap-south)" '<' 2; echo $?)" \
  "... while ap-south -> eu-west's is $(value pg_causal_link_last_msg_age_seconds from_region=ap-south) s old"
# What us-east writes now reaches eu-west by pull, and the relay counts it.
relayed_before=$(value pg_causal_relay_rows)
mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (9, 'ana', 'by pull')" >/dev/null ||
  bail "could not write in us-east"
relayed() { num "$(value pg_causal_relay_rows)" '>' "${relayed_before:-0}" && num "$(value pg_causal_relay_pages)" '>' 0; }
wait_until "$(mesh_instance eu-west)" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body = 'by pull'" 15 ||
  bail "the message written in us-east during the cut did not reach eu-west"
scrape_until 15 relayed
ok $? "... a message us-east writes arrives by pull: pg_causal_relay_rows $relayed_before -> $(value pg_causal_relay_rows), pages $(value pg_causal_relay_pages), pulls $(value pg_causal_relay_pulls)"
# A reply held for its parent: with the relay off in eu-west, what us-east
# writes stays away from it, while ap-south's reply to it arrives.
set_relay() {
  mesh_sql eu-west -c "ALTER SYSTEM SET causal.relay_after = '$1'" -c "SELECT pg_reload_conf()" >/dev/null
}
set_relay 0 || bail "could not turn eu-west's relay off"
mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (11, 'ana', 'a parent')" >/dev/null ||
  bail "could not write the parent in us-east"
wait_until "$(mesh_instance ap-south)" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body = 'a parent'" 15 ||
  bail "the parent did not reach ap-south"
mesh_sql ap-south -c "INSERT INTO chat.messages (conversation_id, sender, body, deps)
                      SELECT 11, 'cy', 'a reply', ARRAY[hlc] FROM chat.messages WHERE body = 'a parent'" >/dev/null ||
  bail "could not reply in ap-south"
held() { [ "$(value pg_causal_held_held table=chat.messages)" = 1 ] && num "$(value pg_causal_held_oldest_seconds table=chat.messages)" '>' 0; }
scrape_until 15 held
ok $? "a reply in eu-west whose parent has not arrived: pg_causal_held_held 1, oldest written $(value pg_causal_held_oldest_seconds table=chat.messages) s ago"
set_relay 2s || bail "could not turn eu-west's relay on"
none_held() { [ "$(value pg_causal_held_held table=chat.messages)" = 0 ]; }
scrape_until 15 none_held
ok $? "... the relay brings the parent: pg_causal_held_held 0"

link_back() {
  [ "$(value pg_causal_link_worker_running from_region=us-east)" = 1 ] &&
    num "$(value pg_causal_link_last_msg_age_seconds from_region=us-east)" '<' 2
}
wan heal "$(wan_link us-east eu-west)" >/dev/null || bail "could not heal us-east -> eu-west"
healed_at=$(now)
scrape_until 20 link_back
ok $? "healed: the link's worker runs and its last message is $(value pg_causal_link_last_msg_age_seconds from_region=us-east) s old ($(since "$healed_at") s after the heal)"

# us-east killed.
instance_kill9 "$(mesh_instance us-east)"
killed_at=$(now)
us_east_silent() {
  num "$(value pg_causal_peer_heard_seconds_ago region=us-east)" '>=' 3 &&
    num "$(value pg_causal_stable_lag_seconds)" '>=' 3 &&
    [ "$(value pg_causal_slot_active to_region=us-east)" = 0 ] &&
    [ "$(value pg_causal_link_worker_running from_region=us-east)" = 0 ]
}
scrape_until 10 us_east_silent
ok $? "us-east killed: eu-west last heard it $(value pg_causal_peer_heard_seconds_ago region=us-east) s ago ($(since "$killed_at") s after the kill)"
ok "$(num "$(value pg_causal_peer_heard_seconds_ago region=ap-south)" '<' 2; echo $?)" \
  "... and ap-south $(value pg_causal_peer_heard_seconds_ago region=ap-south) s ago"
ok "$(num "$(value pg_causal_stable_lag_seconds)" '>=' 3; echo $?)" \
  "... the stable cursor stands still: $(value pg_causal_stable_lag_seconds) s behind"
is "$(value pg_causal_slot_active to_region=us-east) $(value pg_causal_slot_active to_region=ap-south)" "0 1" \
  "... us-east's slot is inactive, ap-south's active"
is "$(value pg_causal_link_worker_running from_region=us-east) $(value pg_causal_link_last_msg_age_seconds from_region=us-east)" "0 NaN" \
  "... the link from us-east has no apply worker, and its last-message age is NaN"
# its restart_lsn and confirmed_flush_lsn stay where they are now
retained_before=$(value pg_causal_slot_retained_wal_bytes to_region=us-east)
unconfirmed_before=$(value pg_causal_slot_unconfirmed_wal_bytes to_region=us-east)

# Failed over.
run out causalctl_mesh failover us-east --force
diag "causalctl failover us-east --force: exit $rc"
[ "$rc" = 0 ] || diag "$out"
fenced() { [ "$(value pg_causal_region_fenced region=us-east)" = 1 ]; }
scrape_until 10 fenced
ok $? "failed over: pg_causal_region_fenced{region=\"us-east\"} 1"
ok "$(num "$(value pg_causal_region_epoch region=us-east)" '>' 0; echo $?)" \
  "... its epoch grew to $(value pg_causal_region_epoch region=us-east)"
is "$(value pg_causal_region_fenced region=eu-west) $(value pg_causal_region_fenced region=ap-south)" "0 0" "... eu-west and ap-south are not fenced"
ok "$(num "$(value pg_causal_slot_retained_wal_bytes to_region=us-east)" '>' "$retained_before"; echo $?)" \
  "... us-east's slot holds more WAL than just after the kill ($retained_before -> $(value pg_causal_slot_retained_wal_bytes to_region=us-east) bytes)"
ok "$(num "$(value pg_causal_slot_unconfirmed_wal_bytes to_region=us-east)" '>' "$unconfirmed_before"; echo $?)" \
  "... and more WAL that us-east has not confirmed ($unconfirmed_before -> $(value pg_causal_slot_unconfirmed_wal_bytes to_region=us-east) bytes)"

is "$scrape_errors" 0 "no query failed in any of the $scrapes scrapes"
grep -q 'Error running query' "$work/exporter.log" && diag "$(grep 'Error running query' "$work/exporter.log" | head -n 5)"
stop_exporter
done_testing
