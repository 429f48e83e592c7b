#!/usr/bin/env bash
# Relay. Three regions in a full mesh through the WAN proxy. Each region
# publishes only what its own writes made, so in steady state every message
# reaches each peer once, from its writer. The link us-east -> eu-west
# (eu-west's subscription to us-east) is cut: eu-west, no longer hearing
# us-east, pulls us-east's messages from ap-south within 5 s of their
# writing (causal.relay_after, 2 s). After the heal eu-west's subscription
# replays what eu-west already has, and the apply path drops it. A partition
# between us-east and ap-south is bridged by eu-west, both ways. Then the
# link is cut again and us-east is killed right after its messages reached
# ap-south only: eu-west still gets them from ap-south, about a region that
# is gone.
source "$(dirname "$0")/../lib/cluster-test.sh"

N=6  # messages us-east writes during each cut
mesh_up relay 24700 5 us-east eu-west ap-south || bail "could not build the mesh"

eu_west=$(mesh_instance eu-west) us_east=$(mesh_instance us-east) ap_south=$(mesh_instance ap-south)
stat() {  # stat REGION COLUMN: a counter of chat.messages in causal.stat_tables
  mesh_sql "$1" -At -c "SELECT coalesce(sum($2), 0) FROM causal.stat_tables WHERE relid = 'chat.messages'::regclass"
}
count_in() {  # count_in REGION WHERE: chat.messages rows
  mesh_sql "$1" -At -c "SELECT count(*) FROM chat.messages WHERE $2"
}
write_us_east() {  # write_us_east PREFIX COUNT
  mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body)
                       SELECT 1, 'ana', '$1 ' || i FROM generate_series(1, $2) i" >/dev/null
}

# Steady state: a message reaches each peer once. eu-west counts what its
# apply path stored and what it dropped as already there.
mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (1, 'ana', 'before the cut')" >/dev/null ||
  bail "could not write in us-east"
for r in eu-west ap-south; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body = 'before the cut'" 20 ||
    bail "the first message did not reach $r"
done
applied0=$(stat eu-west applied) dropped0=$(stat eu-west duplicates)
write_us_east steady 20 || bail "could not write in us-east"
mesh_sql ap-south -c "INSERT INTO chat.messages (conversation_id, sender, body)
                      SELECT 1, 'cy', 'steady from ap-south ' || i FROM generate_series(1, 20) i" >/dev/null ||
  bail "could not write in ap-south"
for r in eu-west us-east ap-south; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" "SELECT count(*) = 40 FROM chat.messages WHERE body LIKE 'steady %'" 20 ||
    diag "the steady messages did not all reach $r"
done
# Proof that us-east and ap-south sent eu-west what they would: each writes
# once it holds all 40, and a stream keeps commit order, so a copy either
# would send on of the other's messages is at eu-west once its marker is.
for r in us-east ap-south; do
  mesh_sql "$r" -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (1, 'ana', 'steady marker $r')" \
    >/dev/null || bail "could not write in $r"
done
wait_until "$eu_west" "$MESH_DB" "SELECT count(*) = 2 FROM chat.messages WHERE body LIKE 'steady marker %'" 20
ok $? "the markers us-east and ap-south wrote after the 40 reached eu-west"
is "$(($(stat eu-west applied) - applied0 - 2)) $(($(stat eu-west duplicates) - dropped0))" "40 0" \
  "steady state: eu-west receives each of 40 messages of two writers once, and no copy of any"

# A deletion in eu-west of a message us-east wrote: eu-west wrote the
# tombstone (written_by), and publishes it.
deleted=$(mesh_sql eu-west -At -c "DELETE FROM chat.messages WHERE body = 'steady 1' RETURNING msg_id") ||
  bail "could not delete in eu-west"
for r in us-east ap-south; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" "SELECT deleted_at IS NOT NULL AND written_by = 'eu-west'
                                                  FROM chat.messages WHERE msg_id = '${deleted%%$'\n'*}'" 20 || break
done
ok $? "eu-west's tombstone of a message us-east wrote reaches us-east and ap-south"

wan cut "$(wan_link us-east eu-west)" >/dev/null || bail "could not cut us-east -> eu-west"
cut_state=$(wan status "$(wan_link us-east eu-west)")
ok "$([[ $cut_state == *state=cut* ]]; echo $?)" "the proxy reports the link us-east -> eu-west cut"

# The first messages after a cut wait longest: eu-west must first notice it
# no longer hears us-east.
written_at=$(now)
write_us_east "during the cut" "$N" || bail "could not write in us-east"
mesh_sql eu-west -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (1, 'bo', 'from eu-west during the cut')" >/dev/null ||
  bail "could not write in eu-west"
wait_until "$eu_west" "$MESH_DB" "SELECT count(*) = $N FROM chat.messages WHERE body LIKE 'during the cut %'" 5
ok $? "the $N messages us-east wrote reach eu-west with its direct link cut, within 5 s ($(since "$written_at") s)"
is "$(count_in eu-west "body LIKE 'during the cut %' AND crdb_region = 'us-east' AND written_by IS NULL")" "$N" \
  "eu-west holds them as us-east's messages (crdb_region us-east, which wrote them)"
dropped=$(wan status "$(wan_link us-east eu-west)" | sed -n 's/.* dropped=\([0-9]*\).*/\1/p')
ok "$([ "${dropped:-0}" -gt 0 ]; echo $?)" "the cut link dropped what us-east sent into it (${dropped:-?} bytes)"
wait_until "$us_east" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body = 'from eu-west during the cut'" 30
ok $? "a message eu-west wrote during the cut reaches us-east (that direction was not cut)"

# While the link stays cut, later messages keep coming by pull.
written_at=$(now)
write_us_east "later in the cut" "$N" || bail "could not write in us-east"
wait_until "$eu_west" "$MESH_DB" "SELECT count(*) = $N FROM chat.messages WHERE body LIKE 'later in the cut %'" 5
ok $? "messages written later in the cut reach eu-west within 5 s too ($(since "$written_at") s)"

# A history larger than the backlog: 20,000 messages ap-south wrote,
# everywhere before the backlog. A pull reads the backlog along the index of
# latest stamps (causal.stamp_index()), not the table: ap-south, the source,
# scans none of these rows for it. (Conversation 3.)
mesh_sql ap-south -c "INSERT INTO chat.messages (conversation_id, sender, body)
                      SELECT 3, 'cy', 'history ' || i FROM generate_series(1, 20000) i" >/dev/null ||
  bail "could not write the history in ap-south"
wait_until "$eu_west" "$MESH_DB" "SELECT count(*) = 20000 FROM chat.messages WHERE conversation_id = 3" 60 ||
  bail "the history did not reach eu-west"
seq_read() {  # rows ap-south's scans of chat.messages read, from its statistics
  mesh_sql ap-south -At -c "SELECT seq_tup_read FROM pg_stat_user_tables WHERE relid = 'chat.messages'::regclass"
}
scanned_before=$(seq_read)

# A backlog larger than a page of a pull (1,000 rows, relay.cpp): every page
# of it arrives, each read from the one snapshot of the pull.
# (Conversation 2: what follows counts conversation 1.)
mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body)
                     SELECT 2, 'ana', 'backlog in the cut ' || i FROM generate_series(1, 2500) i" >/dev/null ||
  bail "could not write a backlog in us-east"
newest=$(mesh_sql us-east -At -c "SELECT max(hlc) FROM chat.messages WHERE body LIKE 'backlog in the cut %'")
pages_before=$(mesh_sql eu-west -At -c "SELECT pages FROM causal.relay_stats()")
# The heartbeat a pull stores comes after its last page: once eu-west's
# stable point for us-east passes the backlog, all of it is there (a pull
# that stored the heartbeat after its first page would have it pass 1,000).
# (One statement, one snapshot: the heartbeat and the rows as they were.)
seen=""
for _ in $(seq 300); do
  seen=$(mesh_sql eu-west -At -F ' ' -c "SELECT h.stable >= '$newest',
                                                (SELECT count(*) FROM chat.messages WHERE body LIKE 'backlog in the cut %')
                                           FROM causal.heartbeats h WHERE h.region = 'us-east'")
  [[ $seen == t* ]] && break
  sleep 0.1
done
is "$seen" "t 2500" \
   "a backlog of 2,500 messages reaches eu-west by pull, all of it there once its stable point for us-east passes it"
ok "$([ "$(mesh_sql eu-west -At -c "SELECT pages FROM causal.relay_stats()")" -ge $((pages_before + 3)) ]; echo $?)" \
   "... fetched in pages of 1,000 (causal.relay_stats().pages $pages_before -> $(mesh_sql eu-west -At -c "SELECT pages FROM causal.relay_stats()"))"
sleep 1  # a pull's session on ap-south reports its statistics as it ends
scanned=$(( $(seq_read) - scanned_before ))
ok "$([ "$scanned" -lt 20000 ]; echo $?)" \
   "... read on ap-south along its index, not by scans of its 22,500-row table ($scanned rows scanned)"
# A pull killed in the middle goes on where the last committed one ended.
# 40,000 messages cross in pulls of 20 pages (relay::kPagesPerPull), each
# committed in eu-west with where it stopped (causal.relay_progress); the
# relay is killed once one has; the next worker resumes, and the heartbeat
# comes only with the last page. (Conversation 4.)
big=40000
mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body)
                     SELECT 4, 'ana', 'big backlog ' || i FROM generate_series(1, $big) i" >/dev/null ||
  bail "could not write the big backlog in us-east"
newest=$(mesh_sql us-east -At -c "SELECT max(hlc) FROM chat.messages WHERE conversation_id = 4")
scanned_before=$(seq_read)
progress=""
for _ in $(seq 600); do
  progress=$(mesh_sql eu-west -At -F ' ' -c "SELECT p.source, p.after_stamp IS NOT NULL,
                                                    (SELECT count(*) FROM chat.messages WHERE conversation_id = 4),
                                                    (SELECT h.stable < '$newest' FROM causal.heartbeats h WHERE h.region = 'us-east')
                                               FROM causal.relay_progress p WHERE p.peer = 'us-east'")
  [ -n "$progress" ] && break
  sleep 0.05
done
rows_at_kill=$(mesh_sql eu-west -At -c "SELECT rows FROM causal.relay_stats()")
killed=$(mesh_sql eu-west -At -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'pg_causal relay'")
read -r p_source p_key p_held p_below <<<"$progress"
ok "$([ "$p_source" = ap-south ] && [ "$p_key" = t ] && [ "${p_held:-0}" -ge 20000 ] && [ "${p_held:-0}" -lt $big ] && [ "$p_below" = t ]; echo $?)" \
   "a pull of $big messages commits as it goes: eu-west held ${p_held:-?} with its stable point still below them, and where the pull stopped (${progress:-no progress})"
wait_until "$eu_west" "$MESH_DB" "SELECT count(*) = $big FROM chat.messages WHERE conversation_id = 4" 120
ok $? "the relay killed ($killed worker), the next one brings the rest"
wait_until "$eu_west" "$MESH_DB" "SELECT h.stable >= '$newest' FROM causal.heartbeats h WHERE h.region = 'us-east'" 30
ok $? "... and then the heartbeat: eu-west's stable point for us-east passes the backlog"
resumed=$(( $(mesh_sql eu-west -At -c "SELECT rows FROM causal.relay_stats()") - rows_at_kill ))
ok "$([ "$resumed" -lt $big ]; echo $?)" "... reading $resumed rows after the kill, not the $big again: it went on from where it stopped"
is "$(mesh_sql eu-west -At -c "SELECT count(*) FROM causal.relay_progress")" 0 "... and forgot where it had stopped"
sleep 1
scanned=$(( $(seq_read) - scanned_before ))
ok "$([ "$scanned" -lt 20000 ]; echo $?)" "... along the index in every pull, resumed ones too ($scanned rows scanned on ap-south)"

liveness=$(mesh_sql eu-west -At -c "SELECT heard_ms_ago < 5000 FROM causal.liveness() WHERE region = 'us-east'")
is "$liveness" t "eu-west still hears us-east's heartbeat, through ap-south"

# causal.relay_after = 0 turns relay off: with the link still cut, what
# us-east writes then waits for the heal, or for relay to come back.
mesh_sql eu-west -c "ALTER SYSTEM SET causal.relay_after = 0" -c "SELECT pg_reload_conf()" >/dev/null ||
  bail "could not turn relay off in eu-west"
# Proof that relay is off, not slow: with it on, eu-west hears us-east
# through ap-south within 5 s (above). Unheard for 6 s: relay is off in its
# worker; unheard 3 s more after the write, the write stays at us-east.
unheard() { echo "SELECT heard_ms_ago > $1 FROM causal.liveness() WHERE region = 'us-east'"; }
wait_until "$eu_west" "$MESH_DB" "$(unheard 6000)" 30
ok $? "with causal.relay_after = 0, eu-west stops hearing us-east through ap-south (6 s)"
write_us_east "with relay off" 1 || bail "could not write in us-east"
wait_until "$eu_west" "$MESH_DB" "$(unheard 9000)" 30
is "$(count_in eu-west "body LIKE 'with relay off %'")" 0 \
   "... and pulls nothing while its link from us-east is cut"
mesh_sql eu-west -c "ALTER SYSTEM RESET causal.relay_after" -c "SELECT pg_reload_conf()" >/dev/null ||
  bail "could not turn relay on again in eu-west"
wait_until "$eu_west" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body LIKE 'with relay off %'" 5
ok $? "relay on again, the message arrives by pull"

# The heal: eu-west's subscription to us-east replays from its slot, which
# the cut kept behind; the apply path drops every copy.
before=$(stat eu-west duplicates)
wan heal "$(wan_link us-east eu-west)" >/dev/null || bail "could not heal us-east -> eu-west"
wait_until "$eu_west" "$MESH_DB" "SELECT coalesce(sum(duplicates), 0) >= $before + 2 * $N FROM causal.stat_tables
                                   WHERE relid = 'chat.messages'::regclass" 40
ok $? "after the heal eu-west's apply path drops the replayed copies (duplicates $before -> $(stat eu-west duplicates), want >= $((before + 2 * N)))"

# A partition between us-east and ap-south, both directions: eu-west, which
# hears both, bridges them, each way.
wan cut "$(wan_link us-east ap-south)" >/dev/null && wan cut "$(wan_link ap-south us-east)" >/dev/null ||
  bail "could not partition us-east from ap-south"
written_at=$(now)
write_us_east "across the partition" "$N" || bail "could not write in us-east"
mesh_sql ap-south -c "INSERT INTO chat.messages (conversation_id, sender, body)
                      SELECT 1, 'cy', 'back across the partition ' || i FROM generate_series(1, $N) i" >/dev/null ||
  bail "could not write in ap-south"
wait_until "$ap_south" "$MESH_DB" "SELECT count(*) = $N FROM chat.messages WHERE body LIKE 'across the partition %'" 5
ok $? "partitioned from us-east, ap-south gets its messages through eu-west within 5 s ($(since "$written_at") s)"
wait_until "$us_east" "$MESH_DB" "SELECT count(*) = $N FROM chat.messages WHERE body LIKE 'back across the partition %'" 5
ok $? "and us-east gets ap-south's the same way ($(since "$written_at") s)"
wan heal "$(wan_link us-east ap-south)" >/dev/null && wan heal "$(wan_link ap-south us-east)" >/dev/null ||
  bail "could not heal the partition"

# A killed writer: its messages reached ap-south only, and us-east is gone.
# eu-west hears us-east directly again, so it pulls nothing until us-east
# has been silent for causal.relay_after: by then us-east is dead.
wait_until "$eu_west" "$MESH_DB" "SELECT heard_ms_ago < 500 FROM causal.liveness() WHERE region = 'us-east'" 10 ||
  diag "eu-west does not hear us-east"
wan cut "$(wan_link us-east eu-west)" >/dev/null || bail "could not cut us-east -> eu-west again"
write_us_east "just before the kill" "$N" || bail "could not write in us-east"
wait_until "$ap_south" "$MESH_DB" "SELECT count(*) = $N FROM chat.messages WHERE body LIKE 'just before the kill %'" 10 ||
  bail "the last messages did not reach ap-south"
instance_kill9 "$us_east"
killed_at=$(now)
diag "at the kill eu-west held $(count_in eu-west "body LIKE 'just before the kill %'") of them"
wait_until "$eu_west" "$MESH_DB" "SELECT count(*) = $N FROM chat.messages WHERE body LIKE 'just before the kill %'" 10
ok $? "what us-east wrote just before it was killed reaches eu-west from ap-south ($(since "$killed_at") s after the kill)"

total=$((1 + 40 + 2 + 5 * N + 1 + 1 + 20000 + 2500 + big))  # ... 40 steady, their 2 markers, ..., the history, the backlogs
for r in eu-west ap-south; do
  is "$(mesh_sql "$r" -At -c "SELECT count(*) || ' ' || count(DISTINCT msg_id) FROM chat.messages")" "$total $total" \
    "$r holds each of the $total messages exactly once"
done

instance_start "$us_east" || bail "us-east did not restart"
wan heal "$(wan_link us-east eu-west)" >/dev/null || bail "could not heal us-east -> eu-west"
out=$(causalctl_mesh verify --wait 30 2>&1)
ok $? "causalctl verify --wait 30: the three regions converge once us-east is back"
[ -n "$out" ] && diag "$out"
is "$(mesh_sql us-east -At -c "SELECT count(*) || ' ' || count(DISTINCT msg_id) FROM chat.messages")" "$total $total" \
  "us-east holds each of the $total messages exactly once"

# A column one region's table has and another's lacks is no silent drop.
# ap-south's table gains a column eu-west's lacks; with the link us-east ->
# eu-west cut, what us-east writes cannot come through ap-south: the pull
# stops on the column as the apply worker would, as an error of the link
# us-east -> eu-west (causal.link_errors(), causalctl status), and eu-west
# does not store the heartbeat it pulled, so its stable point for us-east
# stays below the message it does not have.
wan cut "$(wan_link us-east eu-west)" >/dev/null || bail "could not cut us-east -> eu-west"
mesh_sql ap-south -c "ALTER TABLE chat.messages ADD COLUMN mood text" >/dev/null || bail "could not add a column in ap-south"
mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (1, 'ana', 'past the column')" \
  >/dev/null || bail "could not write in us-east"
past=$(mesh_sql us-east -At -c "SELECT hlc FROM chat.messages WHERE body = 'past the column'")
wait_until "$ap_south" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body = 'past the column'" 20 ||
  bail "the message did not reach ap-south"
wait_until "$eu_west" "$MESH_DB" \
  "SELECT count(*) > 0 FROM causal.link_errors() e JOIN pg_subscription s ON s.oid = e.subscription
    WHERE e.by_relay AND s.subname = causal.link_name('us-east', 'eu-west') AND e.message LIKE '%\"mood\"%'" 20
ok $? "eu-west's relay reports the column ap-south has and eu-west lacks as an error of the link us-east -> eu-west"
sleep 2  # more pulls, each stopped on the column
is "$(mesh_sql eu-west -At -F ' ' -c "SELECT (SELECT count(*) FROM chat.messages WHERE body = 'past the column'),
                                             h.stable < '$past' FROM causal.heartbeats h WHERE h.region = 'us-east'")" \
   "0 t" "... pulls nothing from ap-south, and eu-west's stable point for us-east stays below the message it lacks"
status=$(causalctl_mesh status 2>&1)
ok "$(contains "$status" "us-east -> eu-west: the relay could not pull us-east's messages")" \
   "causalctl status names the relay's error on the link, with what to do"
[[ $status == *"the relay could not pull"* ]] || diag "$status"

done_testing
