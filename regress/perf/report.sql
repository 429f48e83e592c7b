-- The report, from bench.result: medians, ratios, and the summary with the
-- bars. Informational: nothing here fails on a missed bar.

\pset footer off
\pset null '-'

CREATE TEMP VIEW med AS
SELECT section, item, variant,
       bench.median(array_agg(value)) AS v,
       max(value) AS hi,
       count(*) AS reps,
       -- (max - min) / median: how much the repetitions disagreed
       (max(value) - min(value)) / nullif(bench.median(array_agg(value)), 0) AS spread,
       string_agg(DISTINCT detail, '; ') AS detail
FROM bench.result GROUP BY section, item, variant;

CREATE TEMP VIEW label (item, ord, name) AS VALUES
    ('hlc_now', 1, 'causal.hlc_now()'),
    ('nextval', 2, 'nextval(''bench_seq'')'),
    ('clock_timestamp', 3, 'clock_timestamp()'),
    ('gen_random_uuid', 4, 'gen_random_uuid()'),
    ('empty', 5, '(none: count(1), loop cost)'),
    ('h', 1, 'hlc'),
    ('b', 2, 'bigint'),
    ('u', 3, 'uuid'),
    ('h1', 4, 'hlc, no shared walls');

CREATE FUNCTION pg_temp.x(float8) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT to_char($1, 'FM990.00') || 'x' $$;
CREATE FUNCTION pg_temp.x3(float8) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT to_char($1, 'FM990.000') || 'x' $$;
CREATE FUNCTION pg_temp.pct(float8) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT to_char(100 * $1, 'FM990') || '%' $$;
CREATE FUNCTION pg_temp.n(float8) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT to_char($1, 'FM999,999,990') $$;
CREATE FUNCTION pg_temp.d1(float8) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT to_char($1, 'FM999,999,990.0') $$;

-- Subtracting the bare loop (count(1)) leaves what the call itself costs.
CREATE TEMP VIEW inproc AS
SELECT m.item, l.ord, l.name, m.v AS ms, m.reps, m.spread,
       (m.v - e.v) * 1e6 / c.v AS net_ns,
       c.v AS calls
FROM med m
JOIN label l USING (item)
JOIN med e ON e.section = 'inproc' AND e.item = 'empty'
JOIN med c ON c.section = 'inproc_calls'
WHERE m.section = 'inproc';

CREATE TEMP VIEW sorts AS
SELECT s.item, l.ord, l.name, s.variant, s.v AS ms, sc.v AS scan_ms, s.v - sc.v AS sort_ms,
       s.v / sb.v AS vs_bigint, (s.v - sc.v) / (sb.v - scb.v) AS net_vs_bigint,
       s.detail, s.reps, s.spread
FROM med s
JOIN label l USING (item)
JOIN med sc ON sc.section = 'scan' AND sc.variant = s.variant
               AND sc.item = CASE s.variant WHEN 'row' THEN '*' ELSE s.item END
JOIN med sb ON sb.section = 'sort' AND sb.variant = s.variant AND sb.item = 'b'
JOIN med scb ON scb.section = 'scan' AND scb.variant = s.variant
                AND scb.item = CASE s.variant WHEN 'row' THEN '*' ELSE 'b' END
WHERE s.section = 'sort';

CREATE TEMP VIEW indexes AS
SELECT t.item, l.ord, l.name, t.v AS build_ms, z.v AS mb, t.reps, t.spread,
       t.v / tb.v AS build_vs_bigint, z.v / zb.v AS size_vs_bigint, z.v / zu.v AS size_vs_uuid
FROM med t
JOIN label l USING (item)
JOIN med z ON z.section = 'index_mb' AND z.item = t.item
JOIN med tb ON tb.section = 'index_ms' AND tb.item = 'b'
JOIN med zb ON zb.section = 'index_mb' AND zb.item = 'b'
JOIN med zu ON zu.section = 'index_mb' AND zu.item = 'u'
WHERE t.section = 'index_ms';

\echo
SELECT format('1a. Calls per second: pgbench -n -M prepared, one SELECT of the function per transaction; '
              'median of %s runs of %s s per function, taken round robin', r.reps, pg_temp.n(s.v)) AS title
FROM med r, med s
WHERE r.section = 'pgbench' AND r.item = 'hlc_now' AND r.variant = '1' AND s.section = 'pgbench_slice_s' \gset
\echo
\echo :title
SELECT l.name AS "function",
       pg_temp.n(c1.v) AS "tps 1 client",
       pg_temp.pct(c1.spread) AS "spread",
       pg_temp.x(c1.v / n1.v) AS "vs nextval",
       pg_temp.x(c1.hi / n1.hi) AS "best vs best",
       pg_temp.n(c2.v) AS "tps 2 clients",
       pg_temp.pct(c2.spread) AS "spread ",
       pg_temp.x(c2.v / n2.v) AS "vs nextval ",
       pg_temp.x(c2.hi / n2.hi) AS "best vs best "
FROM label l
JOIN med c1 ON c1.section = 'pgbench' AND c1.item = l.item AND c1.variant = '1'
JOIN med c2 ON c2.section = 'pgbench' AND c2.item = l.item AND c2.variant = '2'
JOIN med n1 ON n1.section = 'pgbench' AND n1.item = 'nextval' AND n1.variant = '1'
JOIN med n2 ON n2.section = 'pgbench' AND n2.item = 'nextval' AND n2.variant = '2'
ORDER BY l.ord;
\echo '   spread = (slowest - fastest run) / median; best vs best = fastest runs compared, the least'
\echo '   disturbed by anything else on the machine'

SELECT format('1b. Function cost inside one statement: SELECT count(f) FROM generate_series(1, %s), '
              'server-timed, median of %s; net = minus the loop without a call',
              pg_temp.n(calls), reps) AS title
FROM inproc WHERE item = 'empty' \gset
\echo
\echo :title
SELECT i.name AS "function",
       pg_temp.d1(i.ms) AS "ms",
       pg_temp.pct(i.spread) AS "spread",
       CASE WHEN i.item <> 'empty' THEN pg_temp.d1(i.net_ns) END AS "net ns/call",
       CASE WHEN i.item <> 'empty' THEN pg_temp.d1(1e3 / i.net_ns) END AS "net M calls/s",
       CASE WHEN i.item <> 'empty' THEN pg_temp.x(nv.net_ns / i.net_ns) END AS "speed vs nextval (net)",
       CASE WHEN i.item <> 'empty' THEN pg_temp.x(nv.ms / i.ms) END AS "speed vs nextval (whole stmt)"
FROM inproc i, inproc nv
WHERE nv.item = 'nextval'
ORDER BY i.ord;

SELECT format('2. Sort %s rows in memory: EXPLAIN (ANALYZE, TIMING OFF) execution time, median of %s; '
              'table %s MB, prewarmed', pg_temp.n(r.v), (SELECT max(reps) FROM sorts), pg_temp.d1(t.v)) AS title
FROM med r, med t WHERE r.section = 'load' AND r.item = 'rows' AND t.section = 'load' AND t.item = 'table_mb' \gset
\echo
\echo :title
SELECT format('   rows sharing their (physical, logical) word with another node: %s%%',
              to_char(v, 'FM990.0')) AS note
FROM med WHERE section = 'load' AND item = 'shared_wall_pct' \gset
\echo :note
\echo '   key only = SELECT k FROM bench_t ORDER BY k; whole row = SELECT * FROM bench_t ORDER BY k;'
\echo '   scan = the same SELECT without ORDER BY; sort = query - scan'
\echo '   A single by-value column (bigint) is sorted as bare Datums, by-reference types (hlc, uuid) as'
\echo '   tuples (PostgreSQL 15 sorts only by-value single columns as Datums): compare Sort Space.'
\echo '   The whole-row sorts are tuple sorts for every key: that is the like-for-like comparison.'
\echo '   "hlc, no shared walls" is the same order with the node folded into the logical counter, so no'
\echo '   two rows share a (physical, logical) word: the difference to hlc is what ties between nodes'
\echo '   cost, which the abbreviated key (it carries the node id) should make nothing.'
SELECT name AS "key",
       CASE variant WHEN 'key' THEN 'key only' ELSE 'whole row' END AS "query",
       pg_temp.n(ms) AS "query ms",
       pg_temp.pct(spread) AS "spread",
       pg_temp.n(scan_ms) AS "scan ms",
       pg_temp.n(sort_ms) AS "sort ms",
       pg_temp.x(vs_bigint) AS "query vs bigint",
       pg_temp.x(net_vs_bigint) AS "sort vs bigint",
       detail AS "Sort Method / Space (kB)"
FROM sorts ORDER BY variant, ord;

SELECT format('3. Btree CREATE INDEX on %s rows (maintenance_work_mem 1GB, no parallel workers), median of %s',
              pg_temp.n(r.v), (SELECT max(reps) FROM indexes)) AS title
FROM med r WHERE r.section = 'load' AND r.item = 'rows' \gset
\echo
\echo :title
SELECT name AS "key",
       pg_temp.n(build_ms) AS "build ms",
       pg_temp.pct(spread) AS "spread",
       pg_temp.x(build_vs_bigint) AS "build vs bigint",
       pg_temp.d1(mb) AS "size MB",
       pg_temp.x(size_vs_bigint) AS "size vs bigint",
       pg_temp.x(size_vs_uuid) AS "size vs uuid"
FROM indexes ORDER BY ord;

-- The summary: one line per ratio; bar NULL means informational only.
CREATE TEMP VIEW summary (ord, measure, ratio, bar_text, met) AS
WITH pg AS (
    SELECT c.variant, c.v / n.v AS r, c.hi / n.hi AS r_best FROM med c JOIN med n
        ON n.section = 'pgbench' AND n.item = 'nextval' AND n.variant = c.variant
    WHERE c.section = 'pgbench' AND c.item = 'hlc_now'
), ip AS (
    SELECT nv.net_ns / h.net_ns AS r_net, nv.ms / h.ms AS r_whole
    FROM inproc h, inproc nv WHERE h.item = 'hlc_now' AND nv.item = 'nextval'
), so AS (
    SELECT variant, vs_bigint, net_vs_bigint FROM sorts WHERE item = 'h'
), so1 AS (
    SELECT variant, vs_bigint FROM sorts WHERE item = 'h1'
), ix AS (
    SELECT * FROM indexes WHERE item = 'h'
), ix1 AS (
    SELECT * FROM indexes WHERE item = 'h1'
), qs AS (
    SELECT bool_and(detail ~ '^quicksort / Memory / [0-9,]+ kB$') AS ok FROM sorts
)
SELECT 1, 'pgbench calls/s, hlc_now / nextval, 1 client', (SELECT r FROM pg WHERE variant = '1'), '>= 0.80x',
       (SELECT r FROM pg WHERE variant = '1') >= 0.8
UNION ALL
SELECT 2, 'pgbench calls/s, hlc_now / nextval, 2 clients', (SELECT r FROM pg WHERE variant = '2'), '>= 0.80x',
       (SELECT r FROM pg WHERE variant = '2') >= 0.8
UNION ALL
SELECT 2.1, 'pgbench calls/s, same, fastest runs, 1 client', (SELECT r_best FROM pg WHERE variant = '1'), NULL, NULL
UNION ALL
SELECT 2.2, 'pgbench calls/s, same, fastest runs, 2 clients', (SELECT r_best FROM pg WHERE variant = '2'), NULL, NULL
UNION ALL
SELECT 3, 'in-statement speed, hlc_now / nextval, net of loop', r_net, '>= 0.80x', r_net >= 0.8 FROM ip
UNION ALL
SELECT 4, 'in-statement speed, hlc_now / nextval, whole stmt', r_whole, NULL, NULL FROM ip
UNION ALL
SELECT 5, 'sort time hlc / bigint, key only (query)', vs_bigint, '<= 1.20x', vs_bigint <= 1.2
    FROM so WHERE variant = 'key'
UNION ALL
SELECT 6, 'sort time hlc / bigint, key only (sort - scan)', net_vs_bigint, NULL, NULL
    FROM so WHERE variant = 'key'
UNION ALL
SELECT 7, 'sort time hlc / bigint, whole row (query)', vs_bigint, '<= 1.20x', vs_bigint <= 1.2
    FROM so WHERE variant = 'row'
UNION ALL
SELECT 8, 'sort time hlc / bigint, whole row (sort - scan)', net_vs_bigint, NULL, NULL
    FROM so WHERE variant = 'row'
UNION ALL
SELECT 8.1, 'sort time hlc without shared walls / bigint, key only', vs_bigint, NULL, NULL
    FROM so1 WHERE variant = 'key'
UNION ALL
SELECT 8.2, 'sort time hlc without shared walls / bigint, whole row', vs_bigint, NULL, NULL
    FROM so1 WHERE variant = 'row'
UNION ALL
SELECT 9, 'every sort an in-memory quicksort', NULL, 'yes', ok FROM qs
UNION ALL
SELECT 10, 'index build time hlc / bigint', build_vs_bigint, NULL, NULL FROM ix
UNION ALL
SELECT 10.1, 'index build time hlc without shared walls / bigint', build_vs_bigint, NULL, NULL FROM ix1
UNION ALL
SELECT 11, 'index size hlc / bigint', size_vs_bigint, NULL, NULL FROM ix
UNION ALL
SELECT 12, 'index size hlc / uuid', size_vs_uuid, '<= 1.00x', size_vs_uuid <= 1.0 FROM ix;

\echo
\echo 'Summary (bars are informational; "-" = no bar, reported for context)'
SELECT measure AS "measure",
       CASE WHEN ratio IS NULL THEN CASE WHEN met THEN 'yes' ELSE 'NO' END ELSE pg_temp.x3(ratio) END AS "value",
       bar_text AS "bar",
       CASE WHEN bar_text IS NULL THEN NULL WHEN met THEN 'met' ELSE 'MISSED' END AS "met"
FROM summary ORDER BY ord;
