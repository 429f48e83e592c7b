-- The apply path's two ways (extension/table/direct_store.hpp): a table whose
-- insert runs no code but PostgreSQL's own and cannot fail for one row takes
-- replicated rows directly, without a subtransaction or a second executor
-- run; any other table stores each row through the executor, as its
-- owner, in a subtransaction, where a row its own rules refuse is
-- quarantined. Rows come in as the
-- replication apply worker brings them (session_replication_role = replica).
BEGIN;
SET LOCAL search_path = public, causal;
SET LOCAL client_min_messages = warning;
SELECT plan(20);

CREATE SCHEMA tap_apply;
-- n rows of another region, stamped a minute ago; every msg_id `times` times,
-- each time with another hlc (a copy from another region)
CREATE FUNCTION pg_temp.arrive(target regclass, n int, times int DEFAULT 1, body text DEFAULT 'hello',
                               first int DEFAULT 1)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  SET LOCAL session_replication_role = replica;
  EXECUTE format($q$
    INSERT INTO %s (msg_id, conversation_id, sender, body, hlc, deps, crdb_region, epoch)
    SELECT ('00000000-0000-7000-8000-' || lpad(g::text, 12, '0'))::uuid, g %% 7, 'ana', $1,
           causal.hlc_from_parts((extract(epoch FROM now()) * 1000)::bigint - 60000 + g, c, 2 + c), '{}',
           'test-west', 0
      FROM generate_series($4, $4 + $2 - 1) g, generate_series(0, $3 - 1) c ORDER BY c, g$q$, target)
    USING body, n, times, first;
  SET LOCAL session_replication_role = origin;
END $$;

-- ==== a plain table takes rows directly ======================================
CREATE TABLE tap_apply.chat (conversation_id bigint, sender text NOT NULL DEFAULT '', body text);
SELECT causal.enable('tap_apply.chat', 'conversation_id');
SELECT pg_temp.arrive('tap_apply.chat', 300);
-- a row stored in a subtransaction has that subtransaction's xmin
SELECT is((SELECT count(DISTINCT xmin::text) FROM tap_apply.chat), 1::bigint,
          '300 replicated rows into a plain message table are stored by the statement itself, in no subtransaction');
SELECT is((SELECT count(*) FROM tap_apply.chat), 300::bigint, 'and every one is stored');

CREATE TABLE tap_apply.twice (conversation_id bigint, sender text, body text);
SELECT causal.enable('tap_apply.twice', 'conversation_id');
SELECT pg_temp.arrive('tap_apply.twice', 200, 2);
SELECT results_eq($$SELECT count(*), count(*) FILTER (WHERE cardinality(copies) = 1) FROM tap_apply.twice$$,
                  $$VALUES (200::bigint, 200::bigint)$$,
                  'a bulk bringing each of 200 msg_ids twice, past any per-transaction lock limit, stores each once with both copies');

-- The relay pages a peer's rows along their latest stamp: enable() indexes
-- it, and the index keeps the direct way open (the first check above).
SELECT isnt(causal.stamp_index('tap_apply.chat'), NULL,
            'enable() makes the index of latest stamps the relay pages along');
SELECT is((SELECT count(*) FROM tap_apply.twice
            WHERE causal.latest_stamp(hlc, deleted_at, copies)
                  IS DISTINCT FROM greatest(hlc, deleted_at, (SELECT max(c.hlc) FROM unnest(copies) c))),
          0::bigint, 'a row''s latest stamp is the greatest of its hlc, its tombstone''s and its copies''');

-- Held messages: a reply whose parent has not arrived. A peer not heard
-- from yet holds the stable point at zero, so every row is recent.
SELECT causal.register_region('test-west', 2) \g /dev/null
SET LOCAL session_replication_role = replica;
INSERT INTO tap_apply.chat (msg_id, conversation_id, sender, body, hlc, deps, crdb_region, epoch)
VALUES ('00000000-0000-7000-a000-000000000002', 5, 'bo', 'a reply before its parent',
        causal.hlc_from_parts((extract(epoch FROM now()) * 1000)::bigint - 30000, 0, 2),
        ARRAY[causal.hlc_from_parts((extract(epoch FROM now()) * 1000)::bigint - 40000, 0, 2)], 'test-west', 0);
SET LOCAL session_replication_role = origin;
SELECT results_eq($$SELECT held, oldest_seconds >= 30 FROM causal.held_messages() WHERE message_table = 'tap_apply.chat'::regclass$$,
                  $$VALUES (1::bigint, true)$$,
                  'a reply whose parent has not arrived is held: causal.held_messages() counts it, and how long ago it was written');
SELECT is((SELECT held FROM causal.held_messages() WHERE message_table = 'tap_apply.twice'::regclass), 0::bigint,
          'a table whose messages have what they depend on holds none');
SET LOCAL session_replication_role = replica;
INSERT INTO tap_apply.chat (msg_id, conversation_id, sender, body, hlc, deps, crdb_region, epoch)
VALUES ('00000000-0000-7000-a000-000000000001', 5, 'ana', 'the parent',
        (SELECT deps[1] FROM tap_apply.chat WHERE body = 'a reply before its parent'), '{}', 'test-west', 0);
SET LOCAL session_replication_role = origin;
SELECT results_eq($$SELECT held, oldest_seconds FROM causal.held_messages() WHERE message_table = 'tap_apply.chat'::regclass$$,
                  $$VALUES (0::bigint, NULL::float8)$$, 'once the parent arrives, nothing is held');
-- A table under row-level security for the caller is not read: its
-- policies would run as the caller (the exporter's login).
CREATE TABLE tap_apply.guarded (conversation_id bigint, sender text, body text);
SELECT causal.enable('tap_apply.guarded', 'conversation_id') \g /dev/null
ALTER TABLE tap_apply.guarded ENABLE ROW LEVEL SECURITY;
CREATE ROLE tap_held_reader;
GRANT USAGE ON SCHEMA tap_apply TO tap_held_reader;
GRANT SELECT ON tap_apply.guarded, tap_apply.chat TO tap_held_reader;
SET LOCAL ROLE tap_held_reader;
SELECT results_eq($$SELECT message_table::text FROM causal.held_messages() ORDER BY 1$$, $$VALUES ('tap_apply.chat')$$,
                  'held_messages() reads, of the tables the caller may, none whose row-level security applies to it');
RESET ROLE;

SET LOCAL session_replication_role = replica;
INSERT INTO tap_apply.chat (msg_id, conversation_id, sender, body, hlc, deps, crdb_region, epoch)
VALUES ('00000000-0000-7000-9000-000000000001', 1, NULL, 'no sender', causal.hlc_from_parts(1000, 0, 2), '{}',
        'test-west', 0);
SET LOCAL session_replication_role = origin;
SELECT is((SELECT count(*) FROM tap_apply.chat WHERE body = 'no sender'), 0::bigint,
          'a replicated row with NULL in a NOT NULL column is not stored');
SELECT is((SELECT reason FROM causal.quarantine WHERE row_data->>'body' = 'no sender'),
          'a NOT NULL column of this table is NULL in the row', 'it is quarantined, and the statement goes on');

-- ==== any other table stores each row in a subtransaction ====================
CREATE TABLE tap_apply.checked (conversation_id bigint, sender text, body text CHECK (body <> 'forbidden'));
SELECT causal.enable('tap_apply.checked', 'conversation_id');
SELECT pg_temp.arrive('tap_apply.checked', 3);
SELECT pg_temp.arrive('tap_apply.checked', 1, 1, 'forbidden', 100);
SELECT is((SELECT count(*) FROM tap_apply.checked), 3::bigint, 'a table with a CHECK constraint takes the rows it allows');
SELECT ok(EXISTS (SELECT FROM causal.quarantine WHERE table_name LIKE '%checked' AND reason LIKE '%check constraint%'),
          'and quarantines the one it refuses');

-- An index on a column of any length could refuse a value too large for it
-- here that the sending region never indexed.
CREATE TABLE tap_apply.indexed (conversation_id bigint, sender text, body text);
SELECT causal.enable('tap_apply.indexed', 'conversation_id');
CREATE INDEX ON tap_apply.indexed (body);
SELECT pg_temp.arrive('tap_apply.indexed', 1, 1, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 300) g));
SELECT is((SELECT count(*) FROM tap_apply.indexed), 0::bigint,
          'a body too large for a btree index on it is not stored');
SELECT ok(EXISTS (SELECT FROM causal.quarantine WHERE table_name LIKE '%indexed' AND reason LIKE '%index row%'),
          'it is quarantined rather than stopping replication');

-- A trigger the worker fires on UPDATE runs when the copy rule rewrites a
-- stored row: such a table takes the general way.
CREATE TABLE tap_apply.watched (conversation_id bigint, sender text, body text);
SELECT causal.enable('tap_apply.watched', 'conversation_id');
CREATE FUNCTION tap_apply.noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE TRIGGER on_update BEFORE UPDATE ON tap_apply.watched FOR EACH ROW EXECUTE FUNCTION tap_apply.noop();
ALTER TABLE tap_apply.watched ENABLE ALWAYS TRIGGER on_update;
SELECT pg_temp.arrive('tap_apply.watched', 3);
SELECT is((SELECT count(DISTINCT xmin::text) FROM tap_apply.watched), 3::bigint,
          'a table with an ALWAYS trigger on UPDATE stores each row in a subtransaction of its own');

-- ==== the owner's rights do not decide ========================================
-- pg_causal stores a replicated row as the table's owner (its code runs with
-- the owner's rights) but below SQL, as PostgreSQL's apply worker does: no
-- privilege check, no row-level security. An owner that took its own UPDATE
-- away, or put itself under its own policies, still gets every copy.
CREATE ROLE tap_apply_owner;
GRANT USAGE, CREATE ON SCHEMA tap_apply TO tap_apply_owner;
CREATE TABLE tap_apply.owned (conversation_id bigint, sender text, body text);
ALTER TABLE tap_apply.owned OWNER TO tap_apply_owner;
SELECT causal.enable('tap_apply.owned', 'conversation_id');
SELECT pg_temp.arrive('tap_apply.owned', 2);
REVOKE UPDATE ON tap_apply.owned FROM tap_apply_owner;
SELECT lives_ok($$SELECT pg_temp.arrive('tap_apply.owned', 2, 2)$$,
                'a second copy for a table whose owner may not UPDATE it does not raise');
SELECT results_eq($$SELECT count(*) FILTER (WHERE cardinality(copies) = 1),
                           (SELECT count(*) FROM causal.quarantine WHERE table_name LIKE '%owned')
                      FROM tap_apply.owned$$,
                  $$VALUES (2::bigint, 0::bigint)$$, 'both copies join their rows, none is quarantined');
GRANT UPDATE ON tap_apply.owned TO tap_apply_owner;
ALTER TABLE tap_apply.owned ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY only_reads ON tap_apply.owned FOR SELECT USING (true);
SELECT lives_ok($$SELECT pg_temp.arrive('tap_apply.owned', 2, 3)$$,
                'a third copy for a table whose owner''s own policies refuse the UPDATE does not raise');
SELECT results_eq($$SELECT count(*) FILTER (WHERE cardinality(copies) = 2),
                           (SELECT count(*) FROM causal.quarantine WHERE table_name LIKE '%owned')
                      FROM tap_apply.owned$$,
                  $$VALUES (2::bigint, 0::bigint)$$, 'and so do the third ones');

SELECT * FROM finish();
ROLLBACK;
