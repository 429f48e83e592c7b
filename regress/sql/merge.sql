-- The causal merge as a user sees it: causal.merge() over rows from several
-- regions, causal.unnest() of its value, the statuses, orphans placed where
-- their region rejoined, bad input. Every hlc and uuid here is a literal, so
-- the output is stable. Fences are written directly to causal.fences.
SET search_path = public, causal;
\set SHOW_CONTEXT never

-- The seed's example: M1 "Let's meet" (1000 ms, logical 0, node 1 = A) and
-- M2 "How about 3pm?" (1000 ms, logical 0, node 2 = B), written concurrently
-- in two regions. Each region holds both; every region presents M1 first.
CREATE TABLE received (region_seen text, msg_id uuid, hlc hlc, deps hlc[], region text,
                       epoch bigint, body text);
INSERT INTO received VALUES
  ('eu-west', '00000000-0000-7000-8000-00000000000b', '1000.00000@2', '{}', 'eu-west', 0, 'How about 3pm?'),
  ('eu-west', '00000000-0000-7000-8000-00000000000a', '1000.00000@1', '{}', 'us-east', 0, 'Let''s meet'),
  ('us-east', '00000000-0000-7000-8000-00000000000a', '1000.00000@1', '{}', 'us-east', 0, 'Let''s meet'),
  ('us-east', '00000000-0000-7000-8000-00000000000b', '1000.00000@2', '{}', 'eu-west', 0, 'How about 3pm?');
SELECT region_seen, h.position, r.body, h.hlc, h.delivered, h.concurrent, h.orphan
  FROM (SELECT region_seen, causal.merge(msg_id, hlc, deps, region, epoch, NULL) AS history
          FROM received GROUP BY region_seen) g,
       causal.unnest(g.history) h
  JOIN (SELECT DISTINCT msg_id, body FROM received) r USING (msg_id)
 ORDER BY region_seen, h.position;

-- The value itself: an array of causal.merged, in order.
SELECT causal.merge(msg_id, hlc, deps, region, epoch, NULL) FROM received WHERE region_seen = 'us-east';
\dT+ causal.merged
\da causal.merge

-- A reply chain across regions, a copy of one message from every region
-- (relay), a retry stamped twice (same msg_id, two hlc values: the smaller
-- wins, and a reply to the loser still finds it), and a reply whose parent
-- has not arrived (held, with its own reply).
CREATE TABLE chat (msg_id uuid, hlc hlc, deps hlc[], region text, epoch bigint, body text);
INSERT INTO chat VALUES
  ('00000000-0000-7000-8000-000000000001', '2000.00000@1', '{}', 'us-east', 0, 'who is in?'),
  ('00000000-0000-7000-8000-000000000002', '2050.00000@2', '{2000.00000@1}', 'eu-west', 0, 'me'),
  ('00000000-0000-7000-8000-000000000002', '2050.00000@2', '{2000.00000@1}', 'us-east', 0, 'me'),
  ('00000000-0000-7000-8000-000000000002', '2050.00000@2', '{2000.00000@1}', 'ap-south', 0, 'me'),
  ('00000000-0000-7000-8000-000000000003', '2100.00000@3', '{2050.00000@2}', 'ap-south', 0, 'me too'),
  ('00000000-0000-7000-8000-000000000004', '2110.00000@1', '{2000.00000@1}', 'us-east', 0, 'retried'),
  ('00000000-0000-7000-8000-000000000004', '2120.00000@2', '{2000.00000@1}', 'eu-west', 0, 'retried'),
  ('00000000-0000-7000-8000-000000000005', '2130.00000@3', '{2120.00000@2}', 'ap-south', 0, 'reply to the retry'),
  ('00000000-0000-7000-8000-000000000007', '2200.00000@2', '{2150.00000@1}', 'eu-west', 0, 'reply to a lost one'),
  ('00000000-0000-7000-8000-000000000008', '2210.00000@3', '{2200.00000@2}', 'ap-south', 0, 'and its reply');
CREATE VIEW chat_view AS
SELECT h.position, c.body, h.hlc, h.delivered, h.concurrent, h.orphan
  FROM causal.unnest((SELECT causal.merge(msg_id, hlc, deps, region, epoch, NULL) FROM chat)) h
  JOIN (SELECT DISTINCT msg_id, body FROM chat) c USING (msg_id)
 ORDER BY h.position;
SELECT * FROM chat_view;
-- the missing parent arrives: both are delivered
INSERT INTO chat VALUES
  ('00000000-0000-7000-8000-000000000006', '2150.00000@1', '{}', 'us-east', 0, 'lost one');
SELECT * FROM chat_view;

-- Orphans: us-east's epoch 0 was fenced at 2300; what it wrote after that
-- in epoch 0, and replies to it, are orphans, shown where it rejoined.
INSERT INTO chat VALUES
  ('00000000-0000-7000-8000-000000000009', '2290.00000@1', '{}', 'us-east', 0, 'before the fence'),
  ('00000000-0000-7000-8000-00000000000a', '2310.00000@1', '{}', 'us-east', 0, 'split brain'),
  ('00000000-0000-7000-8000-00000000000b', '2320.00000@2', '{2310.00000@1}', 'eu-west', 1, 'reply to split brain'),
  ('00000000-0000-7000-8000-00000000000c', '2400.00000@2', '{}', 'eu-west', 1, 'while us-east is out'),
  ('00000000-0000-7000-8000-00000000000d', '2600.00000@2', '{}', 'eu-west', 1, 'after the rejoin');
INSERT INTO causal.fences (region, epoch, fenced_at) VALUES ('us-east', 0, '2300.00000@2');
-- not rejoined yet: at the end
SELECT * FROM chat_view WHERE hlc > '2280.00000@0';
UPDATE causal.fences SET lifted_at = '2500.00000@2' WHERE region = 'us-east';
SELECT * FROM chat_view WHERE hlc > '2280.00000@0';
DELETE FROM causal.fences;

-- Bad input gets a defined result: deps in the message's own future or a
-- cycle hold the message; rows without msg_id or hlc are skipped, as
-- aggregates skip NULL input; NULL deps are no deps.
SELECT h.position, h.hlc, h.delivered, h.concurrent
  FROM causal.unnest((SELECT causal.merge(msg_id, hlc, deps, region, epoch, NULL) FROM (VALUES
    ('00000000-0000-7000-8000-000000000001'::uuid, '10.00000@1'::hlc, '{11.00000@1}'::hlc[], 'a', 0::bigint),
    ('00000000-0000-7000-8000-000000000002', '11.00000@1', '{10.00000@1}', 'a', 0),
    ('00000000-0000-7000-8000-000000000003', '12.00000@1', '{12.00000@1}', 'a', 0),
    ('00000000-0000-7000-8000-000000000004', '13.00000@1', NULL, NULL, NULL),
    (NULL, '14.00000@1', '{}', 'a', 0),
    ('00000000-0000-7000-8000-000000000006', NULL, '{}', 'a', 0)) v(msg_id, hlc, deps, region, epoch))) h;
-- a NULL dep is an error, as on the insert path
SELECT causal.merge('00000000-0000-7000-8000-000000000001', '10.00000@1', ARRAY[NULL::hlc], 'a', 0, NULL);
-- an empty group has an empty history
SELECT causal.merge(msg_id, hlc, deps, region, epoch, NULL) FROM chat WHERE false;
SELECT count(*) FROM causal.unnest('{}');

-- One history per conversation: GROUP BY.
SELECT g.conversation, h.position, h.hlc
  FROM (SELECT conversation, causal.merge(msg_id, hlc, deps, region, epoch, NULL) AS history
          FROM (VALUES (1, '00000000-0000-7000-8000-000000000001'::uuid, '5.00000@1'::hlc),
                       (2, '00000000-0000-7000-8000-000000000002', '4.00000@1'),
                       (1, '00000000-0000-7000-8000-000000000003', '3.00000@2')) v(conversation, msg_id, hlc)
               CROSS JOIN LATERAL (SELECT '{}'::hlc[] AS deps, 'r' AS region, 0::bigint AS epoch) c
         GROUP BY conversation) g,
       causal.unnest(g.history) h
 ORDER BY g.conversation, h.position;

-- The five-argument form, without copies, is deprecated: a WARNING once
-- per query, naming the form to use; the history is the same.
SELECT causal.merge(msg_id, hlc, deps, region, epoch) = causal.merge(msg_id, hlc, deps, region, epoch, NULL) AS same
  FROM received WHERE region_seen = 'us-east';

-- Once per query with parallel workers too: each worker runs the transition
-- function, and said it again (the final function, which one process runs,
-- says it now).
CREATE TABLE many AS
SELECT gen_random_uuid() AS msg_id, causal.hlc_from_parts(i, 0, 1) AS hlc
  FROM generate_series(1, 20000) i;
ANALYZE many;
BEGIN;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT cardinality(causal.merge(msg_id, hlc, '{}', 'r', 0)) FROM many;
SELECT cardinality(causal.merge(msg_id, hlc, '{}', 'r', 0)) FROM many;
COMMIT;

DROP VIEW chat_view;
DROP TABLE chat, received, many;
