-- causal.history(NULL::table, conversation): a conversation as a client
-- opens it. Whatever path it takes (rows straight from the index while they
-- are plain, the merge once one is not, SPI under row-level security), it
-- answers what catch_up answers, joined to the rows, held messages left out.
BEGIN;
SET LOCAL search_path = public, causal;
SET LOCAL client_min_messages = warning;
SELECT plan(15);

CREATE SCHEMA tap_history;
CREATE TABLE tap_history.chat (conversation_id bigint, sender text, body text);
SELECT causal.enable('tap_history.chat', 'conversation_id');

-- as another region's row arrives
CREATE FUNCTION pg_temp.arrive(conv bigint, id uuid, h causal.hlc, region text, body text,
                               deps causal.hlc[] DEFAULT '{}', epoch bigint DEFAULT 0) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  SET LOCAL session_replication_role = replica;
  INSERT INTO tap_history.chat (msg_id, conversation_id, sender, body, hlc, deps, crdb_region, epoch)
  VALUES (id, conv, region, body, h, deps, region, epoch);
  SET LOCAL session_replication_role = origin;
END $$;
CREATE FUNCTION pg_temp.at(ms bigint, node int) RETURNS causal.hlc LANGUAGE sql AS
  'SELECT causal.hlc_from_parts((extract(epoch FROM now()) * 1000)::bigint - 60000 + ms, 0, node)';
-- what history must answer: catch_up's delivered messages, joined to their rows
CREATE FUNCTION pg_temp.expected(conv bigint) RETURNS SETOF tap_history.chat LANGUAGE sql AS $$
  SELECT m.* FROM causal.catch_up('tap_history.chat', conv::text, '{}') c
    JOIN tap_history.chat m ON m.msg_id = c.msg_id
   WHERE c.delivered ORDER BY c.position
$$;
CREATE FUNCTION pg_temp.bodies(conv bigint) RETURNS text LANGUAGE sql AS
  $$SELECT string_agg(body, ', ') FROM causal.history(NULL::tap_history.chat, conv::text)$$;

-- ==== plain: straight from the index =========================================
INSERT INTO tap_history.chat (conversation_id, sender, body) VALUES (1, 'ana', 'one');
INSERT INTO tap_history.chat (conversation_id, sender, body, deps)
     SELECT 1, 'bo', 'two', ARRAY[hlc] FROM tap_history.chat WHERE body = 'one';
INSERT INTO tap_history.chat (conversation_id, sender, body) VALUES (1, 'cy', 'three'), (2, 'di', 'elsewhere');
SELECT results_eq('SELECT * FROM causal.history(NULL::tap_history.chat, ''1'')', 'SELECT * FROM pg_temp.expected(1)',
                  'a plain conversation: every row, every column, as catch_up orders it');
SELECT is(pg_temp.bodies(1), 'one, two, three', 'in the order they were written; other conversations left out');
SELECT is((SELECT count(*) FROM causal.history(NULL::tap_history.chat, '3')), 0::bigint,
          'a conversation with no messages is empty');

-- ==== what the merge decides =================================================
SELECT pg_temp.arrive(10, '00000000-0000-7000-8000-0000000000c1', pg_temp.at(10, 2), 'test-west', 'first');
SELECT pg_temp.arrive(10, '00000000-0000-7000-8000-0000000000c2', pg_temp.at(20, 2), 'test-west', 'waits',
                      ARRAY[pg_temp.at(15, 3)]);
SELECT pg_temp.arrive(10, '00000000-0000-7000-8000-0000000000c3', pg_temp.at(30, 2), 'test-west', 'reply to waits',
                      ARRAY[pg_temp.at(20, 2)]);
SELECT pg_temp.arrive(10, '00000000-0000-7000-8000-0000000000c4', pg_temp.at(40, 2), 'test-west', 'last');
SELECT is(pg_temp.bodies(10), 'first, last', 'a message whose dep never arrived is held, and so are its replies');
SELECT results_eq('SELECT * FROM causal.history(NULL::tap_history.chat, ''10'')', 'SELECT * FROM pg_temp.expected(10)',
                  'held: as catch_up answers');
SELECT pg_temp.arrive(10, '00000000-0000-7000-8000-0000000000c5', pg_temp.at(15, 3), 'test-north', 'the missing dep');
SELECT is(pg_temp.bodies(10), 'first, the missing dep, waits, reply to waits, last', 'once it arrives, all are shown');

-- a message with two copies: the second region's retry
SELECT pg_temp.arrive(11, '00000000-0000-7000-8000-0000000000d1', pg_temp.at(10, 2), 'test-west', 'X');
SELECT pg_temp.arrive(11, '00000000-0000-7000-8000-0000000000d2', pg_temp.at(12, 3), 'test-north', 'Y');
SELECT pg_temp.arrive(11, '00000000-0000-7000-8000-0000000000d1', pg_temp.at(14, 3), 'test-north', 'X');
SELECT pg_temp.arrive(11, '00000000-0000-7000-8000-0000000000d3', pg_temp.at(16, 3), 'test-north', 'reply to X''s retry',
                      ARRAY[pg_temp.at(14, 3)]);
SELECT results_eq('SELECT * FROM causal.history(NULL::tap_history.chat, ''11'')', 'SELECT * FROM pg_temp.expected(11)',
                  'copies: as catch_up answers');
SELECT is(pg_temp.bodies(11), 'X, Y, reply to X''s retry', 'a reply to a later copy''s hlc is delivered');
-- the first copy's region fenced before it: the retry is shown, after Y
SELECT causal.register_region('test-west', 2);
INSERT INTO causal.fences (region, epoch, fenced_at) VALUES ('test-west', 0, pg_temp.at(5, 9));
SELECT is(pg_temp.bodies(11), 'Y, X, reply to X''s retry', 'fenced, the active region''s copy is shown, at its hlc');
SELECT results_eq('SELECT * FROM causal.history(NULL::tap_history.chat, ''10'')', 'SELECT * FROM pg_temp.expected(10)',
                  'orphans: as catch_up answers');
SELECT is(pg_temp.bodies(10), 'the missing dep, first, waits, reply to waits, last',
          'a fenced region''s writes (orphans) are shown after the others, in their own causal order');
DELETE FROM causal.fences;

-- a column added with a default after rows were written: they show it
ALTER TABLE tap_history.chat ADD COLUMN edited boolean NOT NULL DEFAULT false;
SELECT is((SELECT string_agg(edited::text, ',') FROM causal.history(NULL::tap_history.chat, '1')), 'false,false,false',
          'rows older than an added column show its default');

-- ==== who may read what ======================================================
CREATE ROLE tap_history_reader;
GRANT USAGE ON SCHEMA tap_history, tap_helpers TO tap_history_reader;
GRANT SELECT ON tap_history.chat TO tap_history_reader;
ALTER TABLE tap_history.chat ENABLE ROW LEVEL SECURITY;
CREATE POLICY not_bo ON tap_history.chat FOR SELECT USING (sender <> 'bo');
SET LOCAL ROLE tap_history_reader;
SELECT is(pg_temp.bodies(1), 'one, three', 'row-level security applies: the policy''s rows only');
RESET ROLE;
CREATE TABLE tap_history.secret (conversation_id bigint, body text);
SELECT causal.enable('tap_history.secret', 'conversation_id');
SET LOCAL ROLE tap_history_reader;
SELECT is((tap_helpers.error_of($$SELECT * FROM causal.history(NULL::tap_history.secret, '1')$$)).state, '42501',
          'without SELECT on the table: 42501');
RESET ROLE;

-- ==== bad calls ==============================================================
CREATE TABLE tap_history.plain (conversation_id bigint, body text);
SELECT results_eq($$SELECT state FROM tap_helpers.error_of('SELECT causal.history(NULL::tap_history.plain, ''1'')')
                   UNION ALL SELECT state FROM tap_helpers.error_of('SELECT causal.history(NULL::int, ''1'')')
                   UNION ALL SELECT state FROM tap_helpers.error_of('SELECT causal.history(NULL::tap_history.chat, NULL)')
                   UNION ALL SELECT state FROM tap_helpers.error_of('SELECT causal.history(NULL::tap_history.chat, ''x'')')$$,
                  $$VALUES ('55000'), ('42809'), ('22004'), ('22P02')$$,
                  'not a message table 55000, not a table''s row type 42809, no conversation 22004, a bad key 22P02');

SELECT * FROM finish();
ROLLBACK;
