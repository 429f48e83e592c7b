-- Hash joins, merge joins and hash aggregation on hlc give the same answers.
BEGIN;
-- operators live in schema causal, like every object of the extension
SET LOCAL search_path = public, causal;
SELECT plan(7);

CREATE TEMP TABLE sent AS
  SELECT g AS id, causal.hlc_from_parts(1700000000000 + g / 4, g % 4, g % 3) AS h
    FROM generate_series(1, 50000) g;
CREATE TEMP TABLE seen AS
  SELECT h FROM sent WHERE id % 5 = 0
  UNION ALL SELECT causal.hlc_from_parts(1, 0, 9) FROM generate_series(1, 100);
ANALYZE sent;
ANALYZE seen;


SET LOCAL enable_mergejoin = off;
SET LOCAL enable_nestloop = off;
SELECT matches(tap_helpers.plan_of('SELECT count(*) FROM sent JOIN seen USING (h)'), 'Hash Join',
               'the planner chooses a hash join on hlc');
SELECT is((SELECT count(*) FROM sent JOIN seen USING (h)), 10000::bigint, 'the hash join matches every seen row');
RESET enable_mergejoin;
SET LOCAL enable_hashjoin = off;
SELECT matches(tap_helpers.plan_of('SELECT count(*) FROM sent JOIN seen USING (h)'), 'Merge Join',
               'the planner can merge join on hlc');
SELECT is((SELECT count(*) FROM sent JOIN seen USING (h)), 10000::bigint, 'the merge join agrees');
RESET enable_hashjoin;

SET LOCAL enable_sort = off;
SELECT matches(tap_helpers.plan_of('SELECT h, count(*) FROM seen GROUP BY h'), 'HashAggregate',
               'GROUP BY hlc can hash');
SELECT is((SELECT count(*) FROM (SELECT h FROM seen GROUP BY h) s), 10001::bigint,
          'hash aggregation groups equal values');
RESET enable_sort;
SET LOCAL enable_hashagg = off;
SELECT is((SELECT count(*) FROM (SELECT h FROM seen GROUP BY h) s), 10001::bigint,
          'sorted aggregation agrees');

SELECT * FROM finish();
ROLLBACK;
