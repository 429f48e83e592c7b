#!/usr/bin/env bash
# One message, however many copies, on three regions behind the WAN proxy.
#
# A client told 5C004 by a region cut off sends its message again, with the
# same msg_id, in another region, where users reply to the retry's hlc.
# After the heal every region keeps both copies: the replies stay
# delivered, catch_up from the retry's hlc answers, and verify converges.
# When the cut-off region was failed over in the meantime, the copy it wrote
# after its fence never beats the acknowledged retry: the message is shown
# where the retry put it, not as an orphan, and the reply after it.
# A replicated deletion that a region's own CHECK refuses is quarantined
# there while replication goes on. verify fails on a message that can
# never be delivered, and on one message under several msg_ids.
source "$(dirname "$0")/../lib/cluster-test.sh"
regions=(us-east eu-west ap-south)
mesh_up copies 26700 10 "${regions[@]}" || bail "could not build the mesh"

east_links=("$(wan_link us-east eu-west)" "$(wan_link us-east ap-south)" "$(wan_link eu-west us-east)" "$(wan_link ap-south us-east)")
cut_us_east() { local l; for l in "${east_links[@]}"; do wan cut "$l" >/dev/null || return 1; done; }
heal_us_east() { local l; for l in "${east_links[@]}"; do wan heal "$l" >/dev/null || return 1; done; }
everywhere() {  # everywhere SQL [SECONDS]
  local r
  for r in "${regions[@]}"; do wait_until "$(mesh_instance "$r")" "$MESH_DB" "$1" "${2:-30}" || return 1; done
}
in_each() {  # in_each SQL: the answers of every region, joined by spaces
  local r out=()
  for r in "${regions[@]}"; do out+=("$(mesh_sql "$r" -At -c "$1" 2>&1)"); done
  echo "${out[*]}"
}
# send REGION MSG_ID BODY [DEPS]: a message of conversation 11 and, as a
# client that needs RPO zero, await_replicated (1 s): prints the stored hlc,
# and fails with 5C004 when no other region has it in time
send() {
  mesh_sql "$1" -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose \
    -c "INSERT INTO chat.messages (msg_id, conversation_id, sender, body, deps)
        VALUES ('$2', 11, '$1', '$3', '${4:-{\}}')
        ON CONFLICT (msg_id) DO UPDATE SET msg_id = EXCLUDED.msg_id RETURNING hlc" \
    -c "SELECT FROM causal.await_replicated(timeout => '1 s')" 2>&1
}
history_of() {  # REGION: conversation 11 as merged there: body:delivered:orphan, in order
  mesh_sql "$1" -At -c "SELECT string_agg(m.body || ':' || h.delivered || ':' || h.orphan, ' ' ORDER BY h.position)
                          FROM (SELECT causal.merge(msg_id, hlc, deps, crdb_region, epoch, copies) AS g
                                  FROM chat.messages WHERE conversation_id = 11) c, causal.unnest(c.g) h
                          JOIN chat.messages m USING (msg_id)"
}

# ===== a retried message and the replies to its retry ========================
X=00000000-0000-7000-8000-00000000aaa1
cut_us_east || bail "could not cut us-east"
out=$(send us-east $X "X")
ok "$(contains "$out" 5C004)" "cut off, us-east cannot acknowledge X: 5C004 ($(tail -n 1 <<<"$out"))"
x_east=$(head -n 1 <<<"$out")
out=$(send eu-west $X "X")
ok "$([[ $out =~ ^[0-9]+\.[0-9]{5}@[0-9]+$ ]]; echo $?)" "the client sends X again in eu-west: acknowledged ($out)"
x_west=$out
ok "$([ "$x_west" != "$x_east" ]; echo $?)" "the retry has an hlc of its own ($x_east, then $x_west)"
r1=$(send eu-west 00000000-0000-7000-8000-00000000aaa2 "reply to the retry" "{$x_west}")
wait_until "$(mesh_instance ap-south)" "$MESH_DB" "SELECT count(*) = 2 FROM chat.messages WHERE conversation_id = 11" 20 ||
  bail "X and the reply did not reach ap-south"
r2=$(send ap-south 00000000-0000-7000-8000-00000000aaa3 "reply to the reply" "{$r1}")
heal_us_east || bail "could not heal us-east"
everywhere "SELECT count(*) = 3 FROM chat.messages WHERE conversation_id = 11
            AND EXISTS (SELECT FROM chat.messages WHERE msg_id = '$X' AND cardinality(copies) = 1)" 40
ok $? "after the heal every region holds X once, with both copies"
is "$(in_each "SELECT least(hlc::text, (copies[1]).hlc::text) || ' ' || greatest(hlc::text, (copies[1]).hlc::text)
                 FROM chat.messages WHERE msg_id = '$X'" | tr ' ' '\n' | sort -u | paste -sd' ')" \
   "$(printf '%s\n%s\n' "$x_east" "$x_west" | sort -u | paste -sd' ')" "every region keeps both of X's hlcs"
is "$(in_each "SELECT bool_and(h.delivered) FROM (SELECT causal.merge(msg_id, hlc, deps, crdb_region, epoch, copies) AS g
                 FROM chat.messages WHERE conversation_id = 11) c, causal.unnest(c.g) h")" "t t t" \
   "the replies to the retry, and the replies to them, are delivered in every region"
for r in "${regions[@]}"; do
  out=$(mesh_sql "$r" -At -c "SELECT count(*) FROM causal.catch_up('chat.messages', '11', '{$x_west}')" 2>&1)
  is "$out" 2 "catch_up from the retry's hlc in $r: the two replies, no 5C003"
done
run verdict causalctl_mesh verify --wait 20
is "$rc" 0 "causalctl verify: converged ($verdict)"

# ===== a fenced region's copy against the acknowledged retry =================
Y=00000000-0000-7000-8000-00000000bbb1
cut_us_east || bail "could not cut us-east"
sleep 2
rc=1 deadline=$((SECONDS + 15))
while [ $SECONDS -lt $deadline ]; do
  run out causalctl_cut_off us-east failover us-east --dead-after 1
  [ "$rc" = 0 ] && break
  sleep 0.5
done
is "$rc" 0 "us-east, cut off, is failed over"
out=$(send us-east $Y "Y")
ok "$(contains "$out" 5C004)" "us-east, not knowing, takes Y but cannot acknowledge it: 5C004"
y_east=$(head -n 1 <<<"$out")
y_west=$(send eu-west $Y "Y")
ok "$([[ $y_west =~ @ ]]; echo $?)" "the retry of Y in eu-west is acknowledged ($y_west, after us-east's $y_east)"
send eu-west 00000000-0000-7000-8000-00000000bbb2 "reply to Y" "{$y_west}" >/dev/null
heal_us_east || bail "could not heal us-east"
everywhere "SELECT count(*) = 1 FROM chat.messages WHERE msg_id = '$Y' AND cardinality(copies) = 1" 40 ||
  bail "Y's copies did not meet"
run out causalctl_mesh rejoin us-east --wait 60
is "$rc" 0 "us-east rejoins"
everywhere "SELECT NOT EXISTS (SELECT FROM causal.regions WHERE state = 'fenced')" 30 || bail "the rejoin did not land"
is "$(in_each "SELECT h.hlc::text || ':' || h.orphan FROM (SELECT causal.merge(msg_id, hlc, deps, crdb_region, epoch, copies) AS g
                 FROM chat.messages WHERE conversation_id = 11) c, causal.unnest(c.g) h WHERE h.msg_id = '$Y'")" \
   "$y_west:false $y_west:false $y_west:false" \
   "every region shows Y as the acknowledged retry, not as the fenced region's orphan"
is "$(in_each "SELECT string_agg(m.body, ',' ORDER BY h.position) FROM (SELECT causal.merge(msg_id, hlc, deps, crdb_region, epoch, copies) AS g
                 FROM chat.messages WHERE conversation_id = 11) c, causal.unnest(c.g) h JOIN chat.messages m USING (msg_id)
                WHERE m.body IN ('Y', 'reply to Y') AND h.delivered")" "Y,reply to Y Y,reply to Y Y,reply to Y" \
   "and its reply after it, delivered"
run verdict causalctl_mesh verify --wait 20
is "$rc" 0 "causalctl verify: converged ($verdict)"

# ===== a replicated deletion that a region's own constraint refuses ==========
mesh_sql ap-south -c "ALTER TABLE chat.messages ADD CONSTRAINT keeps_bodies CHECK (body <> '')" >/dev/null
mesh_sql us-east -c "DELETE FROM chat.messages WHERE msg_id = '00000000-0000-7000-8000-00000000aaa3'" >/dev/null
everywhere "SELECT true FROM chat.messages WHERE msg_id = '00000000-0000-7000-8000-00000000aaa3'
            AND (deleted_at IS NOT NULL OR current_setting('causal.region') = 'ap-south')" 20
wait_until "$(mesh_instance ap-south)" "$MESH_DB" "SELECT count(*) > 0 FROM causal.quarantine WHERE row_data->>'msg_id' = '00000000-0000-7000-8000-00000000aaa3'" 20
ok $? "ap-south quarantines the tombstone its CHECK refuses"
mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (12, 'ana', 'after the refused tombstone')" >/dev/null
wait_until "$(mesh_instance ap-south)" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body = 'after the refused tombstone'" 20
ok $? "and replication goes on: a later message arrives"
mesh_sql ap-south -c "ALTER TABLE chat.messages DROP CONSTRAINT keeps_bodies" >/dev/null

# ===== what verify must not call converged ===================================
# A message that waits for an hlc no region holds, written the way a
# replicated row arrives (its dep is well formed, only missing everywhere).
mesh_sql eu-west -c "SET session_replication_role = replica;
  INSERT INTO chat.messages (conversation_id, sender, body, hlc, deps, crdb_region, epoch)
  VALUES (13, 'bo', 'waiting forever', causal.hlc_now(), ARRAY[causal.hlc_from_parts(1000, 0, 9)], 'eu-west', 0)" >/dev/null
run verdict causalctl_mesh verify --wait 3
is "$rc" 1 "verify fails while a message waits for an hlc no region holds"
ok "$(contains "$verdict" "no region holds: they can never be delivered")" "and says so"
diag "$(grep -m1 'never be delivered' <<<"$verdict")"

done_testing
