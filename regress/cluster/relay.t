#!/usr/bin/env bash
# A cut direct link. Three regions in a full mesh through the WAN proxy; the
# link us-east -> eu-west (eu-west's subscription to us-east) is cut, and
# what us-east writes still reaches eu-west, relayed by ap-south. After the
# heal eu-west's subscription to us-east replays what eu-west already has,
# and the apply path drops it: counted as duplicates, stored once. The other
# direction, eu-west -> us-east, was never cut.
source "$(dirname "$0")/../lib/cluster-test.sh"

N=6  # messages us-east writes during the cut
mesh_up relay 24700 5 us-east eu-west ap-south || bail "could not build the mesh"

eu_west=$(mesh_instance eu-west) us_east=$(mesh_instance us-east)
duplicates() {  # duplicates REGION: what its apply path dropped in chat.messages
  mesh_sql "$1" -At -c "SELECT coalesce(sum(duplicates), 0) FROM causal.stat_tables
                         WHERE relid = 'chat.messages'::regclass"
}
count_in() {  # count_in REGION WHERE: chat.messages rows
  mesh_sql "$1" -At -c "SELECT count(*) FROM chat.messages WHERE $2"
}

# Before the cut the direct link carries a message: the link is healthy.
mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (1, 'ana', 'before the cut')" >/dev/null ||
  bail "could not write in us-east"
for r in eu-west ap-south; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body = 'before the cut'" 20 ||
    bail "the first message did not reach $r"
done

wan cut "$(wan_link us-east eu-west)" >/dev/null || bail "could not cut us-east -> eu-west"
cut_state=$(wan status "$(wan_link us-east eu-west)")
ok "$([[ $cut_state == *state=cut* ]]; echo $?)" "the proxy reports the link us-east -> eu-west cut"

mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body)
                     SELECT 1, 'ana', 'during the cut ' || i FROM generate_series(1, $N) i" >/dev/null ||
  bail "could not write in us-east"
mesh_sql eu-west -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (1, 'bo', 'from eu-west during the cut')" >/dev/null ||
  bail "could not write in eu-west"

wait_until "$eu_west" "$MESH_DB" "SELECT count(*) = $N FROM chat.messages WHERE body LIKE 'during the cut %'" 30
ok $? "the $N messages us-east wrote reach eu-west with its direct link cut"
# The relay went through ap-south: eu-west holds them with us-east's stamps.
is "$(count_in eu-west "body LIKE 'during the cut %' AND crdb_region = 'us-east'")" "$N" \
  "eu-west holds them as us-east's messages (crdb_region us-east)"
dropped=$(wan status "$(wan_link us-east eu-west)" | sed -n 's/.* dropped=\([0-9]*\).*/\1/p')
ok "$([ "${dropped:-0}" -gt 0 ]; echo $?)" "the cut link dropped what us-east sent into it (${dropped:-?} bytes)"

wait_until "$us_east" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body = 'from eu-west during the cut'" 30
ok $? "a message eu-west wrote during the cut reaches us-east (that direction was not cut)"

# Everything is in eu-west now; the heal makes its subscription to us-east
# reconnect and replay from its slot, which the cut kept behind.
before=$(duplicates eu-west)
ok "$([ "$before" -lt "$N" ]; echo $?)" "before the heal no copy came over the cut link (eu-west dropped $before copies)"
wan heal "$(wan_link us-east eu-west)" >/dev/null || bail "could not heal us-east -> eu-west"
wait_until "$eu_west" "$MESH_DB" "SELECT coalesce(sum(duplicates), 0) >= $before + $N FROM causal.stat_tables
                                   WHERE relid = 'chat.messages'::regclass" 40
ok $? "after the heal eu-west's apply path drops the replayed copies (duplicates $before -> $(duplicates eu-west), want >= $((before + N)))"

# A message written after the heal reaches every region too.
mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (1, 'ana', 'after the heal')" >/dev/null ||
  bail "could not write in us-east"
total=$((1 + N + 1 + 1))
for r in us-east eu-west ap-south; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" "SELECT count(*) >= $total FROM chat.messages" 30 ||
    diag "$r did not receive every message"
done
# Every copy eu-west received is accounted for: each foreign message came
# twice (from its writer and relayed by the third region), applied once and
# dropped once; its own message came back twice, echoed by both peers.
foreign=$((total - 1))
wait_until "$eu_west" "$MESH_DB" "SELECT applied = $foreign AND duplicates = $foreign + 2 FROM causal.stat_tables
                                   WHERE relid = 'chat.messages'::regclass" 20
ok $? "eu-west applied each of the $foreign foreign messages once and dropped every other copy ($(mesh_sql eu-west -At -c "SELECT 'applied ' || applied || ', duplicates ' || duplicates FROM causal.stat_tables WHERE relid = 'chat.messages'::regclass"))"

for r in us-east eu-west ap-south; do
  is "$(mesh_sql "$r" -At -c "SELECT count(*) || ' ' || count(DISTINCT msg_id) FROM chat.messages")" "$total $total" \
    "$r holds each of the $total messages exactly once"
done

out=$(causalctl_mesh verify --wait 20 2>&1)
ok $? "causalctl verify --wait 20: the regions converge"
[ -n "$out" ] && diag "$out"

done_testing
