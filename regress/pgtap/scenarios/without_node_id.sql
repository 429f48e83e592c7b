SELECT plan(7);
SELECT throws_ok('SELECT causal.hlc_now()', '55000', 'causal.node_id is not set',
                 'hlc_now() needs a node id');
SELECT throws_ok('SELECT causal.hlc_observe(''1.00000@1'')', '55000', 'causal.node_id is not set',
                 'so does hlc_observe()');
SELECT throws_ok('SELECT causal.gateway_region()', '55000', 'causal.region is not set',
                 'gateway_region() needs causal.region');
SELECT is((SELECT node_id FROM causal.clock_status), NULL, 'clock_status still reports, with no node id');

ALTER SYSTEM SET causal.node_id = 5;
ALTER SYSTEM SET causal.region = 'test-late';
SELECT pg_reload_conf();
-- the reload reaches this backend asynchronously
DO $$ BEGIN
  FOR i IN 1..100 LOOP
    EXIT WHEN current_setting('causal.node_id') = '5';
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
SELECT is(causal.hlc_node(causal.hlc_now()), 5, 'after a reload the clock stamps the new node id');
SELECT is(causal.gateway_region(), 'test-late', 'and the region');
ALTER SYSTEM RESET causal.node_id;
ALTER SYSTEM RESET causal.region;
SELECT pg_reload_conf();
SELECT is(ARRAY(SELECT name FROM pg_settings WHERE name LIKE 'causal.%' ORDER BY name),
          ARRAY['causal.allow_drop_extension', 'causal.database', 'causal.heartbeat_interval',
                'causal.max_clock_offset', 'causal.max_hlc_lead', 'causal.node_id', 'causal.notify_payload',
                'causal.region', 'causal.relay_after', 'causal.self_fence_after'],
          'the settings: clock, region, liveness, relay, self-fencing, NOTIFY, and the guards');
SELECT * FROM finish();
