#!/usr/bin/env bash
# A region back from an outage answers a conversation's readers only with
# what it holds completely. us-east is stopped while eu-west writes 40,000
# messages to one conversation, in transactions of 1,000 with its heartbeats
# between them; then it starts again, and is asked for that conversation's
# history and catch_up every few milliseconds while the backlog arrives.
# Each answer is whole, or 5C003 naming a region that is current: never a
# history with a gap. (Before this, us-east answered with what it had so
# far.) Then, behind a second backlog, a message eu-west writes meanwhile
# reaches us-east first: the relay follows eu-west while it arrives.
source "$(dirname "$0")/../lib/cluster-test.sh"
regions=(us-east eu-west ap-south)
conversation=7

MESH_CONF=()
mesh_up recovery 29000 10 "${regions[@]}" || bail "could not build the mesh"

instance_stop "$(mesh_instance us-east)"
for i in $(seq 1 40); do
  mesh_sql eu-west -c "INSERT INTO chat.messages (conversation_id, sender, body)
                       SELECT $conversation, 'eu', 'backlog $i.' || g FROM generate_series(1, 1000) g" >/dev/null ||
    bail "could not write the backlog"
  sleep 0.05
done
# The backlog is then older than causal.relay_after + causal.max_clock_offset.
sleep 3
expected=$(mesh_sql eu-west -At -c "SELECT count(*) FROM chat.messages WHERE conversation_id = $conversation")
before=$(mesh_sql eu-west -At -c "SELECT causal.hlc_now()")
diag "eu-west holds $expected messages of conversation $conversation; us-east restarts"

# answer KIND: what us-east answers now: complete, refused (5C003, its hint
# in $hint), gap (fewer rows), or other (another error, in $other)
history_sql="SELECT count(*) FROM causal.history(NULL::chat.messages, '$conversation') WHERE hlc < '$before'"
catch_up_sql="SELECT count(*) FROM causal.catch_up('chat.messages', '$conversation', NULL) WHERE hlc < '$before'"
answer() {
  local sql out
  [ "$1" = history ] && sql=$history_sql || sql=$catch_up_sql
  out=$(mesh_sql us-east -At -v VERBOSITY=verbose -c "$sql" 2>&1)
  if [ "$out" = "$expected" ]; then echo complete
  elif [[ $out =~ ^[0-9]+$ ]]; then echo "gap $out"
  elif [[ $out == *"ERROR:  5C003:"* ]]; then echo "refused $(grep -o 'HINT:.*' <<<"$out")"
  else echo "other $(head -n 1 <<<"$out")"
  fi
}

instance_start "$(mesh_instance us-east)" || bail "us-east did not start"
declare -A seen=()
gaps=() others=() hints=()
end=$((SECONDS + 120))
done_reading=""
while [ $SECONDS -lt $end ]; do
  for kind in history catch_up; do
    a=$(answer "$kind")
    case $a in
      complete) seen[$kind]=1 ;;
      gap*) gaps+=("$kind: ${a#gap } of $expected") ;;
      refused*) hints+=("${a#refused }") ;;
      *) others+=("$kind: ${a#other }") ;;
    esac
  done
  [ -n "${seen[history]:-}" ] && [ -n "${seen[catch_up]:-}" ] && { done_reading=1; break; }
done
diag "${#hints[@]} refusals (5C003), ${#gaps[@]} answers with a gap, ${#others[@]} other errors"
[ ${#gaps[@]} -eq 0 ] || diag "gaps: ${gaps[*]:0:5}"
[ ${#hints[@]} -eq 0 ] || diag "first refusal: ${hints[0]}"
[ ${#others[@]} -eq 0 ] || diag "other errors: ${others[*]:0:3}"

ok "$([ ${#gaps[@]} -eq 0 ]; echo $?)" "no history or catch_up answer of us-east had a gap while it caught up"
ok "$([ ${#others[@]} -eq 0 ]; echo $?)" "every refusal was 5C003"
ok "$([ -n "$done_reading" ]; echo $?)" "us-east answered the whole conversation once it had caught up"
bad_hints=0
for h in "${hints[@]}"; do
  [[ $h == *'"eu-west"'* || $h == *'"ap-south"'* || $h == *'Retry until'* ]] || bad_hints=$((bad_hints + 1))
done
ok "$([ $bad_hints -eq 0 ]; echo $?)" "each refusal names a current region to read from, or says to retry"

# Recent first: a message eu-west writes while us-east takes its backlog
# reaches us-east before the backlog does. Its stream brings it only after
# the whole backlog (commit order): what brings it first is the relay
# following eu-west itself.
wait_until "$(mesh_instance us-east)" "$MESH_DB" \
  "SELECT count(*) = $expected FROM chat.messages WHERE conversation_id = $conversation" 60 ||
  bail "us-east did not catch up with the first backlog"
instance_stop "$(mesh_instance us-east)"
for i in $(seq 1 80); do
  mesh_sql eu-west -c "INSERT INTO chat.messages (conversation_id, sender, body)
                       SELECT 8, 'eu', 'second backlog $i.' || g FROM generate_series(1, 1000) g" >/dev/null ||
    bail "could not write the second backlog"
done
instance_start "$(mesh_instance us-east)" || bail "us-east did not start"
restarted=$(now)
following=""
for _ in $(seq 1 600); do
  following=$(mesh_sql us-east -At -c "SELECT 1 FROM pg_stat_activity WHERE backend_type = 'pg_causal relay'
                                         AND query LIKE '%following a peer whose backlog arrives%'" 2>/dev/null)
  [ -n "$following" ] && break
  sleep 0.05
done
diag "following $(since "$restarted") s after the restart, holding $(mesh_sql us-east -At -c "SELECT count(*) FROM chat.messages WHERE conversation_id = 8") of them"
ok "$([ -n "$following" ]; echo $?)" "restarted behind a backlog of 80,000 messages, us-east's relay follows eu-west"
marker=$(mesh_sql eu-west -At -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (9, 'eu', 'now')
                                  RETURNING msg_id") || bail "could not write the marker"
arrived=""
for _ in $(seq 1 600); do
  arrived=$(mesh_sql us-east -At -c "SELECT (SELECT count(*) FROM chat.messages WHERE conversation_id = 8)
                                      FROM chat.messages WHERE msg_id = '$marker'" 2>/dev/null)
  [ -n "$arrived" ] && break
  sleep 0.05
done
diag "the marker reached us-east $(since "$restarted") s after the restart, when it held ${arrived:-(never)} of the 80000"
diag "us-east held $(mesh_sql us-east -At -c "SELECT count(*) FROM chat.messages WHERE conversation_id = 8") of them $(since "$restarted") s after the restart"
ok "$([ -n "$arrived" ] && [ "$arrived" -lt 80000 ]; echo $?)" \
   "a message eu-west writes then reaches us-east before the backlog has (${arrived:-never} of 80000)"

# A region cut off from a peer (its stream silent, past the start's grace)
# still answers: waiting would not end; the relay brings what others hold.
wan cut "$(wan_link eu-west us-east)" >/dev/null
wan cut "$(wan_link eu-west ap-south)" >/dev/null
sleep 4
a=$(answer history)
ok "$([ "$a" = complete ]; echo $?)" "with eu-west's links cut, us-east still answers ($a)"
wan heal "$(wan_link eu-west us-east)" >/dev/null
wan heal "$(wan_link eu-west ap-south)" >/dev/null

done_testing
