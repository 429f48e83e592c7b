-- Run on the primary by standby.t; :standby connects to its hot standby.
SELECT plan(4);
SELECT set_config('causal_tap.standby', :'standby', false) \g /dev/null
CREATE FUNCTION pg_temp.on_standby(query text) RETURNS text LANGUAGE sql AS $$
  SELECT v FROM dblink(current_setting('causal_tap.standby'), query) AS t(v text)
$$;
SELECT is(pg_temp.on_standby('SELECT pg_is_in_recovery()::text'), 'true', 'the other instance is a hot standby');
SELECT throws_ok($$SELECT pg_temp.on_standby('SELECT causal.hlc_now()::text')$$, '25006',
                 'cannot issue hlc timestamps during recovery', 'hlc_now() refuses on a standby');
SELECT throws_ok($$SELECT pg_temp.on_standby('SELECT causal.cluster_logical_timestamp()::text')$$, '25006', NULL,
                 'so does cluster_logical_timestamp()');
SELECT is(pg_temp.on_standby($$SELECT '1732590000123.00042@7'::causal.hlc::text$$), '1732590000123.00042@7',
          'the type itself works there');
SELECT * FROM finish();
