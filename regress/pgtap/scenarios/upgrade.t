#!/usr/bin/env bash
# ALTER EXTENSION pg_causal UPDATE from 0.2.0 (its install script as it
# shipped, sql/updates/) on a database that version made: message tables with
# rows, a deleted message, a fence, a quarantined row, an index on an hlc
# column. After the update every hlc value and index is as it was on disk,
# the rows, fences and quarantine are there, and the tables work as 0.3.0's.
# The server runs this build's library throughout: 0.2.0's SQL names only
# functions it still has.
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/cluster.sh
trap 'instance_stop upgrade >/dev/null 2>&1' EXIT
{ instance_init upgrade 24329 3 up-east && instance_start upgrade; } >/dev/null 2>&1 || bail "could not start an instance"
instance_psql upgrade -d postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || bail "could not make the 0.2.0 database"
SET client_min_messages = warning;
CREATE EXTENSION pgtap;
CREATE EXTENSION amcheck;
CREATE EXTENSION pg_causal VERSION '0.2.0';
SELECT causal.register_region('up-east', 3);
SELECT causal.register_region('up-west', 4);
CREATE SCHEMA chat;
CREATE TABLE chat.messages (conversation_id bigint, sender text, body text);
SELECT causal.enable('chat.messages', 'conversation_id');
INSERT INTO chat.messages (conversation_id, sender, body)
SELECT g % 5, 'ana', 'message ' || g FROM generate_series(1, 500) g;
DELETE FROM chat.messages WHERE body = 'message 7';
CREATE TABLE chat.clock (id int PRIMARY KEY, h causal.hlc);
INSERT INTO chat.clock SELECT g, causal.hlc_from_parts(1700000000000 + g, g % 3, 3) FROM generate_series(1, 1000) g;
CREATE INDEX clock_h ON chat.clock (h);
-- a fence, and a row the apply path quarantines (a dep newer than itself)
SELECT causal.fence_region('up-west', 1);
SET session_replication_role = replica;
INSERT INTO chat.messages (conversation_id, body, msg_id, hlc, deps, crdb_region, epoch)
VALUES (9, 'malformed', gen_random_uuid(), causal.hlc_from_parts(1700000000000, 0, 4),
        ARRAY[causal.hlc_from_parts(1700000000500, 0, 4)], 'up-west', 0);
RESET session_replication_role;
SQL
# Every message, hlc value, fence and quarantined row, and which file holds
# each table and index: read before the update and after it.
state() {
  instance_psql upgrade -d postgres -At <<'SQL'
SELECT concat_ws(' ',
  (SELECT md5(string_agg(concat_ws(' ', msg_id, hlc, deps, crdb_region, epoch, deleted_at, body), ',' ORDER BY msg_id))
     FROM chat.messages),
  (SELECT md5(string_agg(h::text, ',' ORDER BY id)) FROM chat.clock),
  (SELECT string_agg(c.relname || ':' || c.relfilenode, ',' ORDER BY c.relname) FROM pg_class c
    WHERE c.relnamespace = 'chat'::regnamespace AND c.relkind IN ('r', 'i')),
  (SELECT md5(string_agg(concat_ws(' ', region, epoch, fenced_at, lifted_at), ',' ORDER BY region, epoch)) FROM causal.fences),
  (SELECT count(*) FROM causal.quarantine));
SQL
}
before=$(state) || bail "could not read the 0.2.0 state"
[ "${before##* }" -gt 0 ] || bail "the 0.2.0 database has no quarantined row to carry over"
instance_psql upgrade -d postgres -v ON_ERROR_STOP=1 -c 'ALTER EXTENSION pg_causal UPDATE' >/dev/null ||
  bail "ALTER EXTENSION pg_causal UPDATE failed"
after=$(state) || bail "could not read the updated state"
meta_version=$(sed -n 's/^ *"version": "\([0-9.]*\)",$/\1/p' META.json | head -n 1)
tap_sql upgrade postgres regress/pgtap/scenarios/upgrade.sql -v before="$before" -v after="$after" \
  -v meta_version="$meta_version"
