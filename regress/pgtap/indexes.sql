-- ORDER BY and range scans use the btree index; hash and BRIN indexes answer
-- what they can; every index returns exactly what a sequential scan returns.
BEGIN;
-- operators live in schema causal, like every object of the extension
SET LOCAL search_path = public, causal;
SELECT plan(14);

CREATE TEMP TABLE messages AS
SELECT g AS id,
       causal.hlc_from_parts(1700000000000 + (g * 7919) % 100000, g % 5, g % 3) AS h
  FROM generate_series(1, 100000) g;
CREATE INDEX messages_h ON messages (h);
ANALYZE messages;

SELECT matches(tap_helpers.plan_of('SELECT * FROM messages ORDER BY h LIMIT 10'),
               'Index Scan using messages_h', 'ORDER BY hlc LIMIT uses the btree index');
SELECT matches(tap_helpers.plan_of('SELECT * FROM messages ORDER BY h DESC LIMIT 10'),
               'Index Scan Backward using messages_h', 'ORDER BY hlc DESC scans the index backward');
SELECT matches(
  tap_helpers.plan_of($q$SELECT * FROM messages
     WHERE h >= '1700000050000.00000@0' AND h < '1700000050100.00000@0'$q$),
  '(Index|Bitmap Index) Scan', 'a narrow range uses the btree index');
SELECT matches(tap_helpers.plan_of($q$SELECT * FROM messages WHERE h = '1700000050000.00001@2'$q$),
               'Index', 'equality uses the btree index');

SELECT is((SELECT array_agg(id) FROM (SELECT id FROM messages ORDER BY h LIMIT 1000) s),
          (SELECT array_agg(id) FROM (SELECT id, h FROM messages ORDER BY h, id LIMIT 1000) s),
          'the index order is the total order');

SET LOCAL enable_indexscan = off;
SET LOCAL enable_bitmapscan = off;
CREATE TEMP TABLE range_by_seqscan AS
  SELECT id FROM messages WHERE h BETWEEN '1700000050000.00000@0' AND '1700000060000.00000@0';
RESET enable_indexscan;
RESET enable_bitmapscan;
SET LOCAL enable_seqscan = off;
SELECT set_eq(
  $q$SELECT id FROM messages WHERE h BETWEEN '1700000050000.00000@0' AND '1700000060000.00000@0'$q$,
  'SELECT id FROM range_by_seqscan', 'a btree range scan returns what a sequential scan returns');

DROP INDEX messages_h;
CREATE INDEX messages_h_hash ON messages USING hash (h);
SELECT matches(tap_helpers.plan_of($q$SELECT * FROM messages WHERE h = '1700000050000.00001@2'$q$),
               'messages_h_hash', 'equality uses the hash index');
SELECT is((SELECT count(*) FROM messages WHERE h = (SELECT h FROM messages WHERE id = 4242)),
          1::bigint, 'the hash index finds the row');

DROP INDEX messages_h_hash;
CREATE INDEX messages_h_brin ON messages USING brin (h);
SELECT matches(
  tap_helpers.plan_of($q$SELECT * FROM messages WHERE h < '1700000000100.00000@0'$q$),
  'messages_h_brin', 'a range uses the BRIN index');
SELECT set_eq($q$SELECT id FROM messages WHERE h < '1700000000100.00000@0'$q$,
              $q$SELECT id FROM messages WHERE causal.hlc_physical_ms(h) < 1700000000100$q$,
              'the BRIN index returns what the predicate selects');
RESET enable_seqscan;
DROP INDEX messages_h_brin;

-- btree deduplication: many equal keys take far fewer index pages than
-- unique keys would (it needs FUNCTION 4 btequalimage in the opclass)
CREATE TEMP TABLE repeated AS
  SELECT causal.hlc_from_parts(1700000000000 + g % 10, 0, 1) AS h FROM generate_series(1, 100000) g;
CREATE INDEX repeated_h ON repeated (h);
CREATE TEMP TABLE distinct_values AS
  SELECT causal.hlc_from_parts(1700000000000 + g, 0, 1) AS h FROM generate_series(1, 100000) g;
CREATE INDEX distinct_values_h ON distinct_values (h);
SELECT cmp_ok(pg_relation_size('repeated_h') * 3, '<', pg_relation_size('distinct_values_h'),
              'duplicate keys are deduplicated in the btree');

-- arrays of hlc compare and index too
CREATE TEMP TABLE contexts AS
  SELECT ARRAY[causal.hlc_from_parts(g, 0, 1), causal.hlc_from_parts(g + 1, 0, 2)] AS deps
    FROM generate_series(1, 1000) g;
CREATE INDEX contexts_deps ON contexts USING gin (deps);
SET LOCAL enable_seqscan = off;
SELECT is((SELECT count(*) FROM contexts WHERE deps && ARRAY['500.00000@1', '500.00000@2']::causal.hlc[]),
          2::bigint, 'a GIN index on hlc[] finds the contexts that include a timestamp');
RESET enable_seqscan;
SELECT is((SELECT max(deps) FROM contexts), ARRAY['1000.00000@1', '1001.00000@2']::causal.hlc[],
          'hlc[] order is element-wise');
SELECT is((SELECT max(h) FROM distinct_values), '1700000100000.00000@1'::causal.hlc,
          'max(hlc)');

SELECT * FROM finish();
ROLLBACK;
