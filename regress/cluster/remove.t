#!/usr/bin/env bash
# A region that is gone for good leaves the mesh: causalctl remove. One
# decommissioned while it runs leaves with everything it wrote delivered, and
# keeps no link itself. One that is dead and left out of the configuration
# shows in status as slots and subscriptions of no region; remove refuses it
# while it is active, and while it cannot be reached unless forced; removed,
# no region keeps a link or WAL for it, the majority is counted over the two
# that are left, and they go on.
source "$(dirname "$0")/../lib/cluster-test.sh"
regions=(us-east eu-west ap-south sa-east)
MESH_CONF=()
mesh_up rm 28700 5 "${regions[@]}" || bail "could not build the mesh"
without() {  # without REGION: the configuration on stdin, REGION left out
  grep -v "^region = $1=\|:$1=\|^link = $1:"
}
without sa-east <"$CAUSAL_WORK/rm.causalctl.conf" >"$work/three.conf"
without ap-south <"$work/three.conf" >"$work/two.conf"
three() { CAUSALCTL_CONFIG="$work/three.conf" "$CAUSAL_BUILD/causalctl" "$@"; }
two() { CAUSALCTL_CONFIG="$work/two.conf" "$CAUSAL_BUILD/causalctl" "$@"; }
causal_objects() {  # causal_objects REGION: its subscriptions and slots of pg_causal's
  mesh_sql "$1" -At -c "SELECT (SELECT count(*) FROM pg_subscription WHERE subname LIKE 'causal\_%')
                             + (SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'causal\_%')"
}

# --- a region decommissioned while it runs ------------------------------------
mesh_sql sa-east -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (1, 'sol', 'last words')" >/dev/null
run out causalctl_mesh failover sa-east --force
is "$rc" 0 "sa-east, alive, failed over with --force"
run out causalctl_mesh remove sa-east
is "$rc" 0 "remove sa-east, fenced and reachable: exit 0"
[ "$rc" = 0 ] || diag "$out"
ok "$(contains "$out" "it holds no link to them either")" "... dropping its own links too"
is "$(causal_objects sa-east)" 0 "sa-east keeps no subscription or slot of the mesh"
is "$(for r in us-east eu-west ap-south; do printf '%s|' "$(mesh_sql "$r" -At -c "SELECT count(*) FROM chat.messages WHERE body = 'last words'")"; done)" \
   "1|1|1|" "what sa-east wrote before it left is in every region that stays"
is "$(mesh_sql us-east -At -c "SELECT count(*) FROM causal.regions")" 3 "three regions are registered"
regions=(us-east eu-west ap-south)
links_to() {  # links_to REGION: pg_causal's subscriptions and slots naming REGION, in us-east and eu-west
  local r n=${1//-/_}
  for r in us-east eu-west; do
    printf '%s|' "$(mesh_sql "$r" -At -c "SELECT (SELECT count(*) FROM pg_subscription WHERE subname LIKE '%$n%')
                                               + (SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE '%$n%')")"
  done
}

mesh_sql ap-south -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (1, 'raj', 'before')" >/dev/null
wait_until "$(mesh_instance us-east)" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body = 'before'" 20 ||
  bail "ap-south's message did not arrive"
instance_kill9 "$(mesh_instance ap-south)"

run out two status
is "$rc" 1 "status of the two others, ap-south left out: exit 1"
ok "$(grep -q 'us-east: slot causal_us_east_to_ap_south belongs to no link' <<<"$out"; echo $?)" \
   "... it names us-east's slot for ap-south as belonging to no link"
ok "$(grep -q 'eu-west: subscription causal_ap_south_to_eu_west belongs to no link' <<<"$out"; echo $?)" \
   "... and eu-west's subscription to it"

run out three remove ap-south
is "$rc" 4 "remove ap-south while it is active: refused, exit 4"
ok "$(contains "$out" "failover ap-south")" "... saying to fail it over first"
is "$(links_to ap-south)" "2|2|" "... and nothing was changed (a subscription and a slot in each)"
run out three remove ap-south --force
is "$rc" 4 "remove ap-south --force while it is active: refused too, exit 4"
is "$(links_to ap-south)" "2|2|" "... and nothing was changed"

run out three failover ap-south --wait 15
is "$rc" 0 "failover ap-south"
run out three remove ap-south
is "$rc" 4 "remove of the fenced ap-south, which cannot be reached: refused, exit 4"
ok "$(contains "$out" "is lost with it")" "... saying what would be lost"
is "$(links_to ap-south)" "2|2|" "... and nothing was changed (a subscription and a slot in each)"

run out two remove ap-south --force
is "$rc" 0 "remove ap-south --force, with ap-south left out of the configuration: exit 0"
[ "$rc" = 0 ] || diag "$out"
is "$(links_to ap-south)" "0|0|" "no subscription or slot for ap-south is left"
is "$(for r in us-east eu-west; do printf '%s|' "$(mesh_sql "$r" -At -c "SELECT string_agg(region, ',' ORDER BY region) FROM causal.regions")"; done)" \
   "eu-west,us-east|eu-west,us-east|" "... and two regions are registered"
is "$(mesh_sql us-east -At -c "SELECT count(*) FROM causal.fences WHERE region = 'ap-south'")" 1 \
   "... while ap-south's fence stays (its writes after it stay orphans)"

run out two status
is "$rc" 0 "status of the two: exit 0, nothing belongs to no region"
[ "$rc" = 0 ] || diag "$out"
mesh_sql eu-west -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (1, 'eve', 'after')" >/dev/null
wait_until "$(mesh_instance us-east)" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body = 'after'" 20
ok $? "the two go on: eu-west's message reaches us-east"
run out two failover eu-west --force
ok "$([[ $out != *"causal.regions has"* ]]; echo $?)" \
   "failover counts the majority over the two registered regions (not: causal.regions has 3)"
run out two verify
is "$rc" 0 "verify: the two converge"
done_testing
