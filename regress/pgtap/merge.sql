-- causal.merge() and causal.catch_up() as behaviour: the history does not
-- depend on the order rows arrive in, on how a parallel plan splits them, or
-- on rows seen twice; orphans follow the fences that causal.fence_region()
-- and causal.unfence_region() write; catch_up serves what a client missed
-- and refuses to leave a silent gap. Runs on an instance with
-- causal.node_id = 1 and causal.region = 'test-east'.
BEGIN;
SET LOCAL search_path = public, causal;
SET LOCAL client_min_messages = warning;
SELECT plan(49);

-- Plain tables, not temporary ones: parallel workers cannot read those.
CREATE SCHEMA tap_merge;

-- 30 conversations of 60 messages written in three regions (node n writes
-- in region 'r<n>'). hlc grows with i, so every dep lies in its message's
-- past; deps name one to three earlier messages. What each region received:
-- every message once from its writer, some a second time by relay, and
-- r3's view lacks every 17th message, which holds their descendants there.
CREATE TABLE tap_merge.written AS
SELECT c AS conversation, i,
       ('00000000-0000-7000-8000-' || lpad(to_hex(c * 1000 + i), 12, '0'))::uuid AS msg_id,
       hlc_from_parts(1700000000000 + i * 5, (i * 7) % 3, 1 + i % 3) AS hlc,
       1 + i % 3 AS node
  FROM generate_series(1, 30) c, generate_series(1, 60) i;
CREATE TABLE tap_merge.messages AS
SELECT w.*, 'r' || w.node AS region, 0::bigint AS epoch,
       ARRAY(SELECT d.hlc FROM tap_merge.written d
              WHERE d.conversation = w.conversation AND d.i < w.i
                AND d.i >= w.i - 1 - (abs(hashint4(w.i * 31 + w.conversation)) % 4)
                AND (d.i = w.i - 1 OR abs(hashint4(d.i * 7 + w.i)) % 2 = 0)
              ORDER BY d.i) AS deps
  FROM tap_merge.written w;
CREATE TABLE tap_merge.received AS
SELECT 'r' || v AS holder, m.* FROM tap_merge.messages m, generate_series(1, 3) v
 WHERE NOT (v = 3 AND m.i % 17 = 0)
UNION ALL
SELECT 'r1', m.* FROM tap_merge.messages m WHERE m.i % 10 = 3;  -- relayed a second time
ANALYZE tap_merge.received;

CREATE FUNCTION pg_temp.histories(query text) RETURNS TABLE (holder text, conversation int, history text)
LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY EXECUTE query; END $$;
CREATE TABLE tap_merge.expected AS
SELECT * FROM pg_temp.histories($$
  SELECT holder, conversation, causal.merge(msg_id, hlc, deps, region, epoch, NULL ORDER BY msg_id)::text
    FROM tap_merge.received GROUP BY holder, conversation$$);

-- Order and grouping
SELECT results_eq(
  $$SELECT holder, conversation, causal.merge(msg_id, hlc, deps, region, epoch, NULL ORDER BY random())::text
      FROM tap_merge.received GROUP BY 1, 2 ORDER BY 1, 2$$,
  'SELECT * FROM tap_merge.expected ORDER BY 1, 2',
  'the history does not depend on the order rows arrive in');
SELECT results_eq(
  $$SELECT holder, conversation, causal.merge(msg_id, hlc, deps, region, epoch, NULL ORDER BY hlc DESC, region DESC)::text
      FROM tap_merge.received GROUP BY 1, 2 ORDER BY 1, 2$$,
  'SELECT * FROM tap_merge.expected ORDER BY 1, 2',
  'nor on arriving newest first');
SELECT is((SELECT count(DISTINCT history) FROM tap_merge.expected WHERE holder IN ('r1', 'r2')), 30::bigint,
          'regions that hold the same messages present the same history, relayed copies or not');
SELECT ok((SELECT bool_and(e1.history = e2.history) FROM tap_merge.expected e1 JOIN tap_merge.expected e2 USING (conversation)
            WHERE e1.holder = 'r1' AND e2.holder = 'r2'),
          'r1 (with relayed duplicates) and r2 agree in every conversation');
SELECT results_eq(
  $$SELECT holder, conversation, causal.merge(msg_id, hlc, deps, region, epoch, NULL)::text
      FROM (SELECT * FROM tap_merge.received UNION ALL
            SELECT * FROM tap_merge.received WHERE abs(hashint4(i * conversation)) % 3 = 0) twice
     GROUP BY 1, 2 ORDER BY 1, 2$$,
  'SELECT * FROM tap_merge.expected ORDER BY 1, 2',
  'idempotent: merging a history with a subset of itself changes nothing');

-- Statuses
CREATE TABLE tap_merge.r3_view AS
SELECT h.* FROM causal.unnest((SELECT causal.merge(msg_id, hlc, deps, region, epoch, NULL)
                                 FROM tap_merge.received WHERE holder = 'r3' AND conversation = 1)) h;
SELECT is((SELECT count(*) FROM tap_merge.r3_view), 57::bigint, 'r3 lacks three messages of 60');
SELECT ok((SELECT bool_and(NOT delivered) FROM tap_merge.r3_view v WHERE hlc > (SELECT hlc FROM tap_merge.messages WHERE conversation = 1 AND i = 17)
             AND EXISTS (SELECT FROM tap_merge.messages m WHERE m.conversation = 1 AND m.msg_id = v.msg_id AND m.i > 17
                           AND m.deps && (SELECT array_agg(hlc) FROM tap_merge.messages WHERE conversation = 1 AND i = 17))),
          'a message whose dep is missing is held');
SELECT is((SELECT count(*) FROM tap_merge.r3_view WHERE delivered AND hlc > (SELECT hlc FROM tap_merge.messages WHERE conversation = 1 AND i = 17)),
          0::bigint, 'every later message replies, through its chain, to the missing one: all held');
SELECT is((SELECT array_agg(position ORDER BY hlc) FROM tap_merge.r3_view), (SELECT array_agg(position ORDER BY position) FROM tap_merge.r3_view),
          'without orphans the history ascends in hlc');
SELECT ok((SELECT bool_and(h.position > d.position)
             FROM causal.unnest((SELECT causal.merge(msg_id, hlc, deps, region, epoch, NULL) FROM tap_merge.messages WHERE conversation = 2)) h
             JOIN tap_merge.messages m ON m.msg_id = h.msg_id
             JOIN causal.unnest((SELECT causal.merge(msg_id, hlc, deps, region, epoch, NULL) FROM tap_merge.messages WHERE conversation = 2)) d
               ON d.hlc = ANY (m.deps)),
          'no message comes before one of its deps');
SELECT is((SELECT array_agg(h.concurrent ORDER BY h.position)
             FROM causal.unnest((SELECT causal.merge(msg_id, hlc, deps, region, epoch, NULL) FROM tap_merge.messages WHERE conversation = 3)) h),
          (WITH RECURSIVE ordered AS (
             SELECT h.position, m.hlc, m.deps FROM causal.unnest((SELECT causal.merge(msg_id, hlc, deps, region, epoch, NULL)
                                                                     FROM tap_merge.messages WHERE conversation = 3)) h
               JOIN tap_merge.messages m USING (msg_id)),
           reach(start_pos, hlc) AS (  -- the causal past of every message
             SELECT o.position, d FROM ordered o, unnest(o.deps) d
             UNION
             SELECT r.start_pos, d FROM reach r JOIN ordered o ON o.hlc = r.hlc, unnest(o.deps) d)
           SELECT array_agg(o.position > 1 AND NOT EXISTS (
                    SELECT FROM reach r JOIN ordered p ON p.hlc = r.hlc
                     WHERE r.start_pos = o.position AND p.position = o.position - 1) ORDER BY o.position)
             FROM ordered o),
          'concurrent is true exactly where the message before is not in its causal past');

-- Parallel plans, against the same merges planned without workers.
CREATE TABLE tap_merge.whole AS
SELECT holder, causal.merge(msg_id, hlc, deps, region, epoch, NULL)::text AS history FROM tap_merge.received GROUP BY holder;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;
SET LOCAL enable_hashagg = off;
SELECT matches(tap_helpers.plan_of($$SELECT holder, conversation, causal.merge(msg_id, hlc, deps, region, epoch, NULL)
                                       FROM tap_merge.received GROUP BY 1, 2$$),
               'Finalize GroupAggregate.*Gather Merge.*Partial GroupAggregate',
               'the planner splits the merge across parallel workers');
SELECT results_eq(
  $$SELECT holder, conversation, causal.merge(msg_id, hlc, deps, region, epoch, NULL)::text
      FROM tap_merge.received GROUP BY 1, 2 ORDER BY 1, 2$$,
  'SELECT * FROM tap_merge.expected ORDER BY 1, 2',
  'partial states merged by the combine function give the same histories');
SELECT matches(tap_helpers.plan_of($$SELECT causal.merge(msg_id, hlc, deps, region, epoch, NULL) FROM tap_merge.received$$),
               'Finalize Aggregate.*Gather.*Partial Aggregate', 'one group split across workers');
SELECT is((SELECT causal.merge(msg_id, hlc, deps, region, epoch, NULL)::text FROM tap_merge.received WHERE holder = 'r1'),
          (SELECT history FROM tap_merge.whole WHERE holder = 'r1'), 'one group split across workers: the same history');
-- The whole aggregate, final function included, inside a worker: it reads
-- causal.fences there with the query's snapshot.
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
SET LOCAL force_parallel_mode = on;
SELECT matches(tap_helpers.plan_of($$SELECT causal.merge(msg_id, hlc, deps, region, epoch, NULL) FROM tap_merge.received$$),
               'Single Copy: true.*Aggregate', 'force_parallel_mode runs the final function in a worker');
SELECT is((SELECT causal.merge(msg_id, hlc, deps, region, epoch, NULL)::text FROM tap_merge.received WHERE holder = 'r2'),
          (SELECT history FROM tap_merge.whole WHERE holder = 'r2'), 'and gives the same history');
RESET force_parallel_mode;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET parallel_leader_participation;
RESET enable_hashagg;

-- As a window function (the final function leaves the state as it was)
SELECT is((SELECT h FROM (SELECT causal.merge(msg_id, hlc, deps, region, epoch, NULL) OVER (ORDER BY hlc)::text AS h, hlc
                            FROM tap_merge.messages WHERE conversation = 4) w ORDER BY hlc DESC LIMIT 1),
          (SELECT causal.merge(msg_id, hlc, deps, region, epoch, NULL)::text FROM tap_merge.messages WHERE conversation = 4),
          'a running merge over a window ends with the whole history');

-- Orphans follow the fences the admin functions write.
CREATE TABLE tap_merge.live (body text, msg_id uuid DEFAULT gen_random_uuid(), hlc hlc DEFAULT hlc_now(),
                             deps hlc[] DEFAULT '{}', region text, epoch bigint DEFAULT 0);
CREATE VIEW tap_merge.live_view AS
SELECT l.body, h.position, h.orphan, h.concurrent
  FROM causal.unnest((SELECT causal.merge(msg_id, hlc, deps, region, epoch, NULL) FROM tap_merge.live)) h
  JOIN tap_merge.live l USING (msg_id);
INSERT INTO tap_merge.live (body, region) VALUES ('r2 before its fence', 'r2');
SELECT causal.fence_region('r2', 1) \g /dev/null
INSERT INTO tap_merge.live (body, region) VALUES ('r2 split brain', 'r2');
INSERT INTO tap_merge.live (body, region, deps)
SELECT 'r1 replies to the split brain', 'r1', ARRAY[hlc] FROM tap_merge.live WHERE body = 'r2 split brain';
INSERT INTO tap_merge.live (body, region) VALUES ('r1 while r2 is out', 'r1');
INSERT INTO tap_merge.live (body, region, epoch) VALUES ('r2 in its new epoch', 'r2', 1);
SELECT results_eq('SELECT body, orphan FROM tap_merge.live_view ORDER BY position',
  $$VALUES ('r2 before its fence', false), ('r1 while r2 is out', false), ('r2 in its new epoch', false),
           ('r2 split brain', true), ('r1 replies to the split brain', true)$$,
  'a fenced epoch''s later writes and their replies are orphans, at the end until the region rejoins');
SELECT is(ARRAY(SELECT causal.is_orphan(region, epoch, hlc) FROM tap_merge.live ORDER BY hlc),
          ARRAY[false, true, false, false, false],
          'causal.is_orphan() judges a write alone; only the merge follows replies');
SELECT causal.unfence_region('r2', 2) \g /dev/null
INSERT INTO tap_merge.live (body, region) VALUES ('r1 after the rejoin', 'r1');
SELECT results_eq('SELECT body, orphan FROM tap_merge.live_view ORDER BY position',
  $$VALUES ('r2 before its fence', false), ('r1 while r2 is out', false), ('r2 in its new epoch', false),
           ('r2 split brain', true), ('r1 replies to the split brain', true), ('r1 after the rejoin', false)$$,
  'once r2 rejoined, its orphans stand where it did, in their own causal order');
SELECT ok((SELECT lifted_at > fenced_at FROM causal.fences WHERE region = 'r2' AND epoch = 0),
          'unfence_region records when the fence was lifted');
SELECT lifted_at AS first_lift FROM causal.fences WHERE region = 'r2' AND epoch = 0 \gset
UPDATE causal.fences SET lifted_at = hlc_now() WHERE region = 'r2' AND epoch = 0;
SELECT is((SELECT lifted_at FROM causal.fences WHERE region = 'r2' AND epoch = 0), :'first_lift'::hlc,
          'a later lift arriving from another region changes nothing (min register)');
UPDATE causal.fences SET lifted_at = fenced_at WHERE region = 'r2' AND epoch = 0;
SELECT ok((SELECT lifted_at = fenced_at FROM causal.fences WHERE region = 'r2' AND epoch = 0),
          'an earlier lift wins');

-- catch_up on a causal message table
CREATE TABLE tap_merge.chat (conv bigint, body text);
SELECT causal.enable('tap_merge.chat', 'conv') \g /dev/null
INSERT INTO tap_merge.chat (conv, body) VALUES (1, 'a'), (2, 'elsewhere');
INSERT INTO tap_merge.chat (conv, body, deps) SELECT 1, 'b', ARRAY[hlc] FROM tap_merge.chat WHERE body = 'a';
INSERT INTO tap_merge.chat (conv, body) VALUES (1, 'c');
CREATE FUNCTION pg_temp.caught_up(seen text) RETURNS text[] LANGUAGE sql AS $$
  SELECT array_agg(c.body ORDER BY u.position)
    FROM causal.catch_up('tap_merge.chat', '1', seen::hlc[]) u JOIN tap_merge.chat c USING (msg_id)
$$;
CREATE FUNCTION pg_temp.hlc_of(body text) RETURNS text LANGUAGE sql AS $$
  SELECT hlc::text FROM tap_merge.chat WHERE chat.body = hlc_of.body
$$;
SELECT is(pg_temp.caught_up('{}'), ARRAY['a', 'b', 'c'], 'a client that saw nothing gets the conversation');
SELECT is(pg_temp.caught_up(NULL), ARRAY['a', 'b', 'c'], 'NULL seen: the same');
SELECT is(pg_temp.caught_up(format('{%s}', pg_temp.hlc_of('b'))), ARRAY['c'],
          'a client that saw b has seen a too (its causal past), and gets c');
SELECT is(pg_temp.caught_up(format('{%s,%s}', pg_temp.hlc_of('a'), pg_temp.hlc_of('b'))), ARRAY['c'],
          'passing every message seen or only the latest gives the same answer');
SELECT is((SELECT array_agg(position ORDER BY position) FROM causal.catch_up('tap_merge.chat', '1', '{}')),
          ARRAY[1, 2, 3]::bigint[], 'positions are those of the whole history');
SELECT is((tap_helpers.error_of($$SELECT pg_temp.caught_up('{1.00000@7}')$$)).state, '5C003',
          'a seen message this region does not have: 5C003, never a silent gap');
SELECT is((tap_helpers.error_of($$SELECT pg_temp.caught_up('{1.00000@7}')$$)).detail,
          '1 seen message(s) have not arrived: 1.00000@7.', 'the detail names what is missing');
SELECT matches((tap_helpers.error_of($$SELECT pg_temp.caught_up('{1.00000@7}')$$)).hint,
               'retry, pass wait_for', 'the hint says what to do');
-- A reply that arrived (by replication) before its parent.
SET LOCAL session_replication_role = replica;
INSERT INTO tap_merge.chat (conv, body, msg_id, hlc, deps, crdb_region, epoch)
VALUES (1, 'early reply', gen_random_uuid(), '1700000000000.00000@7', '{1699999999999.00000@7}', 'r7', 0);
RESET session_replication_role;
SELECT is((tap_helpers.error_of($$SELECT pg_temp.caught_up('{1700000000000.00000@7}')$$)).detail,
          '1 seen message(s) arrived but wait for a dependency: 1700000000000.00000@7.',
          'a seen message whose parent has not arrived: behind as well');
SELECT is(pg_temp.caught_up(format('{%s,%s}', pg_temp.hlc_of('b'), pg_temp.hlc_of('c'))), ARRAY['early reply'],
          'a client that has not seen it gets it, flagged held');
SELECT is((SELECT delivered FROM causal.catch_up('tap_merge.chat', '1', '{}') WHERE hlc = '1700000000000.00000@7'),
          false, 'held: delivered is false');

SELECT is((tap_helpers.error_of($$SELECT causal.catch_up('tap_merge.live', '1', '{}')$$)).state, '55000',
          'a table that is not a causal message table: 55000');
SELECT is((tap_helpers.error_of($$SELECT causal.catch_up(NULL, '1', '{}')$$)).state, '22004', 'no table: 22004');
SELECT is((tap_helpers.error_of($$SELECT causal.catch_up('tap_merge.chat', 'one', '{}')$$)).state, '22P02',
          'a conversation key of the wrong type: 22P02');
SELECT is((tap_helpers.error_of($$SELECT causal.catch_up('tap_merge.chat', '1', '{}', '-1 s')$$)).state, '22023',
          'a negative wait: 22023');
SELECT is((tap_helpers.error_of($$SELECT causal.catch_up('tap_merge.chat', '1', '{NULL}')$$)).state, '22004',
          'a NULL in seen: 22004');
CREATE ROLE tap_merge_reader;
GRANT USAGE ON SCHEMA tap_merge, tap_helpers TO tap_merge_reader;
SET LOCAL ROLE tap_merge_reader;
SELECT (tap_helpers.error_of($$SELECT causal.catch_up('tap_merge.chat', '1', '{}')$$)).state AS reader_catch_up,
       (SELECT causal.merge(gen_random_uuid(), '1.00000@1', '{}', 'r', 0, NULL) IS NOT NULL) AS reader_merge \gset
RESET ROLE;
SELECT is(:'reader_catch_up'::text, '42501', 'catch_up reads as the caller: no SELECT on the table, no history');
SELECT is(:'reader_merge'::text, 't', 'causal.merge is for everyone');

-- Conversation keys are read as their column's type, compared with its own
-- equality operator, whatever the caller's search_path holds.
CREATE TABLE tap_merge.fixed (conv char(8), body text);
SELECT causal.enable('tap_merge.fixed', 'conv') \g /dev/null
INSERT INTO tap_merge.fixed (conv, body) VALUES ('abcdefgh', 'fixed width');
SELECT is((SELECT count(*) FROM causal.catch_up('tap_merge.fixed', 'abcdefgh', '{}')), 1::bigint,
          'a char(8) conversation keeps its width');
CREATE TABLE tap_merge.named (conv varchar, body text);
SELECT causal.enable('tap_merge.named', 'conv') \g /dev/null
INSERT INTO tap_merge.named (conv, body) VALUES ('general', 'hello');
CREATE SCHEMA tap_trojan;
CREATE FUNCTION tap_trojan.eq(varchar, varchar) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the caller''s operator ran'; END $$;
CREATE OPERATOR tap_trojan.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = tap_trojan.eq);
SET LOCAL search_path = tap_trojan, public, causal;
SELECT is((SELECT count(*) FROM causal.catch_up('tap_merge.named', 'general', '{}')), 1::bigint,
          'an operator = on the search_path is not the one catch_up compares with');
SET LOCAL search_path = public, causal;
-- What catch_up reads must be a message table, not something named like one.
CREATE TABLE tap_merge.lookalike (conv text, msg_id uuid, hlc hlc, deps hlc[], crdb_region int, epoch bigint);
CREATE FUNCTION tap_merge.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER causal_message BEFORE INSERT ON tap_merge.lookalike FOR EACH ROW EXECUTE FUNCTION tap_merge.noop('conv');
INSERT INTO tap_merge.lookalike VALUES ('x', gen_random_uuid(), '1.00000@1', '{}', 7, 0);
SELECT is((tap_helpers.error_of($$SELECT causal.catch_up('tap_merge.lookalike', 'x', '{}')$$)).state, '55000',
          'a trigger named causal_message that is not pg_causal''s: 55000');
DROP TRIGGER causal_message ON tap_merge.lookalike;
CREATE TRIGGER causal_message BEFORE INSERT ON tap_merge.lookalike FOR EACH ROW
  EXECUTE FUNCTION causal.message_trigger('conv', 'quiet');
SELECT is((tap_helpers.error_of($$SELECT causal.catch_up('tap_merge.lookalike', 'x', '{}')$$)).state, '42804',
          'pg_causal''s columns with other types: 42804, never a misread');
SELECT is((tap_helpers.error_of($$SELECT causal.catch_up('tap_merge.chat', '1', '{NULL}')$$)).message,
          'seen must not contain NULL', 'a NULL in seen is named as such');
SELECT is((SELECT count(*) FROM causal.catch_up('tap_merge.chat', '1', '{}', '1000000 years')), 4::bigint,
          'a huge wait_for does not overflow (and nothing waits when nothing is missing)');
SELECT is((tap_helpers.error_of($$SELECT causal.unfence_region('r2', 9)$$)).state, '55000',
          'unfence_region of a region that is not fenced here: 55000 (its fence may not have arrived)');

SELECT * FROM finish();
ROLLBACK;
