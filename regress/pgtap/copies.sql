-- One message, several copies (src/core/copies.hpp), on one instance: rows
-- come in as the replication apply worker brings them, with
-- session_replication_role = replica. Every hlc a message was given keeps
-- naming it; the merge presents the copy no fence makes an orphan; a client
-- catches up from a cursor; a populated table is enabled alike everywhere.
BEGIN;
-- operators live in schema causal, like every object of the extension
SET LOCAL search_path = public, causal;
SET LOCAL client_min_messages = warning;
SELECT plan(34);

CREATE SCHEMA tap_copies;
CREATE TABLE tap_copies.chat (conversation_id bigint, sender text, body text);
SELECT causal.enable('tap_copies.chat', 'conversation_id');

-- ==== enable() records what it stamped in place ================================
-- (one region so far: a populated table may be enabled without key and sent_at)
CREATE TABLE tap_copies.in_place (conversation_id bigint, body text);
INSERT INTO tap_copies.in_place VALUES (1, 'hi'), (1, 'hi'), (2, 'bye');
SELECT causal.enable('tap_copies.in_place', 'conversation_id');  -- WARNING: stamped in this region alone
SELECT is((SELECT region FROM causal.stamped_in_place WHERE message_table = 'tap_copies.in_place'::regclass),
          current_setting('causal.region'), 'a populated table enabled without key and sent_at: recorded, with its region');
SELECT ok((SELECT bool_and(m.hlc <= s.stamped_through AND m.crdb_region = s.region)
             FROM tap_copies.in_place m, causal.stamped_in_place s
            WHERE s.message_table = 'tap_copies.in_place'::regclass),
          'every row it stamped lies at or below the recorded hlc (causalctl verify looks for twins there)');
SELECT is((SELECT count(*) FROM causal.stamped_in_place WHERE message_table = 'tap_copies.chat'::regclass), 0::bigint,
          'an empty table enabled: nothing recorded');

-- as another region's row arrives
CREATE FUNCTION pg_temp.arrive(id uuid, h causal.hlc, region text, body text, deps causal.hlc[] DEFAULT '{}',
                               epoch bigint DEFAULT 0) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  SET LOCAL session_replication_role = replica;
  INSERT INTO tap_copies.chat (msg_id, conversation_id, sender, body, hlc, deps, crdb_region, epoch)
  VALUES (id, 1, region, body, h, deps, region, epoch);
  SET LOCAL session_replication_role = origin;
END $$;
CREATE FUNCTION pg_temp.history(conv bigint DEFAULT 1) RETURNS TABLE (body text, hlc causal.hlc, delivered bool, orphan bool)
LANGUAGE sql AS $$
  SELECT m.body, h.hlc, h.delivered, h.orphan
    FROM (SELECT causal.merge(msg_id, hlc, deps, crdb_region, epoch, copies) g FROM tap_copies.chat
           WHERE conversation_id = conv) c, causal.unnest(c.g) h JOIN tap_copies.chat m USING (msg_id)
   ORDER BY h.position
$$;
CREATE FUNCTION pg_temp.at(ms bigint, node int) RETURNS causal.hlc LANGUAGE sql AS
  'SELECT causal.hlc_from_parts((extract(epoch FROM now()) * 1000)::bigint - 60000 + ms, 0, node)';

-- ==== every copy is kept =====================================================
SELECT pg_temp.arrive('00000000-0000-7000-8000-0000000000a1', pg_temp.at(10, 2), 'test-west', 'X');
SELECT pg_temp.arrive('00000000-0000-7000-8000-0000000000a1', pg_temp.at(20, 3), 'test-north', 'X');
SELECT is((SELECT hlc FROM tap_copies.chat), pg_temp.at(10, 2), 'the row is headed by the smallest copy');
SELECT is((SELECT array_agg((c).hlc) FROM tap_copies.chat, unnest(copies) c), ARRAY[pg_temp.at(20, 3)],
          'and keeps the other copy''s stamp in copies');
SELECT pg_temp.arrive('00000000-0000-7000-8000-0000000000a1', pg_temp.at(5, 4), 'test-south', 'X');
SELECT is((SELECT hlc::text || ' ' || (SELECT string_agg((c).hlc::text, ' ') FROM unnest(copies) c) FROM tap_copies.chat),
          pg_temp.at(5, 4)::text || ' ' || pg_temp.at(10, 2)::text || ' ' || pg_temp.at(20, 3)::text,
          'a smaller copy arriving later heads the row; the others stay, in hlc order');
SELECT is((SELECT crdb_region FROM tap_copies.chat), 'test-south', 'with its own stamp');
SELECT pg_temp.arrive('00000000-0000-7000-8000-0000000000a1', pg_temp.at(20, 3), 'test-north', 'X');
SELECT is((SELECT duplicates FROM causal.stat_tables WHERE relid = 'tap_copies.chat'::regclass), 1::bigint,
          'a copy it has changes nothing (a duplicate: relay loops end)');

-- a reply to the copy that does not head the row
SELECT pg_temp.arrive('00000000-0000-7000-8000-0000000000a2', pg_temp.at(30, 3), 'test-north', 'reply', ARRAY[pg_temp.at(20, 3)]);
SELECT results_eq('SELECT body, delivered FROM pg_temp.history()', $$VALUES ('X', true), ('reply', true)$$,
                  'a reply to any copy''s hlc is delivered, after the message');
SELECT is((SELECT count(*) FROM causal.catch_up('tap_copies.chat', '1', ARRAY[pg_temp.at(20, 3)])), 1::bigint,
          'catch_up from that hlc: the reply, no 5C003');
SELECT is((SELECT bool_and(h.delivered) FROM (SELECT causal.merge(msg_id, hlc, deps, crdb_region, epoch) g
                                                FROM tap_copies.chat) c, causal.unnest(c.g) h), false,
          'the merge without copies does not know that name: pass copies');

-- ==== the presented copy and the fences ======================================
SELECT causal.register_region('test-west', 2);
SELECT causal.register_region('test-north', 3);
SELECT pg_temp.arrive('00000000-0000-7000-8000-0000000000b1', pg_temp.at(40, 2), 'test-west', 'Y');
SELECT is((SELECT hlc FROM pg_temp.history() WHERE body = 'Y'), pg_temp.at(40, 2), 'Y as test-west wrote it');
-- test-west is fenced (its epoch 0 from an hlc before Y): Y there is an orphan
INSERT INTO causal.fences (region, epoch, fenced_at) VALUES ('test-west', 0, pg_temp.at(35, 9));
SELECT is((SELECT orphan FROM pg_temp.history() WHERE body = 'Y'), true, 'fenced, test-west''s Y is an orphan');
-- the client, told 5C004, sent Y again in test-north
SELECT pg_temp.arrive('00000000-0000-7000-8000-0000000000b1', pg_temp.at(45, 3), 'test-north', 'Y');
SELECT pg_temp.arrive('00000000-0000-7000-8000-0000000000b2', pg_temp.at(50, 3), 'test-north', 'reply to Y', ARRAY[pg_temp.at(45, 3)]);
SELECT results_eq($$SELECT body, hlc, orphan FROM pg_temp.history() WHERE body IN ('Y', 'reply to Y')$$,
                  format($$VALUES ('Y', %L::causal.hlc, false), ('reply to Y', %L::causal.hlc, false)$$,
                         pg_temp.at(45, 3), pg_temp.at(50, 3)),
                  'an active region''s copy beats the fenced one''s: Y is shown as the retry, and its reply after it');
SELECT is((SELECT hlc FROM tap_copies.chat WHERE body = 'Y'), pg_temp.at(40, 2),
          'the row is still headed by the smaller copy: what is shown follows the fences, the row does not');
DELETE FROM causal.fences WHERE region = 'test-west';
SELECT is((SELECT hlc FROM pg_temp.history() WHERE body = 'Y'), pg_temp.at(40, 2),
          'without the fence, the smaller copy is shown again: a function of the copies and the fences alone');

-- ==== a cursor ===============================================================
SELECT is(causal.stable_hlc(), '0.00000@0'::causal.hlc,
          'while a registered region has sent no stable point, nothing is stable');
-- what their heartbeats would bring: below now, they sent everything
INSERT INTO causal.heartbeats (region, beat, stable)
     SELECT r, 1, causal.hlc_now() FROM unnest(ARRAY['test-west', 'test-north']) r;
SELECT cmp_ok(causal.stable_hlc(), '>', '0.00000@0'::causal.hlc, 'with them, the least of every region''s');
CREATE TABLE pg_temp.idle AS SELECT causal.local_stable() AS point;
SELECT cmp_ok((SELECT point FROM pg_temp.idle), '<', causal.local_stable(),
              'with nothing written, this region''s stable point still moves on');
CREATE TABLE pg_temp.cursor AS SELECT causal.stable_hlc() AS since;
INSERT INTO tap_copies.chat (conversation_id, sender, body) VALUES (2, 'ana', 'first');
INSERT INTO tap_copies.chat (conversation_id, sender, body, deps)
     SELECT 2, 'bo', 'second', ARRAY[hlc] FROM tap_copies.chat WHERE body = 'first';
SELECT cmp_ok((SELECT since FROM pg_temp.cursor), '<=', (SELECT min(hlc) FROM tap_copies.chat WHERE conversation_id = 2),
              'causal.stable_hlc() is not above what is written after it');
SELECT results_eq($$SELECT m.body FROM causal.catch_up('tap_copies.chat', '2', NULL, since => (SELECT since FROM pg_temp.cursor)) c
                     JOIN tap_copies.chat m USING (msg_id) ORDER BY c.position$$,
                  $$VALUES ('first'), ('second')$$, 'catch_up from the cursor: what came after it, in order');
SELECT results_eq($$SELECT m.body FROM causal.catch_up('tap_copies.chat', '2',
                       ARRAY[(SELECT hlc FROM tap_copies.chat WHERE body = 'first')],
                       since => (SELECT since FROM pg_temp.cursor)) c JOIN tap_copies.chat m USING (msg_id)$$,
                  $$VALUES ('second')$$, 'and without what the client showed since');
SELECT is((SELECT count(*) FROM causal.catch_up('tap_copies.chat', '2', ARRAY[pg_temp.at(1, 1)],
                                                 since => (SELECT since FROM pg_temp.cursor))), 2::bigint,
          'a seen hlc below the cursor is the cursor''s: no 5C003');
SELECT throws_ok($$SELECT * FROM causal.catch_up('tap_copies.chat', '2', ARRAY['281474976710000.00000@1'::causal.hlc],
                                                  since => (SELECT since FROM pg_temp.cursor))$$,
                 '5C003', NULL, 'a seen hlc above the cursor that is not here: 5C003');
SELECT is((SELECT count(*) FROM causal.catch_up('tap_copies.chat', '1', ARRAY[pg_temp.at(45, 3)],
                                                 since => pg_temp.at(42, 0))), 1::bigint,
          'a seen hlc above the cursor naming a later copy of a message headed below it: its past counts as seen');

-- ==== a populated table, enabled alike in every region =======================
CREATE TABLE tap_copies.old_a (id bigint, conversation_id bigint, body text, sent timestamptz);
CREATE TABLE tap_copies.old_b (id bigint, conversation_id bigint, body text, sent timestamptz);
INSERT INTO tap_copies.old_a SELECT g, g % 2, 'old ' || g, '2026-01-01 00:00:00+00'::timestamptz + (g / 3) * interval '1 ms'
  FROM generate_series(1, 9) g;
INSERT INTO tap_copies.old_b SELECT * FROM tap_copies.old_a ORDER BY random();
SELECT throws_ok($$SELECT causal.enable('tap_copies.old_a', 'conversation_id')$$, '55000', NULL,
                 'with other regions registered, enabling a populated table without key and sent_at is refused');
SELECT lives_ok($$SELECT causal.enable('tap_copies.old_a', 'conversation_id', key => 'id', sent_at => 'sent')$$,
                'with them it is enabled');
SELECT lives_ok($$SELECT causal.enable('tap_copies.old_b', 'conversation_id', key => 'id', sent_at => 'sent')$$,
                'and so is the same table elsewhere, rows in another order');
SELECT results_eq('SELECT id, msg_id, hlc::text, crdb_region, epoch FROM tap_copies.old_a ORDER BY id',
                  'SELECT id, msg_id, hlc::text, crdb_region, epoch FROM tap_copies.old_b ORDER BY id',
                  'every row gets the same msg_id and hlc in both: one message, not one per region');
SELECT is((SELECT count(DISTINCT hlc::text) FROM tap_copies.old_a), 9::bigint, 'each its own hlc, ties in one millisecond numbered');
CREATE TABLE tap_copies.old_c (id bigint, conversation_id bigint, body text, sent timestamptz);
INSERT INTO tap_copies.old_c SELECT id, conversation_id, body, sent FROM tap_copies.old_a WHERE id IN (2, 3, 7) ORDER BY random();
SELECT lives_ok($$SELECT causal.enable('tap_copies.old_c', 'conversation_id', key => 'id', sent_at => 'sent')$$,
                'a region that holds part of the archive enables it too');
SELECT results_eq('SELECT id, msg_id, hlc::text FROM tap_copies.old_c ORDER BY id',
                  'SELECT id, msg_id, hlc::text FROM tap_copies.old_a WHERE id IN (2, 3, 7) ORDER BY id',
                  'and stamps each row it shares as the region that holds all of it does (rows of one millisecond included)');
CREATE TABLE tap_copies."odd $b$ $q$ name" (id bigint, "conv $b$" bigint, "sent $b$" timestamptz);
INSERT INTO tap_copies."odd $b$ $q$ name" VALUES (1, 1, '2026-01-01 00:00:00+00'), (2, 1, '2026-01-01 00:00:00+00');
SELECT lives_ok($$SELECT causal.enable('tap_copies."odd $b$ $q$ name"', 'conv $b$', key => 'id', sent_at => 'sent $b$')$$,
                'names with dollar quotes in them enable like any other');
-- ids 268 and 280 hash alike in the bits that number a millisecond's rows
CREATE TABLE tap_copies.old_d (id bigint, conversation_id bigint, body text, sent timestamptz);
INSERT INTO tap_copies.old_d VALUES (268, 1, 'a', '2026-01-01 00:00:00.0004+00'), (280, 1, 'b', '2026-01-01 00:00:00.0007+00'),
                                    (5, 1, 'c', '2026-01-01 00:00:00.0007+00');
SELECT throws_ok($$SELECT causal.enable('tap_copies.old_d', 'conversation_id', key => 'id', sent_at => 'sent')$$, '23505',
                 'rows of tap_copies.old_d with id 268, 280 were sent in one millisecond and would share an hlc',
                 'two rows of one millisecond that would share an hlc: refused, naming them');

SELECT * FROM finish();
ROLLBACK;
