#!/usr/bin/env bash
# kill -9 of a whole region under synchronous load (RPO zero on demand):
# causal-probe --synchronous writes in all three regions and counts a message
# acknowledged only after causal.await_replicated(); us-east is killed in
# the middle. Every acknowledged message, us-east's included, ends up in both
# survivors once, in causal order, and in us-east too after its restart. While
# us-east is dead its slots in the survivors hold WAL, and causalctl status
# says so.
#
# Alongside the probe a slow writer in every region replies to the newest
# message of a conversation (as converge.t does), so that the causal order
# check has replies whose parents crossed regions.
source "$(dirname "$0")/../lib/cluster-test.sh"
regions=(us-east eu-west ap-south)
survivors=(eu-west ap-south)
seconds=8

MESH_CONF=()
mesh_up kill9 26500 10 "${regions[@]}" || bail "could not build the mesh"

acks=$work/acks
# missing_in REGION: how many acknowledged messages REGION lacks
missing_in() {
  mesh_sql "$1" -At -c "CREATE TEMP TABLE acked (region text, msg_id uuid)" \
    -c "\\copy acked FROM '$acks' WITH (DELIMITER ' ')" \
    -c "SELECT count(*) FROM acked a WHERE NOT EXISTS (SELECT FROM chat.messages m WHERE m.msg_id = a.msg_id)"
}
# until_none_missing REGION SECONDS: polls missing_in; the last count in $missing
until_none_missing() {
  local end=$((SECONDS + $2))
  while :; do
    missing=$(missing_in "$1") || missing=error
    [ "$missing" = 0 ] && return 0
    [ $SECONDS -ge $end ] && return 1
    sleep 0.5
  done
}

mesh_reply_script "$work/reply.sql"
mesh_probe "${regions[@]}" -- --synchronous --quiet-failures --ack-log "$acks" \
  --rate 150 --seconds "$seconds" --drain 2 --conversations 20 >"$work/probe.log" 2>&1 &
probe=$!
repliers=()
for r in "${regions[@]}"; do
  mesh_pgbench "$r" "$seconds" 20 "$work/reply.sql" >"$work/reply-$r.log" 2>&1 &
  repliers+=($!)
done
sleep 3
instance_kill9 "$(mesh_instance us-east)"
wait "$probe"
probe_rc=$?
wait "${repliers[@]}"
diag "causal-probe (exit $probe_rc): $(tr '\n' ' ' <"$work/probe.log")"
[ -s "$acks" ] || bail "causal-probe wrote no acknowledgements"
acked=$(wc -l <"$acks")
acked_by=$(for r in "${regions[@]}"; do printf '%s %s, ' "$r" "$(grep -c "^$r " "$acks")"; done)
diag "$acked acknowledged messages: ${acked_by%, }"
ok "$(grep -q "^us-east " "$acks" && grep -q "^eu-west " "$acks" && grep -q "^ap-south " "$acks"; echo $?)" \
   "every region acknowledged messages, us-east before it was killed"
ok "$(grep -q ' 0 failed writes' "$work/probe.log"; echo $?)" "no write failed in the survivors (causal-probe)"

for r in "${survivors[@]}"; do
  until_none_missing "$r" 20
  is "$missing" 0 "every acknowledged message, us-east's included, is in $r"
done
for r in "${survivors[@]}"; do
  is "$(mesh_sql "$r" -At -c "SELECT count(*) = count(DISTINCT msg_id) FROM chat.messages")" t "no message twice in $r"
done
for r in "${survivors[@]}"; do
  is "$(mesh_sql "$r" -At -c "$MESH_ORDER_VIOLATIONS_SQL")" 0 "no delivered reply before its parent in $r"
done
replies=$(mesh_sql eu-west -At -c "SELECT count(*) FROM chat.messages WHERE cardinality(deps) > 0")
diag "eu-west holds $replies replies"

# Dead us-east's slots in the survivors hold what they write meanwhile.
mesh_sql eu-west -c "INSERT INTO chat.messages (conversation_id, sender, body)
                     SELECT 1000 + g % 10, 'bulk', repeat(md5(g::text), 32) FROM generate_series(1, 20000) g" >/dev/null ||
  bail "could not write in eu-west"
run out causalctl_mesh status --max-slot-wal-mb 1
ok "$([ "$rc" != 0 ]; echo $?)" "causalctl status --max-slot-wal-mb 1 with us-east dead: nonzero exit ($rc)"
ok "$(grep -q 'slot causal_eu_west_to_us_east holds' <<<"$out"; echo $?)" "... and it warns that slot causal_eu_west_to_us_east holds WAL"
grep -q 'slot causal_eu_west_to_us_east holds' <<<"$out" || diag "$out"

instance_start "$(mesh_instance us-east)" || bail "us-east did not restart"
mesh_wait_streaming || bail "replication did not resume after us-east's restart"
until_none_missing us-east 30
is "$missing" 0 "after its restart every acknowledged message is in us-east"
run out causalctl_mesh verify --wait 30
is "$rc" 0 "causalctl verify --wait 30: the regions converge"
[ "$rc" = 0 ] || diag "$out"
is "$(mesh_sql us-east -At -c "SELECT count(*) = count(DISTINCT msg_id) FROM chat.messages")" t "no message twice in us-east"

done_testing
