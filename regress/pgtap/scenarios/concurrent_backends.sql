-- Run by concurrent_backends.t after pgbench filled table issued.
SET search_path = public, causal;
SELECT plan(5);
SELECT cmp_ok((SELECT count(DISTINCT backend) FROM issued)::int, '>=', 6,
              'every pgbench client issued timestamps');
SELECT cmp_ok((SELECT count(*) FROM issued), '>', 10000::bigint, 'under real contention');
SELECT is((SELECT count(DISTINCT h) FROM issued), (SELECT count(*) FROM issued),
          'no value was issued twice');
SELECT is((SELECT count(*) FROM (SELECT h, lag(h) OVER (PARTITION BY backend ORDER BY seq) AS previous
                                   FROM issued) s
            WHERE previous >= h), 0::bigint,
          'each backend''s values strictly increase');
SELECT is((SELECT array_agg(DISTINCT hlc_node(h)) FROM issued), ARRAY[2],
          'all carry this instance''s node id');
SELECT * FROM finish();
