-- Causal message tables: what a DBA sees of causal.enable(), the stamped
-- rows, the errors of the local path, causal.disable(). Only stable values
-- are shown: never a raw hlc or a generated uuid. This file changes the
-- region state of the instance (regions, fences) and removes it at the end.
SET search_path = public, causal;
\set SHOW_CONTEXT never

CREATE SCHEMA chat;
CREATE TABLE chat.messages (conversation_id bigint, sender text, body text);
SELECT causal.enable('chat.messages', conversation => 'conversation_id');
\d+ chat.messages
-- idempotent
SELECT causal.enable('chat.messages', conversation => 'conversation_id');
SELECT count(*) AS causal_triggers FROM pg_trigger
 WHERE tgrelid = 'chat.messages'::regclass AND tgname = 'causal_message';
-- pg_causal's tables everywhere, heartbeats only this region's; a message
-- table's rows only where this region's own writes made them, and all of
-- them for a first copy
SELECT p.pubname, p.pubinsert, p.pubupdate, t.schemaname, t.tablename, t.rowfilter
  FROM pg_publication p JOIN pg_publication_tables t USING (pubname)
 WHERE p.pubname IN ('causal_mesh', 'causal_messages', 'causal_copy')
 ORDER BY p.pubname, t.schemaname, t.tablename;

-- the local path stamps hlc, crdb_region and epoch; written_by stays NULL:
-- the row's crdb_region wrote it, and publishes it
INSERT INTO chat.messages (conversation_id, sender, body)
VALUES (42, 'ana', 'Let''s meet')
RETURNING conversation_id, sender, body, msg_id IS NOT NULL AS has_msg_id, hlc IS NOT NULL AS has_hlc,
          causal.hlc_node(hlc) AS node, deps = '{}' AS no_deps, crdb_region, epoch, written_by;
-- a reply names what it answers; its hlc is above every dep
INSERT INTO chat.messages (conversation_id, sender, body, deps)
SELECT 42, 'bo', 'How about 3pm?', ARRAY[hlc] FROM chat.messages WHERE body = 'Let''s meet'
RETURNING sender, body, cardinality(deps) AS deps, hlc > deps[1] AS after_its_dep;
-- what the client sends for hlc, crdb_region, epoch and written_by is not trusted
INSERT INTO chat.messages (conversation_id, sender, body, hlc, crdb_region, epoch, written_by)
VALUES (42, 'eve', 'forged', '1.00000@9', 'mars', 0, 'mars')
RETURNING sender, hlc > '1.00000@9' AS restamped, causal.hlc_node(hlc) AS node, crdb_region, epoch, written_by;
SELECT sender, body, crdb_region, epoch FROM chat.messages WHERE conversation_id = 42 ORDER BY hlc;

-- a retried send: one message, and the original hlc in one round trip
INSERT INTO chat.messages (conversation_id, sender, body, msg_id)
VALUES (43, 'ana', 'once', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
INSERT INTO chat.messages (conversation_id, sender, body, msg_id)
VALUES (43, 'ana', 'once', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
INSERT INTO chat.messages (conversation_id, sender, body, msg_id)
VALUES (43, 'ana', 'once', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')
ON CONFLICT (msg_id) DO NOTHING;
SELECT hlc AS original FROM chat.messages WHERE msg_id = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' \gset
INSERT INTO chat.messages (conversation_id, sender, body, msg_id)
VALUES (43, 'ana', 'once', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')
ON CONFLICT (msg_id) DO UPDATE SET msg_id = EXCLUDED.msg_id
RETURNING hlc = :'original' AS original_hlc;
SELECT count(*) FROM chat.messages WHERE msg_id = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';

-- messages are append-only
UPDATE chat.messages SET body = 'Let''s meet at 3' WHERE body = 'Let''s meet';
-- an UPDATE that changes nothing goes through (RETURNING works); other regions drop it
UPDATE chat.messages SET body = body WHERE body = 'Let''s meet' RETURNING body;

-- limits, by SQLSTATE
\set VERBOSITY sqlstate
INSERT INTO chat.messages (conversation_id, sender, body, deps)
SELECT 42, 'ana', 'too many', array_fill(hlc, ARRAY[129]) FROM chat.messages WHERE body = 'once';
INSERT INTO chat.messages (conversation_id, sender, body, deps)
SELECT 42, 'ana', 'null dep', ARRAY[hlc, NULL] FROM chat.messages WHERE body = 'once';
INSERT INTO chat.messages (conversation_id, sender, body, deps)
VALUES (42, 'ana', 'from the future',
        ARRAY[causal.hlc_from_parts((extract(epoch FROM clock_timestamp()) * 1000)::bigint + 60000, 0, 2)]);
INSERT INTO chat.messages (conversation_id, sender, body) VALUES (NULL, 'ana', 'nowhere');
UPDATE chat.messages SET hlc = causal.hlc_now() WHERE body = 'Let''s meet';
SELECT causal.enable('chat.nope', 'conversation_id');
SELECT causal.enable('chat.messages', 'nope');
\set VERBOSITY default
-- and by message
INSERT INTO chat.messages (conversation_id, sender, body, deps)
SELECT 42, 'ana', 'too many', array_fill(hlc, ARRAY[129]) FROM chat.messages WHERE body = 'once';
INSERT INTO chat.messages (conversation_id, sender, body, deps)
SELECT 42, 'ana', 'null dep', ARRAY[hlc, NULL] FROM chat.messages WHERE body = 'once';
INSERT INTO chat.messages (conversation_id, sender, body) VALUES (NULL, 'ana', 'nowhere');
CREATE TABLE chat.places (conversation_id point, body text);
SELECT causal.enable('chat.places', 'conversation_id');
CREATE TABLE chat.by_month (conversation_id bigint, sent date) PARTITION BY RANGE (sent);
SELECT causal.enable('chat.by_month', 'conversation_id');

-- the epoch fence
SELECT region, node_id, epoch, state, fenced_at IS NOT NULL AS fenced
  FROM causal.fence_region('test-east', 1);
SELECT region, epoch, fenced_at IS NOT NULL AS has_fenced_at FROM causal.fences;
INSERT INTO chat.messages (conversation_id, sender, body) VALUES (42, 'ana', 'while fenced');
SELECT region, node_id, epoch, state FROM causal.register_region('test-west', 2);
INSERT INTO chat.messages (conversation_id, sender, body) VALUES (42, 'ana', 'while fenced');
SELECT causal.fence_region('test-east', 1);
SELECT region, node_id, epoch, state, fenced_at IS NOT NULL AS fenced
  FROM causal.unfence_region('test-east', 2);
INSERT INTO chat.messages (conversation_id, sender, body, epoch) VALUES (42, 'ana', 'stale', 1);
INSERT INTO chat.messages (conversation_id, sender, body, epoch) VALUES (42, 'ana', 'current', 2)
RETURNING sender, body, crdb_region, epoch;
INSERT INTO chat.messages (conversation_id, sender, body) VALUES (42, 'ana', 'no epoch')
RETURNING sender, body, crdb_region, epoch;
SELECT body, epoch, causal.is_orphan(crdb_region, epoch, hlc) AS orphan
  FROM chat.messages WHERE conversation_id = 42 ORDER BY hlc;
SELECT region, node_id, epoch, state, fenced_at IS NOT NULL AS fenced FROM causal.regions ORDER BY region;

-- the counters
SELECT relid, local_inserts > 0 AS counts_local_inserts, applied, duplicates, winners_replaced, orphans,
       quarantined, offset_rejections
  FROM causal.stat_tables WHERE relid = 'chat.messages'::regclass;

-- DELETE leaves a tombstone: the stamp stays, the body goes, deleted_at is set
SELECT msg_id AS deleted_id, hlc AS deleted_hlc FROM chat.messages WHERE body = 'current' \gset
DELETE FROM chat.messages WHERE body = 'current' RETURNING sender, body;
SELECT sender, body, hlc = :'deleted_hlc' AS same_hlc, deleted_at > hlc AS deleted_after, written_by
  FROM chat.messages WHERE msg_id = :'deleted_id';
-- deleting a tombstone changes nothing; a retry of the message brings nothing back
DELETE FROM chat.messages WHERE msg_id = :'deleted_id';
INSERT INTO chat.messages (msg_id, conversation_id, body) VALUES (:'deleted_id', 42, 'again')
ON CONFLICT (msg_id) DO UPDATE SET msg_id = EXCLUDED.msg_id RETURNING body, hlc = :'deleted_hlc' AS same_hlc;
-- a tombstone cannot be changed back
UPDATE chat.messages SET deleted_at = NULL WHERE msg_id = :'deleted_id';
-- a DELETE replicated by a publication made by hand is not applied
SET session_replication_role = replica;
DELETE FROM chat.messages WHERE sender = 'ana' AND body = 'no epoch';
RESET session_replication_role;
SELECT count(*) AS still_there FROM chat.messages WHERE body = 'no epoch';
-- a tombstone keeps the stamp and takes every other column's default: a
-- NOT NULL column without one keeps a message from being deleted
ALTER TABLE chat.messages ADD COLUMN mood text NOT NULL DEFAULT 'fine';
ALTER TABLE chat.messages ALTER COLUMN mood DROP DEFAULT;
DELETE FROM chat.messages WHERE body = 'no epoch';
ALTER TABLE chat.messages DROP COLUMN mood;
-- TRUNCATE would wipe every region
TRUNCATE chat.messages;
SELECT pubname, pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication
 WHERE pubname IN ('causal_mesh', 'causal_messages', 'causal_copy') ORDER BY pubname;

-- what pg_causal knows of its message tables
SELECT relid, conversation, notify, sqlstate, problem FROM causal.message_tables();
CREATE TABLE chat.family (conversation_id bigint, body text);
CREATE TABLE chat.family_child () INHERITS (chat.family);
SELECT causal.enable('chat.family', 'conversation_id');
SELECT causal.enable('pg_catalog.pg_class', 'relname');
SELECT causal.disable('chat.family');

-- the shape of a message table, asked of anything
SELECT * FROM causal.message_table_problem('chat.messages', 'conversation_id');
SELECT * FROM causal.message_table_problem('chat.messages', 'no_such_column');
SELECT * FROM causal.message_table_problem('chat.messages', NULL);
SELECT * FROM causal.message_table_problem(NULL, 'conversation_id');
SELECT sqlstate, problem FROM causal.message_table_problem(0, 'conversation_id');
SELECT sqlstate, problem FROM causal.message_table_problem('pg_class', 'relname');
SELECT sqlstate, problem FROM causal.unfit_table('pg_class_oid_index');
SELECT sqlstate, problem FROM causal.unfit_table('causal.quarantine_id_seq');
SELECT sqlstate, problem FROM causal.unfit_table('causal.stat_tables');
SELECT sqlstate, problem FROM causal.unfit_table('chat.family');
SELECT name, type, not_null, default_sql FROM causal.message_columns();

-- DROP EXTENSION ... CASCADE would drop every message's hlc and deps
DROP EXTENSION pg_causal CASCADE;

-- disable: the triggers and the publication go, the data stays
SELECT causal.disable('chat.messages');
\d chat.messages
SELECT count(*) AS messages FROM chat.messages;
SELECT count(*) AS in_mesh FROM pg_publication_tables WHERE tablename = 'messages';

-- clean up what this file created
DROP SCHEMA chat CASCADE;
DELETE FROM causal.fences WHERE region IN ('test-east', 'test-west');
DELETE FROM causal.regions WHERE region IN ('test-east', 'test-west');
