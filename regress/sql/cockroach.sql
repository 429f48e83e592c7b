-- CockroachDB-compatible surface.
SET search_path = public, causal;

-- numeric form: wall nanoseconds, then ten digits of logical counter
SELECT hlc_from_parts(1732590000123, 42, 7)::numeric;
SELECT scale(hlc_from_parts(1732590000123, 42, 7)::numeric) AS ten_logical_digits;
-- the node id is not part of it
SELECT hlc_from_parts(5, 1, 1)::numeric = hlc_from_parts(5, 1, 2)::numeric AS node_not_encoded;
-- numeric order follows hlc order across nodes only by (physical, logical)
SELECT bool_and(a::numeric < b::numeric) AS order_preserved
  FROM (SELECT hlc_from_parts(1700000000000 + g / 3, g % 3, 1) a,
               hlc_from_parts(1700000000000 + (g + 1) / 3, (g + 1) % 3, 1) b
          FROM generate_series(0, 999) g) s;

-- one value per transaction, as in CockroachDB
BEGIN;
SELECT cluster_logical_timestamp() = cluster_logical_timestamp() AS stable_in_transaction;
SELECT cluster_logical_timestamp() AS first \gset
SELECT pg_sleep(0.002);
SELECT cluster_logical_timestamp() = :first AS still_same;
COMMIT;
SELECT cluster_logical_timestamp() > :first AS next_transaction_later;
-- it is the clock's value: close to the wall clock in nanoseconds
SELECT abs(trunc(cluster_logical_timestamp()) / 1e6 - extract(epoch FROM clock_timestamp()) * 1000) < 1000
    AS near_wall_clock;

-- gateway_region() is causal.region
SELECT gateway_region() = current_setting('causal.region') AS region_matches;
