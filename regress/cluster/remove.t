#!/usr/bin/env bash
# A region that is gone for good leaves the mesh: causalctl remove. Left out
# of the configuration, its links and slots show in status as belonging to
# no region; remove refuses while it is active, and while it cannot be
# reached unless forced; removed, no region keeps a link or WAL for it, the
# majority is counted over the two that are left, and they go on.
source "$(dirname "$0")/../lib/cluster-test.sh"
regions=(us-east eu-west ap-south)
MESH_CONF=()
mesh_up rm 28700 5 "${regions[@]}" || bail "could not build the mesh"
grep -v '^region = ap-south=\|:ap-south=\|^link = ap-south:' "$CAUSAL_WORK/rm.causalctl.conf" >"$work/two.conf"
two() { CAUSALCTL_CONFIG="$work/two.conf" "$CAUSAL_BUILD/causalctl" "$@"; }
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

run out causalctl_mesh remove ap-south
is "$rc" 4 "remove ap-south while it is active: refused, exit 4"
ok "$(contains "$out" "failover ap-south")" "... saying to fail it over first"
is "$(links_to ap-south)" "2|2|" "... and nothing was changed (a subscription and a slot in each)"
run out causalctl_mesh remove ap-south --force
is "$rc" 4 "remove ap-south --force while it is active: refused too, exit 4"
is "$(links_to ap-south)" "2|2|" "... and nothing was changed"

run out causalctl_mesh failover ap-south --wait 15
is "$rc" 0 "failover ap-south"
run out causalctl_mesh remove ap-south
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
