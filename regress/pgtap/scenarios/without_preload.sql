SELECT plan(6);
SELECT lives_ok('CREATE EXTENSION pg_causal', 'the extension installs without preloading');
SELECT is('1732590000123.00042@7'::causal.hlc::text, '1732590000123.00042@7', 'the type works');
SELECT throws_ok('SELECT causal.hlc_now()', '55000', 'the pg_causal clock is not running',
                 'hlc_now() says the clock is not running');
SELECT throws_ok('SELECT causal.hlc_observe(''1.00000@1'')', '55000', 'the pg_causal clock is not running',
                 'so does hlc_observe()');
SELECT throws_ok('SELECT * FROM causal.clock_status', '55000', 'the pg_causal clock is not running',
                 'and clock_status');
CREATE FUNCTION pg_temp.hint_of(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE hint text;
BEGIN
  EXECUTE query;
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
  RETURN hint;
END $$;
SELECT matches(pg_temp.hint_of('SELECT causal.hlc_now()'), 'shared_preload_libraries',
               'the HINT names shared_preload_libraries');
SELECT * FROM finish();
