#!/usr/bin/env bash
# Five regions, 20 links through the WAN proxy (5 ms each way). causalctl
# builds the mesh and reports every link streaming; every region writes into
# one conversation, some messages replying to what the region has seen from
# the others; every region ends with all of them, causalctl verify finds them
# converged, and causal.merge presents the same order in all five.
source "$(dirname "$0")/../lib/cluster-test.sh"

regions=(us-east eu-west ap-south sa-east me-central)
conversation=500
mesh_up five 24900 5 "${regions[@]}"
built=$?
ok $built "mesh_up builds a mesh of five regions through causalctl init"
[ $built = 0 ] || bail "could not build the mesh of five"

# The apply workers run (mesh_up waited for them); the walsenders' side of
# each link may take a moment more.
status_rc=1
for _ in $(seq 1 40); do
  causalctl_mesh status >/dev/null 2>&1 && { status_rc=0; break; }
  sleep 0.25
done
ok "$status_rc" "causalctl status exits 0: every link streaming, no warning"
[ "$status_rc" = 0 ] || diag "$(causalctl_mesh status 2>&1)"
status_json=$(causalctl_mesh status --json)
is "$(grep -o '"state": "streaming"' <<<"$status_json" | wc -l)" 20 "status --json: 20 links, each streaming"
is "$(grep -o '"node_id": [0-9]*' <<<"$status_json" | sort -u | wc -l)" 5 "status --json: five regions, five distinct node ids"

everywhere() {  # everywhere SQL: until the query is true in every region
  local r rc=0
  for r in "${regions[@]}"; do
    wait_until "$(mesh_instance "$r")" "$MESH_DB" "$1" 30 || rc=1
  done
  return $rc
}

# Round 1: every region opens its own thread in the conversation, concurrently.
for r in "${regions[@]}"; do
  mesh_sql "$r" -c "INSERT INTO chat.messages (conversation_id, sender, body)
                    VALUES ($conversation, '$r', 'hello from $r')" >/dev/null || bail "could not write in $r"
done
everywhere "SELECT count(*) = 5 FROM chat.messages WHERE conversation_id = $conversation"
ok $? "round 1: all five regions hold each region's first message"

# Round 2: each region replies to the previous region's message, which it
# has seen: deps = ARRAY[its hlc].
n=${#regions[@]}
for i in "${!regions[@]}"; do
  r=${regions[$i]} prev=${regions[$(((i + n - 1) % n))]}
  mesh_sql "$r" -c "INSERT INTO chat.messages (conversation_id, sender, body, deps)
                    SELECT $conversation, '$r', 'reply from $r to $prev', ARRAY[hlc]
                      FROM chat.messages WHERE body = 'hello from $prev'" >/dev/null || bail "could not reply in $r"
done
# Round 3: one region answers a reply written elsewhere, and another the
# answer: a chain across three regions.
mesh_sql ap-south -c "INSERT INTO chat.messages (conversation_id, sender, body, deps)
                      SELECT $conversation, 'ap-south', 'answer in ap-south', ARRAY[hlc]
                        FROM chat.messages WHERE body = 'reply from us-east to me-central'" >/dev/null ||
  bail "could not answer in ap-south"
wait_until "$(mesh_instance me-central)" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body = 'answer in ap-south'" 30 ||
  bail "the answer did not reach me-central"
mesh_sql me-central -c "INSERT INTO chat.messages (conversation_id, sender, body, deps)
                        SELECT $conversation, 'me-central', 'answer in me-central', ARRAY[hlc]
                          FROM chat.messages WHERE body = 'answer in ap-south'" >/dev/null ||
  bail "could not answer in me-central"

total=12
everywhere "SELECT count(*) = $total AND count(DISTINCT msg_id) = $total FROM chat.messages WHERE conversation_id = $conversation"
ok $? "every region ends with all $total messages, each once"
for r in "${regions[@]}"; do
  is "$(mesh_sql "$r" -At -c "SELECT count(*) FILTER (WHERE cardinality(deps) = 1) || ' replies, ' ||
                                     count(DISTINCT crdb_region) || ' writers'
                                FROM chat.messages WHERE conversation_id = $conversation")" "7 replies, 5 writers" \
    "$r holds the 7 replies and messages of all five writers"
done

out=$(causalctl_mesh verify --wait 20 2>&1)
ok $? "causalctl verify --wait 20: the five regions converge"
diag "$out"

history="causal.unnest((SELECT causal.merge(msg_id, hlc, deps, crdb_region, epoch, copies)
                          FROM chat.messages WHERE conversation_id = $conversation))"
order=$(mesh_sql us-east -At -c "SELECT string_agg(h.msg_id::text, ',' ORDER BY h.position) FROM $history h")
is "$(tr ',' '\n' <<<"$order" | sort -u | wc -l)" "$total" "the merged history of us-east has the $total messages"
for r in "${regions[@]:1}"; do
  is "$(mesh_sql "$r" -At -c "SELECT string_agg(h.msg_id::text, ',' ORDER BY h.position) FROM $history h")" "$order" \
    "$r presents the same merged order as us-east"
done
# The order is causal: every reply comes after the message it names, and
# everything is delivered (no dep missing).
is "$(mesh_sql sa-east -At -c "WITH h AS (SELECT * FROM $history)
  SELECT count(*) FILTER (WHERE p.position < c.position) || '/' || count(*) || ' ' ||
         (SELECT bool_and(delivered) FROM h)
    FROM chat.messages m JOIN h c ON c.msg_id = m.msg_id
    JOIN chat.messages pm ON pm.hlc OPERATOR(pg_catalog.=) ANY (m.deps) JOIN h p ON p.msg_id = pm.msg_id
   WHERE m.conversation_id = $conversation")" "7/7 true" \
  "in the merged order each of the 7 replies follows its dep, and all are delivered"

done_testing
