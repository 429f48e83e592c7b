-- :rows rows (run-bench: 5,000,000) of an hlc, a bigint that orders exactly
-- like it, and a uuid, stored in random order so that no sort gets presorted
-- input.
--
-- The hlc values are what three busy nodes would issue: each node about
-- 3 events per ms, a few ms of jitter, a small logical counter. Values are
-- unique, as a clock never issues one twice (duplicates would let btree
-- deduplication shrink the hlc index and flatter it against uuid). As on
-- real nodes whose counters restart every ms, different nodes often issue
-- the same (physical, logical) word: about 44% of rows share theirs with
-- another node. The abbreviated key carries the node id (below 63), so it
-- breaks these ties itself; h1 below is the control for that.
--
-- Per node, (ms, logical) = (base + j/3 + r, j%3 + 3r) with r in 0..3 maps
-- event j one-to-one, so values never repeat. The bigint is the hlc's
-- (physical << 16 | logical) word times 4 plus the node (1..3): the same
-- order, in 62 bits.
--
-- h1 is h with the node folded into the logical counter (3 * logical +
-- node - 1): still the same order, but no two rows share a wall word. Set
-- against h it shows what ties between nodes cost the sort: nothing, as
-- long as the abbreviated key includes the node.

CREATE TABLE bench_t (
    h causal.hlc NOT NULL,
    b bigint NOT NULL,
    u uuid NOT NULL,
    h1 causal.hlc NOT NULL
) WITH (autovacuum_enabled = off);

INSERT INTO bench_t (h, b, u, h1)
SELECT causal.hlc_from_parts(ms, lg, nd),
       (((ms << 16) | lg) << 2) | nd,
       gen_random_uuid(),
       causal.hlc_from_parts(ms, 3 * lg + nd - 1, nd)
FROM (
    SELECT 1767225600000 + j / 3 + r AS ms,   -- 2026-01-01 onwards
           (j % 3 + 3 * r)::int AS lg,
           nd
    FROM (
        -- OFFSET 0: r must be drawn once per row, not once per use
        SELECT i / 3 AS j, (i % 3 + 1)::int AS nd, floor(random() * 4)::bigint AS r
        FROM generate_series(0, :rows - 1) i
        OFFSET 0
    ) g
) s
ORDER BY random();

-- Hint bits and visibility now, so that no timed scan writes them.
VACUUM (FREEZE, ANALYZE) bench_t;
CHECKPOINT;
SELECT pg_prewarm('bench_t') \gset

-- The premise of the sort comparison: in bigint order h and h1 strictly
-- increase, i.e. all three give the same order and no value repeats.
-- The same pass counts rows whose wall word (the abbreviated key) another
-- row shares.
SELECT count(*) AS rows,
       count(*) FILTER (WHERE prev_h IS NOT NULL AND NOT (prev_h OPERATOR(pg_catalog.<) h
                                                       AND prev_h1 OPERATOR(pg_catalog.<) h1)) AS out_of_order,
       count(*) FILTER (WHERE prev_b >> 2 = b >> 2 OR next_b >> 2 = b >> 2) AS shared_wall
FROM (SELECT h, b, h1, lag(h) OVER w AS prev_h, lag(h1) OVER w AS prev_h1,
             lag(b) OVER w AS prev_b, lead(b) OVER w AS next_b
      FROM bench_t WINDOW w AS (ORDER BY b)) s \gset check_
SELECT :check_rows = :rows AND :check_out_of_order = 0 AS load_ok \gset
\if :load_ok
\else
    \echo 'load.sql: expected' :rows 'rows in identical h, h1 and b order, got' :check_rows 'rows,' :check_out_of_order 'out of order'
    SELECT 1 / 0;
\endif

INSERT INTO bench.result (section, item, value) VALUES
    ('load', 'rows', :check_rows),
    ('load', 'shared_wall_pct', 100.0 * :check_shared_wall / :check_rows),
    ('load', 'table_mb', pg_relation_size('bench_t') / 1048576.0);
