#!/usr/bin/env bash
# Three regions joined by real logical replication, full mesh, every region
# publishing what it wrote: rows arrive once, none comes back, a msg_id retried in
# two regions converges, a malformed row is quarantined while replication
# goes on, a partitioned region's writes come back as orphans everywhere, and
# the apply path notifies listeners.
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/cluster.sh
regions=(east west south)
[ -n "${KEEP_INSTANCES:-}" ] || trap 'for r in "${regions[@]}"; do instance_stop "mesh-$r" >/dev/null 2>&1; done' EXIT

port=24330 node=1
for r in "${regions[@]}"; do
  { instance_init "mesh-$r" "$port" "$node" "$r" && instance_start "mesh-$r"; } >/dev/null 2>&1 ||
    bail "could not start region $r"
  instance_psql "mesh-$r" -d postgres >/dev/null <<'SQL' || bail "could not set up region $r"
SET client_min_messages = warning;
CREATE EXTENSION pgtap;
CREATE EXTENSION pg_causal;
CREATE EXTENSION dblink;
CREATE SCHEMA chat;
CREATE TABLE chat.messages (conversation_id bigint, sender text, body text);
SELECT causal.enable('chat.messages', conversation => 'conversation_id', notify => true);
SQL
  port=$((port + 1)) node=$((node + 1))
done
mesh=(mesh-east mesh-west mesh-south)
mesh_full postgres "${mesh[@]}" || bail "could not build the mesh"
for m in "${mesh[@]}"; do
  wait_until "$m" postgres "SELECT count(*) = 2 FROM pg_stat_subscription WHERE pid IS NOT NULL" ||
    bail "the apply workers of $m did not start"
done

in_region() { local r=$1; shift; instance_psql "mesh-$r" -d postgres "$@"; }
everywhere() {  # everywhere SQL: waits until the query is true in every region
  local m; for m in "${mesh[@]}"; do wait_until "$m" postgres "$1" || return 1; done
}
subscriptions() {  # subscriptions REGION enable|disable [FROM]: its subscriptions (from one region)
  local r=$1 action=$2 from=${3:-} s
  for s in $(in_region "$r" -At -c "SELECT subname FROM pg_subscription WHERE subname LIKE 'causal_from_%${from}'"); do
    in_region "$r" -c "ALTER SUBSCRIPTION $s ${action^^}" >/dev/null
  done
  # a disabled subscription's worker stops a moment later
  wait_until "mesh-$r" postgres "SELECT count(*) = 0 FROM pg_stat_subscription s
    JOIN pg_subscription p ON p.oid = s.subid WHERE NOT p.subenabled AND s.pid IS NOT NULL"
}

# Regions registered in one region reach the others like any row.
in_region east -c "SELECT causal.register_region('east', 1), causal.register_region('west', 2),
                          causal.register_region('south', 3)" >/dev/null
everywhere "SELECT count(*) = 3 FROM causal.regions" || bail "causal.regions did not replicate"

# A conversation across the regions; each reply is sent after its parent arrived.
in_region east -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (42, 'ana', 'Let''s meet')" >/dev/null
everywhere "SELECT count(*) = 1 FROM chat.messages WHERE body = 'Let''s meet'" || bail "no delivery"
in_region west -c "INSERT INTO chat.messages (conversation_id, sender, body, deps)
                   SELECT 42, 'bo', 'How about 3pm?', ARRAY[hlc] FROM chat.messages WHERE body = 'Let''s meet'" >/dev/null
everywhere "SELECT count(*) = 1 FROM chat.messages WHERE body = 'How about 3pm?'" || bail "no delivery"
in_region south -c "INSERT INTO chat.messages (conversation_id, sender, body, deps)
                    SELECT 42, 'cy', 'Works for me', ARRAY[hlc] FROM chat.messages WHERE body = 'How about 3pm?'" >/dev/null
everywhere "SELECT count(*) = 3 FROM chat.messages" || bail "the conversation did not converge"

# One msg_id sent in two regions that cannot hear each other.
subscriptions east disable; subscriptions west disable
retried=$(in_region east -At -c "SELECT gen_random_uuid()")
in_region east -c "INSERT INTO chat.messages (msg_id, conversation_id, body) VALUES ('$retried', 42, 'sent to east')" >/dev/null
in_region west -c "INSERT INTO chat.messages (msg_id, conversation_id, body) VALUES ('$retried', 42, 'sent to west')" >/dev/null
winner=$(for r in east west; do in_region "$r" -At -c "SELECT hlc FROM chat.messages WHERE msg_id = '$retried'"; done |
         sort -t. -k1,1n -k2,2 | head -n 1)
subscriptions east enable; subscriptions west enable
everywhere "SELECT hlc::text = '$winner' FROM chat.messages WHERE msg_id = '$retried'" ||
  bail "the retried msg_id did not converge on one winner"

# A malformed row (a dep newer than the message) from east, then a good one.
in_region east >/dev/null <<'SQL'
ALTER TABLE chat.messages DISABLE TRIGGER causal_message;
INSERT INTO chat.messages (conversation_id, body, hlc, deps, crdb_region, epoch)
VALUES (42, 'malformed', causal.hlc_now(),
        ARRAY[causal.hlc_from_parts(causal.hlc_physical_ms(causal.hlc_now()) + 100, 0, 1)], 'east', 0);
ALTER TABLE chat.messages ENABLE ALWAYS TRIGGER causal_message;
INSERT INTO chat.messages (conversation_id, body) VALUES (42, 'after the malformed one');
-- east's operator takes it back (a superuser, around pg_causal's triggers:
-- a DELETE through them would leave a tombstone); the others never took it
ALTER TABLE chat.messages DISABLE TRIGGER USER;
DELETE FROM chat.messages WHERE body = 'malformed';
ALTER TABLE chat.messages ENABLE ALWAYS TRIGGER causal_message;
ALTER TABLE chat.messages ENABLE ALWAYS TRIGGER causal_message_stored;
ALTER TABLE chat.messages ENABLE ALWAYS TRIGGER causal_message_truncate;
SQL
everywhere "SELECT count(*) = 1 FROM chat.messages WHERE body = 'after the malformed one'" ||
  bail "replication stopped after the malformed row"

# Schema drift: west alone has a CHECK that a row from east breaks. The row
# is quarantined in west, stored in south, and replication goes on.
in_region west -c "ALTER TABLE chat.messages ADD CONSTRAINT short_bodies CHECK (length(body) < 100)" >/dev/null
in_region east -c "INSERT INTO chat.messages (conversation_id, body) VALUES (42, repeat('long ', 30))" >/dev/null
in_region east -c "INSERT INTO chat.messages (conversation_id, body) VALUES (42, 'after the long one')" >/dev/null
everywhere "SELECT count(*) = 1 FROM chat.messages WHERE body = 'after the long one'" ||
  bail "replication stopped at a row that breaks a constraint"
in_region west -c "ALTER TABLE chat.messages DROP CONSTRAINT short_bodies" >/dev/null

# south is cut off, fenced by east, and keeps writing; then the links heal.
subscriptions south disable; subscriptions east disable south; subscriptions west disable south
in_region east -c "SELECT causal.fence_region('south', 1)" >/dev/null
wait_until mesh-west postgres "SELECT state = 'fenced' FROM causal.regions WHERE region = 'south'" ||
  bail "the fence did not reach west"
in_region south -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (42, 'cy', 'split brain')" >/dev/null ||
  bail "south refused a write before it knew of its fence"
subscriptions south enable; subscriptions east enable south; subscriptions west enable south
everywhere "SELECT count(*) = 1 FROM chat.messages WHERE body = 'split brain'" || bail "the split-brain write was lost"
wait_until mesh-south postgres "SELECT state = 'fenced' FROM causal.regions WHERE region = 'south'" ||
  bail "the fence did not reach south"

# A bulk transaction: 10,000 messages in one commit, applied as one remote
# transaction by each region's apply workers.
in_region east -c "INSERT INTO chat.messages (conversation_id, body)
                   SELECT 900, 'bulk ' || g FROM generate_series(1, 10000) g" >/dev/null
everywhere "SELECT count(*) = 10000 FROM chat.messages WHERE conversation_id = 900" ||
  bail "the bulk transaction did not arrive everywhere"

# The apply path notifies listeners.
notified=$(instance_dir mesh-west)/notified.txt
in_region west -c 'LISTEN "chat.messages"' -c 'SELECT pg_sleep(3)' >"$notified" 2>&1 &
listener=$!
wait_until mesh-west postgres "SELECT EXISTS (SELECT FROM pg_stat_activity
                                WHERE query = 'SELECT pg_sleep(3)' AND state = 'active')" ||
  bail "the listener did not start listening"
in_region east -c "INSERT INTO chat.messages (conversation_id, body) VALUES (77, 'ping')" >/dev/null
wait "$listener"
everywhere "SELECT count(*) = 1 FROM chat.messages WHERE body = 'ping'" || bail "the ping did not arrive everywhere"

tap_sql mesh-east postgres regress/pgtap/scenarios/mesh_apply.sql \
  -v west="port=24331 dbname=postgres user=postgres host=127.0.0.1" \
  -v south="port=24332 dbname=postgres user=postgres host=127.0.0.1" \
  -v retried="$retried" -v winner="$winner" -v notified="$(cat "$notified")"
