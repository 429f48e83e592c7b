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
both=$(mesh_sql us-east -At -c "SELECT count(*) FROM chat.messages WHERE cardinality(copies) = 1")
ok "$([ "$both" -gt 0 ]; echo $?)" "the regions raced: $both messages were written in both, and hold both copies"
is "$(mesh_sql us-east -At -c "SELECT md5(string_agg(msg_id || hlc::text || copies::text, ',' ORDER BY msg_id)) FROM chat.messages")" \
   "$(mesh_sql eu-west -At -c "SELECT md5(string_agg(msg_id || hlc::text || copies::text, ',' ORDER BY msg_id)) FROM chat.messages")" \
   "the same rows in both, stamp by stamp"
done_testing
