#!/usr/bin/env bash
# A region partitioned from the two others, behind the WAN proxy.
#
# Self-fencing off (the default): the cut-off ap-south keeps taking writes
# and does not know when the majority fails it over. After the heal it
# learns its fence, refuses writes (5C001), and every write it took after
# the fence reaches every region, where the merged history flags it an
# orphan, identically everywhere; nothing is lost, and it rejoins. Its
# deletions follow the same line: one it wrote before the fence deletes the
# message everywhere; one it wrote after deletes nothing (the message keeps
# its body in every region, ap-south's own copy brought back, and each
# region lists the deletion in causal.fenced_deletions); a deletion by an
# active region, or by ap-south after it rejoined, deletes everywhere.
#
# Self-fencing on (causal.self_fence_after = 2s, set at run time): cut off,
# ap-south refuses writes ("has fenced itself") about 2 s after the cut, and
# takes them again once it hears the majority after the heal.
source "$(dirname "$0")/../lib/cluster-test.sh"
regions=(us-east eu-west ap-south)

MESH_CONF=()
mesh_up partition 26300 10 "${regions[@]}" || bail "could not build the mesh"

ap_links=("$(wan_link ap-south us-east)" "$(wan_link ap-south eu-west)" "$(wan_link us-east ap-south)" "$(wan_link eu-west ap-south)")
cut_ap_south() { local l; for l in "${ap_links[@]}"; do wan cut "$l" >/dev/null || return 1; done; }
heal_ap_south() { local l; for l in "${ap_links[@]}"; do wan heal "$l" >/dev/null || return 1; done; }
# write REGION BODY: one message in conversation 7; its msg_id on stdout, or
# psql's error (verbose: with the SQLSTATE) and a nonzero status
write() {
  local out
  out=$(mesh_sql "$1" -At -v VERBOSITY=verbose \
    -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (7, '$1', '$2') RETURNING msg_id" 2>&1)
  local status=$?
  echo "$out"
  return $status
}
hear_all() {
  local r
  for r in "${regions[@]}"; do
    wait_until "$(mesh_instance "$r")" "$MESH_DB" \
      "SELECT count(heard_ms_ago) = 2 AND max(heard_ms_ago) < 1000 FROM causal.liveness()" "${1:-20}" || return 1
  done
}
# Each message's msg_id and orphan flag in REGION's merged history of conversation 7.
orphans_in() {
  mesh_sql "$1" -At -c "SELECT string_agg(u.msg_id || ':' || u.orphan, ',' ORDER BY u.msg_id)
                          FROM (SELECT causal.merge(msg_id, hlc, deps, crdb_region, epoch, copies) AS m
                                  FROM chat.messages WHERE conversation_id = 7 GROUP BY conversation_id) g,
                               causal.unnest(g.m) u"
}
# Messages to delete live in conversation 8.
write_8() {
  mesh_sql "$1" -At -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (8, '$1', '$2') RETURNING msg_id"
}
delete_in() { mesh_sql "$1" -At -v VERBOSITY=verbose -c "DELETE FROM chat.messages WHERE msg_id = '$2'" 2>&1; }
# What REGION holds of a message: its body, or 'deleted'.
held() { mesh_sql "$1" -At -c "SELECT coalesce(CASE WHEN deleted_at IS NULL THEN body END, 'deleted') FROM chat.messages WHERE msg_id = '$2'"; }
held_everywhere() { local r; for r in "${regions[@]}"; do held "$r" "$1"; done | paste -sd' '; }
wait_held() {  # wait_held MSG_ID WANT: until every region holds WANT of it
  local r
  for r in "${regions[@]}"; do
    wait_until "$(mesh_instance "$r")" "$MESH_DB" \
      "SELECT coalesce(CASE WHEN deleted_at IS NULL THEN body END, 'deleted') = '$2' FROM chat.messages WHERE msg_id = '$1'" 30 || return 1
  done
}
join_sorted() { tr ' ' '\n' <<<"$*" | grep -v '^$' | sort | paste -sd, -; }

hear_all || bail "the regions do not hear each other's heartbeats"

# ===== self-fencing off ====================================================
before=()
for i in 1 2 3; do
  id=$(write ap-south "before the cut $i") || bail "could not write in ap-south: $id"
  before+=("$id")
done
for r in us-east eu-west; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" "SELECT count(*) = 3 FROM chat.messages WHERE body LIKE 'before the cut %'" 20 ||
    bail "ap-south's first messages did not reach $r"
done

early=$(write_8 us-east "ap-south deletes this before its fence") &&
  fenced=$(write_8 us-east "ap-south deletes this while fenced") &&
  later=$(write_8 us-east "ap-south deletes this after it rejoined") || bail "could not write in us-east"
wait_until "$(mesh_instance ap-south)" "$MESH_DB" "SELECT count(*) = 3 FROM chat.messages WHERE conversation_id = 8" 20 ||
  bail "us-east's messages did not reach ap-south"

cut_ap_south || bail "could not cut ap-south's links"
cut_at=$(now)
out=$(delete_in ap-south "$early") || bail "could not delete in ap-south: $out"
during=() failed=0
for i in 1 2 3 4 5; do
  id=$(write ap-south "during the cut $i") && during+=("$id") || { failed=$((failed + 1)); diag "$id"; }
  sleep 0.3
done
is "$failed" 0 "cut off, ap-south keeps taking writes (5 of 5)"

# The majority stops hearing ap-south; after --dead-after (3 s) it may fail it over.
sleep 2
rc=1 attempts=0 deadline=$((SECONDS + 10))
while [ $SECONDS -lt $deadline ]; do
  run out causalctl_cut_off ap-south failover ap-south
  attempts=$((attempts + 1))
  [ "$rc" = 0 ] && break
  sleep 0.5
done
is "$rc" 0 "failover ap-south, $(since "$cut_at") s after the cut: exit 0 (attempt $attempts)"
ok "$(grep -q '^  us-east: yes' <<<"$out" && grep -q '^  eu-west: yes' <<<"$out"; echo $?)" "... with the votes of us-east and eu-west"
[ "$rc" = 0 ] || diag "$out"
is "$(mesh_sql ap-south -At -c "SELECT state FROM causal.regions WHERE region = 'ap-south'")" active \
   "ap-south, still cut off, does not know it is fenced"

after=() failed=0
for i in 1 2 3 4; do
  id=$(write ap-south "after the fence $i") && after+=("$id") || { failed=$((failed + 1)); diag "$id"; }
done
is "$failed" 0 "... and keeps taking writes (4 of 4)"
out=$(delete_in ap-south "$fenced")
is "$?" 0 "... and a DELETE"

heal_ap_south || bail "could not heal ap-south's links"
wait_until "$(mesh_instance ap-south)" "$MESH_DB" "SELECT state = 'fenced' FROM causal.regions WHERE region = 'ap-south'" 30
ok $? "after the heal ap-south learns its fence"
err=$(write ap-south "after it learned"); wrc=$?
ok "$([[ $wrc != 0 && $err == *5C001* && $err == *"is fenced"* ]]; echo $?)" "... and refuses writes with 5C001"
[[ $err == *5C001* ]] || diag "$err"

total=$(( ${#before[@]} + ${#during[@]} + ${#after[@]} ))
for r in "${regions[@]}"; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" "SELECT count(*) = $total FROM chat.messages WHERE conversation_id = 7" 20 || break
done
counts=$(for r in "${regions[@]}"; do
           mesh_sql "$r" -At -c "SELECT count(*) || '/' || count(DISTINCT msg_id) FROM chat.messages WHERE conversation_id = 7"
         done | paste -sd' ')
is "$counts" "$total/$total $total/$total $total/$total" "nothing lost: every region holds all $total of ap-south's messages, each once"
views=$(for r in "${regions[@]}"; do orphans_in "$r"; done)
is "$(sort -u <<<"$views" | wc -l)" 1 "the merged history flags the same messages orphans in all three regions"
orphans=$(head -n 1 <<<"$views" | tr ',' '\n' | sed -n 's/:true$//p' | sort | paste -sd, -)
is "$orphans" "$(join_sorted "${after[@]}")" "the orphans are exactly the ${#after[@]} writes ap-south took after the fence"
not_orphans=$(head -n 1 <<<"$views" | tr ',' '\n' | sed -n 's/:false$//p' | sort | paste -sd, -)
missing=0
for id in "${before[@]}"; do [[ ,$not_orphans, == *",$id,"* ]] || missing=$((missing + 1)); done
is "$missing" 0 \
   "the writes before the cut are not orphans"
is "$not_orphans" "$(join_sorted "${before[@]}" "${during[@]}")" "... nor those it took while cut off, before the fence"

wait_held "$early" deleted
is "$(held_everywhere "$early")" "deleted deleted deleted" \
   "a DELETE ap-south took before its fence deleted the message in every region"
wait_held "$fenced" "ap-south deletes this while fenced"
is "$(held_everywhere "$fenced")" "$(printf 'ap-south deletes this while fenced%.0s ' 1 2 3 | sed 's/ $//')" \
   "one it took after the fence deleted nothing: the message has its body in every region, ap-south's brought back"
listed=$(for r in "${regions[@]}"; do
           mesh_sql "$r" -At -c "SELECT coalesce(string_agg(written_by || ':' || state, ','), 'none') FROM causal.fenced_deletions
                                  WHERE msg_id = '$fenced'"
         done | paste -sd' ')
is "$listed" "ap-south:kept ap-south:kept ap-south:restored" \
   "... and each region lists it in causal.fenced_deletions: kept in us-east and eu-west, restored in ap-south"
is "$(mesh_sql us-east -At -c "SELECT count(*) FROM causal.fenced_deletions")" 1 "... alone (not the one before the fence)"

run out causalctl_mesh rejoin ap-south
is "$rc" 0 "rejoin ap-south: exit 0"
diag "$out"
run out causalctl_mesh verify --wait 20
is "$rc" 0 "causalctl verify --wait 20: the regions converge"
[ "$rc" = 0 ] || diag "$out"

out=$(delete_in us-east "$fenced") || diag "$out"
wait_held "$fenced" deleted
is "$(held_everywhere "$fenced")" "deleted deleted deleted" "a DELETE in us-east, an active region, erases it everywhere"
out=$(delete_in ap-south "$later") || diag "$out"
wait_held "$later" deleted
is "$(held_everywhere "$later")" "deleted deleted deleted" "a DELETE ap-south takes after it rejoined deletes everywhere"

# ===== self-fencing on =====================================================
hear_all || bail "the regions do not hear each other after the rejoin"
mesh_sql ap-south -c "ALTER SYSTEM SET causal.self_fence_after = '2s'" -c "SELECT pg_reload_conf()" >/dev/null ||
  bail "could not set causal.self_fence_after"
wait_until "$(mesh_instance ap-south)" "$MESH_DB" "SELECT current_setting('causal.self_fence_after') = '2s'" 10 ||
  bail "causal.self_fence_after did not change"
# The liveness worker reads it at its next round: ap-south's own heartbeat
# moving twice more proves a round began after the reload (a sleep would
# make the check below pass whether it had or not).
own_beat() { mesh_sql ap-south -At -c "SELECT beat FROM causal.heartbeats WHERE region = 'ap-south'"; }
beat=$(own_beat)
for _ in 1 2; do
  for _ in $(seq 1 100); do next=$(own_beat); [ -n "$next" ] && [ "$next" -gt "$beat" ] && break; sleep 0.05; done
  [ "$next" -gt "$beat" ] || bail "ap-south's liveness worker does not beat"
  beat=$next
done
is "$(mesh_sql ap-south -At -c "SELECT causal.self_fenced()")" f "with self-fencing on and every peer heard, ap-south is not fenced"

cut_ap_south || bail "could not cut ap-south's links"
cut_at=$(now)
fenced_after="" writes=0 other=""
while [ -z "$fenced_after" ] && awk -v t="$(since "$cut_at")" 'BEGIN { exit !(t < 10) }'; do
  if err=$(write ap-south "self-fencing $writes"); then
    writes=$((writes + 1))
  elif [[ $err == *"has fenced itself"* ]]; then
    fenced_after=$(since "$cut_at")
    refusal=$err
  else
    other=$err
  fi
  sleep 0.1
done
diag "cut -> ap-south fenced itself: ${fenced_after:-never} s (self_fence_after 2 s; $writes writes taken first)"
ok "$([ -n "$fenced_after" ] && awk -v t="$fenced_after" 'BEGIN { exit !(t <= 4) }'; echo $?)" \
   "cut off, ap-south refuses writes (\"has fenced itself\") within 2 s + 2 s of slack (${fenced_after:-never} s)"
ok "$([ -n "$fenced_after" ] && awk -v t="$fenced_after" 'BEGIN { exit !(t >= 1) }'; echo $?)" \
   "... and not before its peers went unheard for about 2 s"
ok "$([[ ${refusal:-} == *5C001* ]]; echo $?)" "... with 5C001"
is "$other" "" "... and no write failed otherwise before"
is "$(mesh_sql ap-south -At -c "SELECT causal.self_fenced()")" t "causal.self_fenced() is true"

heal_ap_south || bail "could not heal ap-south's links"
healed_at=$(now) back=""
while awk -v t="$(since "$healed_at")" 'BEGIN { exit !(t < 10) }'; do
  write ap-south "after the heal" >/dev/null && { back=$(since "$healed_at"); break; }
  sleep 0.1
done
ok "$([ -n "$back" ]; echo $?)" "after the heal ap-south takes writes again within 10 s (${back:-never} s)"
is "$(mesh_sql ap-south -At -c "SELECT causal.self_fenced()")" f "... and causal.self_fenced() is false"

done_testing
