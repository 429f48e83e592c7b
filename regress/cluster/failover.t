#!/usr/bin/env bash
# causalctl failover and rejoin on three regions behind the WAN proxy: a live
# region is not failed over without --force; two forced failovers racing
# land at most one fence, so a majority stays active; a region killed with
# kill -9 is fenced once its heartbeat is older than --dead-after, and not
# before; without a reachable majority nothing is fenced; the dead region
# comes back, learns its fence from replication, refuses writes (5C001), and
# rejoins with every region agreeing on every epoch and state. From the kill
# on, causalctl runs as an operator who is a member of causal_admin and no
# superuser: failing over and rejoining need no more.
source "$(dirname "$0")/../lib/cluster-test.sh"
regions=(us-east eu-west ap-south)

MESH_CONF=()
mesh_up failover 26100 10 "${regions[@]}" || bail "could not build the mesh"

# The operator: a login in causal_admin, in every region (roles are not
# replicated), and a causalctl configuration that connects as it.
# A login outside causal_admin is another.
for r in "${regions[@]}"; do
  mesh_sql "$r" -c "CREATE ROLE operator LOGIN IN ROLE causal_admin; CREATE ROLE outsider LOGIN" >/dev/null ||
    bail "could not create the operator in $r"
done
for role in operator outsider; do
  sed "s/^\(region = .*\)user=postgres/\1user=$role/" "$CAUSAL_WORK/failover.causalctl.conf" >"$work/$role.conf"
done
causalctl_operator() { CAUSALCTL_CONFIG="$work/operator.conf" "$CAUSAL_BUILD/causalctl" "$@"; }

# Every region's epoch and state, as REGION sees them.
view() { mesh_sql "$1" -At -c "SELECT string_agg(region || ':' || epoch || ':' || state, ',' ORDER BY region) FROM causal.regions"; }
fenced_in() { mesh_sql "$1" -At -c "SELECT coalesce(string_agg(region, ',' ORDER BY region), '') FROM causal.regions WHERE state = 'fenced'"; }
write() {  # write REGION BODY: one message, psql's stderr on stdout
  mesh_sql "$1" -v VERBOSITY=verbose -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (1, '$1', '$2')" 2>&1 >/dev/null
}
streams() {  # streams FROM TO: TO's subscription to FROM has a running apply worker
  wait_until "$(mesh_instance "$2")" "$MESH_DB" \
    "SELECT count(*) = 1 FROM pg_stat_subscription WHERE subname = 'causal_${1//-/_}_to_${2//-/_}' AND pid IS NOT NULL AND relid IS NULL" "${3:-30}"
}

# Everyone hears everyone before anything is judged.
for r in "${regions[@]}"; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" \
    "SELECT count(heard_ms_ago) = 2 AND max(heard_ms_ago) < 1000 FROM causal.liveness()" 20 ||
    bail "$r does not hear its peers' heartbeats"
done

# --- a live region --------------------------------------------------------
run out causalctl_mesh failover us-east
is "$rc" 4 "failover of a live us-east: refused, exit 4"
ok "$(contains "$out" "us-east is alive")" "... and it says us-east is alive"
[ "$rc" = 4 ] || diag "$out"
is "$(for r in "${regions[@]}"; do printf '[%s]' "$(fenced_in "$r")"; done)" "[][][]" "... and no region is fenced anywhere"

# --- a login outside causal_admin -----------------------------------------
for command in failover rejoin; do
  run out env CAUSALCTL_CONFIG="$work/outsider.conf" "$CAUSAL_BUILD/causalctl" "$command" us-east --force
  is "$rc" 4 "$command by a login outside causal_admin: refused, exit 4"
  ok "$(contains "$out" "not a member of causal_admin")" "... saying it needs causal_admin"
  [ "$rc" = 4 ] || diag "$out"
done
is "$(for r in "${regions[@]}"; do printf '[%s]' "$(fenced_in "$r")"; done)" "[][][]" "... and no region is fenced anywhere"

# --- two forced failovers racing ------------------------------------------
causalctl_mesh failover us-east --force >"$work/race-us-east" 2>&1 &
pid_us=$!
causalctl_mesh failover eu-west --force >"$work/race-eu-west" 2>&1 &
pid_eu=$!
wait "$pid_us"; rc_us=$?
wait "$pid_eu"; rc_eu=$?
diag "failover us-east --force: exit $rc_us: $(tr '\n' ' ' <"$work/race-us-east")"
diag "failover eu-west --force: exit $rc_eu: $(tr '\n' ' ' <"$work/race-eu-west")"
succeeded=$(( (rc_us == 0) + (rc_eu == 0) ))
ok "$([ "$succeeded" -le 1 ]; echo $?)" "two forced failovers racing: at most one succeeds ($succeeded did)"
for r in "${regions[@]}"; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" "SELECT count(*) FILTER (WHERE state = 'fenced') >= 1 FROM causal.regions" 10 || break
done
# Proof that a second fence, if one landed too, has replicated: each
# region's next heartbeat, which its stream carries after whatever it
# wrote before, has reached every other region.
for p in "${regions[@]}"; do
  beat=$(mesh_sql "$p" -At -c "SELECT beat FROM causal.heartbeats WHERE region = '$p'")
  for r in "${regions[@]}"; do
    [ "$r" = "$p" ] && continue
    wait_until "$(mesh_instance "$r")" "$MESH_DB" "SELECT beat > $beat FROM causal.heartbeats WHERE region = '$p'" 20 ||
      bail "$r did not hear $p's next heartbeat"
  done
done
fenced=$(for r in "${regions[@]}"; do printf '[%s]' "$(fenced_in "$r")"; done)
it=$(fenced_in us-east)
is "$fenced" "[$it][$it][$it]" "every region sees the same fenced region"
ok "$([[ $it == us-east || $it == eu-west ]]; echo $?)" "exactly one region is fenced ($it): a majority stays active"
want_rc=$([ "$it" = us-east ] && echo "0 $rc_eu" || echo "$rc_us 0")
is "$rc_us $rc_eu" "$want_rc" "the failover that exited 0 is the one whose fence landed"
if [[ $it == us-east || $it == eu-west ]]; then
  run out causalctl_mesh rejoin "$it"
  is "$rc" 0 "rejoin $it: exit 0"
  [ "$rc" = 0 ] || diag "$out"
else
  ok 1 "rejoin the fenced region (none to rejoin: [$it])"
fi
for r in "${regions[@]}"; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" "SELECT bool_and(state = 'active') FROM causal.regions" 10 || break
done
is "$(for r in "${regions[@]}"; do printf '[%s]' "$(fenced_in "$r")"; done)" "[][][]" "... and it is active again everywhere"
# The losing failover's yes vote stays pending in its voter (until its target
# is fenced, or an admin deletes it), and that voter backs no other fence.
diag "votes still pending after the race: $(for r in "${regions[@]}"; do
  printf '%s: [%s] ' "$r" "$(mesh_sql "$r" -At -c "SELECT coalesce(string_agg(v.target, ','), '') FROM causal.fence_votes v
    JOIN causal.regions g ON g.region = v.target AND g.epoch = v.target_epoch AND g.state = 'active'")"; done)"
for r in "${regions[@]}"; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" \
    "SELECT count(heard_ms_ago) = 2 AND max(heard_ms_ago) < 1000 FROM causal.liveness()" 20 || bail "$r does not hear its peers"
done

# --- kill -9 a whole region -----------------------------------------------
killed_at=$(now)
instance_kill9 "$(mesh_instance us-east)"
run out causalctl_operator failover us-east
is "$rc" 4 "failover of us-east right after its kill -9: refused, exit 4"
ok "$([[ $out == *"us-east is alive"* && $out == *"--wait"* ]]; echo $?)" "... as alive, saying --wait waits until it counts as dead"
run out causalctl_operator failover us-east --wait 15
fence_s=$(since "$killed_at")
is "$rc" 0 "failover us-east --wait 15: fenced, in one run"
[ "$rc" = 0 ] || diag "$out"
diag "kill -9 -> fenced in every survivor: $fence_s s measured"
ok "$(awk -v t="$fence_s" 'BEGIN { exit !(t >= 2.5) }'; echo $?)" "... and not before its heartbeat was about --dead-after (3 s) old ($fence_s s)"
ok "$(contains "$out" "every region reached has the fence")" "... and it carried the fence to every survivor itself"
clients_go_to=$(sed -n "s/^send us-east's users to \([a-z-]*\) .*/\1/p" <<<"$out")
ok "$([ -n "$clients_go_to" ]; echo $?)" "... and it says where us-east's users go ($clients_go_to)"
for r in eu-west ap-south; do
  is "$(fenced_in "$r")" us-east "$r shows us-east fenced"
done
err=$(write eu-west "after the failover")
is "$err" "" "a write in the survivor eu-west works"

# --- no majority ----------------------------------------------------------
instance_kill9 "$(mesh_instance eu-west)"
run out causalctl_operator failover eu-west
is "$rc" 4 "failover eu-west with us-east and eu-west dead (only ap-south reachable): refused, exit 4"
ok "$(contains "$out" "can be reached")" "... because a majority cannot be reached"
[ "$rc" = 4 ] || diag "$out"
is "$(fenced_in ap-south)" us-east "... and ap-south still has only us-east fenced"
instance_start "$(mesh_instance eu-west)" || bail "eu-west did not restart"
streams eu-west ap-south && streams ap-south eu-west || bail "replication between eu-west and ap-south did not resume"
err=$(write ap-south "after eu-west came back")
wait_until "$(mesh_instance eu-west)" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body = 'after eu-west came back'" 20
ok $? "eu-west restarted and replication streams again"

# --- rejoin ---------------------------------------------------------------
instance_start "$(mesh_instance us-east)" || bail "us-east did not restart"
wait_until "$(mesh_instance us-east)" "$MESH_DB" "SELECT state = 'fenced' FROM causal.regions WHERE region = 'us-east'" 30
ok $? "the restarted us-east learns its fence from replication"
err=$(write us-east "while fenced")
ok "$([[ $err == *5C001* && $err == *"is fenced"* ]]; echo $?)" "a write in us-east fails with 5C001, \"is fenced\""
[[ $err == *5C001* ]] || diag "$err"
ok "$(contains "$err" "Write to region \"$clients_go_to\"")" "... whose HINT names the region failover sent its users to ($clients_go_to)"
run out causalctl_operator rejoin us-east
is "$rc" 0 "rejoin us-east: exit 0"
diag "$out"
for _ in $(seq 1 50); do
  views=$(for r in "${regions[@]}"; do view "$r"; done | sort -u)
  [ "$(wc -l <<<"$views")" = 1 ] && [[ $views != *fenced* ]] && break
  sleep 0.2
done
is "$(wc -l <<<"$views")" 1 "every region shows the same epochs and states ($(tr '\n' ' ' <<<"$views"))"
ok "$([[ -n $views && $views != *fenced* ]]; echo $?)" "... every region active"
err=$(write us-east "after the rejoin")
is "$err" "" "a write in us-east succeeds after the rejoin"
run out causalctl_operator status
is "$rc" 0 "causalctl status as the operator: exit 0"
[ "$rc" = 0 ] || diag "$out"
run out causalctl_mesh verify --wait 20
is "$rc" 0 "causalctl verify --wait 20: the regions converge"
[ "$rc" = 0 ] || diag "$out"

# --- a failover that stopped halfway ----------------------------------------
# Its fence landed in us-east, which cannot pass it on to eu-west (their
# links are cut), and the operator's causalctl died before it carried it:
# what a failover that lost eu-west after the apply leaves. Run again, it
# finishes the job.
for r in "${regions[@]}"; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" \
    "SELECT count(heard_ms_ago) = 2 AND max(heard_ms_ago) < 1000 FROM causal.liveness()" 20 || bail "$r does not hear its peers"
done
instance_kill9 "$(mesh_instance ap-south)"
wan cut "$(wan_link us-east eu-west)" >/dev/null && wan cut "$(wan_link eu-west us-east)" >/dev/null ||
  bail "could not cut us-east from eu-west"
# (the race above left a vote of us-east's pending, which an admin clears)
mesh_sql us-east -c "DELETE FROM causal.fence_votes" >/dev/null
view_now=$(mesh_sql us-east -At -c "SELECT causal.mesh_view()")
for r in us-east eu-west; do
  mesh_sql "$r" -At -c "SELECT causal.vote_fence('ap-south', '$view_now')" >/dev/null
done
mesh_sql us-east -c "SELECT causal.apply_fence('ap-south', '$view_now')" >/dev/null || bail "could not land the fence in us-east"
is "$(fenced_in us-east) / $(fenced_in eu-west)" "ap-south / " "the fence of ap-south is in us-east, not in eu-west"
run out causalctl_operator failover ap-south
is "$rc" 0 "failover ap-south again: exit 0"
[ "$rc" = 0 ] || diag "$out"
ok "$(contains "$out" "carried the fence to eu-west")" "... carrying the fence to eu-west itself"
is "$(fenced_in eu-west)" ap-south "... which now refuses ap-south's writes too, its link from us-east still cut"
is "$(mesh_sql eu-west -At -c "SELECT count(*) FROM causal.fence_votes v JOIN causal.regions g
                                  ON g.region = v.target AND g.epoch = v.target_epoch AND g.state = 'active'
                                WHERE v.target = 'ap-south'")" 0 \
   "... and eu-west's vote for it is no longer pending (it sees the fence land)"
wan heal "$(wan_link us-east eu-west)" >/dev/null && wan heal "$(wan_link eu-west us-east)" >/dev/null
instance_start "$(mesh_instance ap-south)" || bail "ap-south did not restart"
run out causalctl_operator rejoin ap-south --wait 60
is "$rc" 0 "ap-south rejoins"
[ "$rc" = 0 ] || diag "$out"

done_testing
