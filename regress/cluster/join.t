#!/usr/bin/env bash
# A region joins a running mesh: `causalctl init` with one more region
# copies it everything it lacks, from every peer at once (a first copy reads
# every row the peer holds, whoever wrote it), and each message lands once;
# it publishes only what it writes itself, so none of what it copied goes
# back to the peers; then it writes and reads like the others.
source "$(dirname "$0")/../lib/cluster-test.sh"

plan 8
MESH_CONF=()
mesh_up join 25700 5 us-east eu-west ap-south || bail "could not build the mesh"
for r in us-east eu-west ap-south; do
  mesh_sql "$r" -c "INSERT INTO chat.messages (conversation_id, sender, body)
                    SELECT g % 7, '$r', 'before the join ' || g FROM generate_series(1, 200) g" >/dev/null
done
for r in us-east eu-west ap-south; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" "SELECT count(*) = 600 FROM chat.messages" ||
    bail "the mesh did not converge before the join"
done
before=$(mesh_sql us-east -At -c "SELECT duplicates FROM causal.stat_tables WHERE relid = 'chat.messages'::regclass")

mesh_add_region sa-east 25790
joined=$?
ok $joined "sa-east joined with causalctl init"
[ $joined = 0 ] || bail "sa-east could not join"
is "$(mesh_sql sa-east -At -c "SELECT count(*) || ' ' || count(DISTINCT msg_id) FROM chat.messages")" "600 600" \
   "it copied all 600 messages from its three peers, each once"
is "$(mesh_sql sa-east -At -c "SELECT applied FROM causal.stat_tables WHERE relid = 'chat.messages'::regclass")" 600 \
   "the apply path stored 600 and dropped the rest as copies it had"
mesh_sql sa-east -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (1, 'sa-east', 'hello from the new region')" >/dev/null
wait_until "$(mesh_instance us-east)" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE sender = 'sa-east'" 20
is "$(mesh_sql us-east -At -c "SELECT duplicates - $before FROM causal.stat_tables WHERE relid = 'chat.messages'::regclass")" 0 \
   "no copy of what sa-east copied comes back to us-east (sa-east publishes only what it writes)"
is "$(mesh_sql us-east -At -c "SELECT count(*) FROM chat.messages")" 601 "and us-east holds each message once"
for r in us-east eu-west ap-south; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE sender = 'sa-east'" 20 || break
done
ok $? "what the new region writes reaches every other"
is "$(mesh_sql sa-east -At -c "SELECT count(*) FROM pg_stat_subscription WHERE pid IS NOT NULL AND relid IS NULL")" 3 \
   "it subscribes to its three peers"
causalctl_mesh verify --wait 20 >/dev/null
ok $? "four regions converge"
done_testing
