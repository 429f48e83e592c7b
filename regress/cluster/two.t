#!/usr/bin/env bash
# Two regions, where no third one relays a repair: one msg_id written in both
# at once, many times over, while each applies the other's copy. Every
# writer meets the copy rule (a local insert racing an apply, an apply past
# its msg_id locks): both regions end with every message once, holding the
# same copies (both, where both regions took the write before the other's
# copy arrived), stamp by stamp.
source "$(dirname "$0")/../lib/cluster-test.sh"
regions=(us-east eu-west)
mesh_up two 26900 2 "${regions[@]}" || bail "could not build the mesh"

N=200
writer() {  # writer REGION: N messages, msg_ids 1..N, as fast as it goes
  local sql=""
  for i in $(seq 1 "$N"); do
    sql+="INSERT INTO chat.messages (msg_id, conversation_id, sender, body)
          VALUES ('00000000-0000-7000-8000-$(printf '%012d' "$i")', 21, '$1', 'twice')
          ON CONFLICT (msg_id) DO NOTHING;"
  done
  mesh_sql "$1" -c "$sql" >/dev/null
}
# A bulk transaction too, past the 64 msg_id locks of an apply.
bulk() {
  mesh_sql "$1" -c "INSERT INTO chat.messages (msg_id, conversation_id, sender, body)
                    SELECT ('00000000-0000-7000-9000-' || lpad(g::text, 12, '0'))::uuid, 22, '$1', 'bulk'
                      FROM generate_series(1, 300) g ON CONFLICT (msg_id) DO NOTHING" >/dev/null
}
writer us-east & a=$!
writer eu-west & b=$!
bulk us-east & c=$!
bulk eu-west & d=$!
wait $a $b $c $d
for r in "${regions[@]}"; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" "SELECT count(*) = $N + 300 FROM chat.messages" 60 ||
    bail "$r did not get every message"
done
run verdict causalctl_mesh verify --wait 30
is "$rc" 0 "causalctl verify: the two regions converge ($verdict)"
for r in "${regions[@]}"; do
  is "$(mesh_sql "$r" -At -c "SELECT count(*), count(DISTINCT msg_id) FROM chat.messages")" \
     "$((N + 300))|$((N + 300))" "$r: every message once"
done
# How many msg_ids both regions took before the other's copy arrived
# depends on timing (copies.t makes that case certain).
diag "$(mesh_sql us-east -At -c "SELECT count(*) FROM chat.messages WHERE cardinality(copies) = 1") messages were written in both, and hold both copies"
stamps() { mesh_sql "$1" -At -c "SELECT count(*) || ' ' || md5(string_agg(msg_id || hlc::text || copies::text, ',' ORDER BY msg_id)) FROM chat.messages"; }
east=$(stamps us-east)
is "$(stamps eu-west)" "${east:-us-east gave no answer}" "the same rows in both, stamp by stamp"

# ===== a client's cursor, taken in one region, used in the other =============
# A young mesh has no cursor until every region has sent a stable point.
wait_until "$(mesh_instance us-east)" "$MESH_DB" "SELECT causal.stable_hlc()::text <> '0.00000@0'" 20
cursor=$(mesh_sql us-east -At -c "SELECT causal.stable_hlc()")
seen=$(mesh_sql us-east -At -c "SELECT string_agg(hlc::text, ',') FROM causal.catch_up('chat.messages', '21', NULL)")
ok "$([[ "$cursor" =~ ^[0-9]+\.[0-9]{5}@[0-9]+$ && "$cursor" != "0.00000@0" ]]; echo $?)" "us-east's cursor: ${cursor:-none}"
for r in "${regions[@]}"; do
  mesh_sql "$r" -c "INSERT INTO chat.messages (conversation_id, sender, body) SELECT 21, '$r', 'after the cursor ' || g FROM generate_series(1, 5) g" >/dev/null
done
wait_until "$(mesh_instance eu-west)" "$MESH_DB" "SELECT count(*) = 10 FROM chat.messages WHERE body LIKE 'after the cursor %'" 20 ||
  bail "the new messages did not reach eu-west"
got=$(mesh_sql eu-west -At -c "SELECT count(*) || ' ' || bool_and(m.body LIKE 'after the cursor %')
                               FROM causal.catch_up('chat.messages', '21', '{$seen}', since => '$cursor') c
                               JOIN chat.messages m USING (msg_id)")
is "$got" "10 true" "catch_up in eu-west from us-east's cursor: exactly the 10 new messages"
# With nobody writing, the cursor still keeps up with time: it passes an
# instant taken after the last write, in every region, within heartbeats.
after=$(mesh_sql us-east -At -c "SELECT clock_timestamp() + interval '200 ms'")
for r in "${regions[@]}"; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" "SELECT causal.hlc_to_timestamptz(causal.stable_hlc()) > '$after'" 20
  is "$?" 0 "$r: an idle mesh's cursor moves on with time"
done

# ===== a populated table, enabled in a running mesh ===========================
for r in "${regions[@]}"; do
  mesh_sql "$r" >/dev/null <<'SQL'
CREATE TABLE chat.archive (id bigint, conversation_id bigint, body text, sent timestamptz);
INSERT INTO chat.archive SELECT g, g % 4, 'archived ' || g, '2026-06-01 12:00:00+00'::timestamptz + g * interval '3 ms'
  FROM generate_series(1, 100) g;
SQL
done
run out mesh_sql us-east -v VERBOSITY=verbose -c "SELECT causal.enable('chat.archive', 'conversation_id')"
ok "$(contains "$out" 55000)" "enabling it without key and sent_at is refused in a mesh (55000)"
for r in "${regions[@]}"; do
  mesh_sql "$r" -c "SELECT causal.enable('chat.archive', 'conversation_id', key => 'id', sent_at => 'sent')" >/dev/null ||
    bail "could not enable chat.archive in $r"
done
causalctl_mesh init >/dev/null 2>&1
mesh_wait_streaming || bail "the mesh did not carry chat.archive"
run verdict causalctl_mesh verify --wait 20
is "$rc" 0 "with key and sent_at, both regions stamp the archive alike: verify converges"
is "$(mesh_sql us-east -At -c "SELECT count(*) FROM chat.archive") $(mesh_sql eu-west -At -c "SELECT count(*) FROM chat.archive")" \
   "100 100" "each archived message once, not once per region"

# ===== look-alike messages, and one message under two msg_ids ==================
# A user says the same thing in each region: two messages, not one.
for r in "${regions[@]}"; do
  mesh_sql "$r" -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (23, 'import', 'the same old line')" >/dev/null
done
run verdict causalctl_mesh verify --wait 20
is "$rc" 0 "two messages alike in every column, one written in each region: verify converges (no false twin)"
[ "$rc" = 0 ] || diag "$verdict"
is "$(mesh_sql us-east -At -c "SELECT count(*) FROM chat.messages WHERE body = 'the same old line'")" 2 "... and both are kept"
# Had both regions enabled the table populated without key and sent_at,
# each would have stamped those rows in place and recorded it: then they
# are one message under two msg_ids.
for r in "${regions[@]}"; do
  mesh_sql "$r" -c "INSERT INTO causal.stamped_in_place VALUES ('chat.messages', '$r', causal.hlc_now())" >/dev/null ||
    bail "could not record a stamp in place in $r"
done
run verdict causalctl_mesh verify --wait 3
is "$rc" 1 "rows stamped in place by two regions, alike: verify fails"
ok "$(contains "$verdict" "one message under 2 msg_ids")" "and says one message is under 2 msg_ids"
for r in "${regions[@]}"; do mesh_sql "$r" -c "DELETE FROM causal.stamped_in_place" >/dev/null; done
done_testing
