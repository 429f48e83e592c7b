-- Schema and helpers for run-bench. Every figure is measured by the server
-- itself (clock_timestamp() deltas, EXPLAIN ANALYZE), so client round trips
-- and psql's own work never enter a timing.

CREATE EXTENSION pg_causal;
CREATE EXTENSION pg_prewarm;

-- The nextval() baseline as applications create it: CACHE 1, so every call
-- goes to shared state, as every hlc_now() does.
CREATE SEQUENCE bench_seq;

CREATE SCHEMA bench;

-- One row per measurement; the report takes medians over rep.
CREATE TABLE bench.result (
    section text NOT NULL,
    item    text NOT NULL,
    variant text NOT NULL DEFAULT '',
    rep     int  NOT NULL DEFAULT 1,
    value   float8 NOT NULL,
    detail  text
);

CREATE FUNCTION bench.median(float8[]) RETURNS float8
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v) FROM unnest($1) v $$;

-- Wall time of one statement, inside the server.
CREATE FUNCTION bench.time_ms(q text) RETURNS float8
    LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
BEGIN
    t0 := clock_timestamp();
    EXECUTE q;
    RETURN 1000 * extract(epoch FROM clock_timestamp() - t0)::float8;
END $$;

-- Runs q to completion under EXPLAIN ANALYZE (rows are produced but not
-- sent, so the client never paces the sort) and returns the execution time
-- with what the Sort node reports about itself. TIMING OFF: per-node clock
-- reads would cost more than the comparisons being measured.
CREATE FUNCTION bench.explain_ms(q text,
    OUT ms float8, OUT sort_method text, OUT sort_space_kb bigint, OUT sort_space_type text)
    LANGUAGE plpgsql AS $$
DECLARE
    plan jsonb;
    sort_node jsonb;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ' || q INTO plan;
    ms := (plan -> 0 ->> 'Execution Time')::float8;
    sort_node := jsonb_path_query_first(plan, 'lax $.** ? (@."Node Type" == "Sort")');
    sort_method := sort_node ->> 'Sort Method';
    sort_space_kb := (sort_node ->> 'Sort Space Used')::bigint;
    sort_space_type := sort_node ->> 'Sort Space Type';
END $$;
