-- The failover pieces one instance can show: the heartbeat register, votes
-- on fences (causal.vote_fence, by the rules of src/core/fencing.hpp), the
-- RPO-zero wait and its errors, the liveness functions and privileges.
-- Runs as causal.region 'test-east'; everything is rolled back.
BEGIN;
SET LOCAL search_path = public, causal;
SET LOCAL client_min_messages = warning;
SELECT plan(47);

-- Heartbeats: a max register, so relayed copies end their loops.
INSERT INTO causal.heartbeats VALUES ('tap-a', 5);
INSERT INTO causal.heartbeats VALUES ('tap-a', 3);
SELECT is((SELECT beat FROM causal.heartbeats WHERE region = 'tap-a'), 5::bigint,
          'an older heartbeat arriving later changes nothing');
UPDATE causal.heartbeats SET beat = 4 WHERE region = 'tap-a';
SELECT is((SELECT beat FROM causal.heartbeats WHERE region = 'tap-a'), 5::bigint, 'nor does an older update');
INSERT INTO causal.heartbeats VALUES ('tap-a', 9);
SELECT is((SELECT beat FROM causal.heartbeats WHERE region = 'tap-a'), 9::bigint, 'a newer one wins');
SELECT ok('causal.heartbeats'::regclass IN (SELECT prrelid FROM pg_publication_rel pr
                                             JOIN pg_publication p ON p.oid = pr.prpubid
                                            WHERE p.pubname = 'causal_mesh')
          OR NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'causal_mesh'),
          'heartbeats travel with causal_mesh wherever it exists');

-- Votes. Three regions; this one is test-east.
DELETE FROM causal.regions;
SELECT causal.register_region('test-east', 1), causal.register_region('test-west', 2),
       causal.register_region('test-south', 3) \g /dev/null
SELECT causal.mesh_view() AS view \gset
SELECT is(causal.vote_fence('test-west', :'view'), 'yes', 'a fence that leaves a majority: yes');
SELECT is(causal.vote_fence('test-west', :'view'), 'yes', 'asked again: yes again');
SELECT is((SELECT count(*) FROM causal.fence_votes), 1::bigint, 'one vote recorded');
SELECT matches(causal.vote_fence('test-south', :'view'), 'voted for another fence',
               'another fence of the same configuration: no (one per configuration)');
SELECT matches(causal.vote_fence('test-east', :'view'), 'does not vote on its own', 'a region does not vote on itself');
SELECT matches(causal.vote_fence('test-west', 'not the view'), 'another configuration',
               'a proposal made against another configuration: no');
SELECT matches(causal.vote_fence('mars', :'view'), 'no such region', 'an unknown region: no');
SELECT causal.fence_region('test-west', 1) \g /dev/null
SELECT isnt(causal.mesh_view(), :'view', 'a fence changes the configuration');
SELECT is(causal.vote_fence('test-west', causal.mesh_view()), 'already fenced', 'a landed fence: already fenced');
SELECT matches(causal.vote_fence('test-south', causal.mesh_view()), 'fewer than a majority',
               'a second fence among three regions would leave one: no');
SELECT is((SELECT count(*) FROM causal.fence_votes), 0::bigint,
          'a vote is released once its fence has landed here, and only then');

-- A fence is applied only on the configuration it was voted on.
DELETE FROM causal.regions;
DELETE FROM causal.fences;
SELECT causal.register_region(r, n) FROM (VALUES ('test-east', 1), ('tap-a', 2), ('tap-b', 3)) v(r, n) \g /dev/null
SELECT causal.mesh_view() AS view3 \gset
SELECT is(causal.vote_fence('tap-a', :'view3'), 'yes', 'a vote in a new configuration');
SELECT throws_ok(format('SELECT causal.apply_fence(%L, %L)', 'tap-b', :'view3'), '55000', NULL,
                 'apply_fence without this region''s vote: 55000');
SELECT causal.register_region('tap-c', 4) \g /dev/null
SELECT throws_ok(format('SELECT causal.apply_fence(%L, %L)', 'tap-a', :'view3'), '40001', NULL,
                 'apply_fence after the configuration changed: 40001, run failover again');
SELECT matches(causal.vote_fence('tap-b', causal.mesh_view()), 'another fence',
               'the vote for tap-a stays pending across the change: no other fence');

-- RPO zero: the wait is for committed writes, and it says when it gives up.
SELECT throws_ok($$SELECT causal.await_replicated()$$, '25000', NULL,
                 'in a transaction that wrote: 25000 (call it after COMMIT)');
SELECT is((SELECT causal.self_fenced()), false, 'not self-fenced: self-fencing is off');
SELECT is((SELECT count(*) FROM causal.liveness() WHERE heard_ms_ago < 0), 0::bigint,
          'liveness() reports what this instance heard (nothing negative)');

-- Privileges: only causal_admin votes.
CREATE ROLE tap_failover_nobody;
GRANT USAGE ON SCHEMA tap_helpers TO tap_failover_nobody;
SET LOCAL ROLE tap_failover_nobody;
SELECT (tap_helpers.error_of($$SELECT causal.vote_fence('test-west', 'x')$$)).state AS nobody_votes,
       (tap_helpers.error_of($$SELECT * FROM causal.fence_votes$$)).state AS nobody_reads \gset
RESET ROLE;
SELECT is(:'nobody_votes'::text, '42501', 'a role without causal_admin cannot vote');
SELECT is(:'nobody_reads'::text, '42501', 'nor read the votes');
SELECT ok(has_function_privilege('causal_admin', 'causal.vote_fence(text, text)', 'EXECUTE'), 'causal_admin votes');


-- A fence carried from the region where it landed (causalctl failover):
-- the rows as that region holds them, through the same registers.
SELECT causal.register_region('tap-far', 41) \g /dev/null
SELECT causal.fence_region('tap-far', 3) \g /dev/null
SELECT row_to_json(r)::text AS far_row, (SELECT json_agg(f)::text FROM causal.fences f WHERE f.region = 'tap-far') AS far_fences
  FROM causal.regions r WHERE r.region = 'tap-far' \gset
-- as if it had not landed here: the region active at epoch 0 again, no fence
DELETE FROM causal.fences WHERE region = 'tap-far';
DELETE FROM causal.regions WHERE region = 'tap-far';
SELECT causal.register_region('tap-far', 41) \g /dev/null
SELECT results_eq(format($$SELECT epoch, state FROM causal.carry_fence(%L, %L)$$, :'far_row', :'far_fences'),
                  $$VALUES (3::bigint, 'fenced')$$, 'carry_fence lands a fence as it stands elsewhere');
SELECT is((SELECT count(*) FROM causal.fences WHERE region = 'tap-far'), 1::bigint, '... with its fence row');
SELECT lives_ok(format($$SELECT causal.carry_fence(%L, %L)$$, :'far_row', :'far_fences'),
                '... and carrying it again changes nothing');
SELECT throws_ok(format($$SELECT causal.carry_fence(%L, '[]')$$, :'far_row'), '22023', NULL,
                 'carry_fence wants the fence row of the state it carries: 22023');
SELECT throws_ok(format($$SELECT causal.carry_fence(jsonb_set(%L, '{state}', '"active"'), %L)$$, :'far_row', :'far_fences'),
                 '22023', NULL, 'and carries only a fenced state: 22023');
SET LOCAL ROLE tap_failover_nobody;
SELECT (tap_helpers.error_of($$SELECT causal.carry_fence('{}', '[]')$$)).state AS nobody_carries,
       (tap_helpers.error_of($$SELECT causal.unregister_region('tap-far')$$)).state AS nobody_removes \gset
RESET ROLE;
SELECT is(:'nobody_carries'::text, '42501', 'a role without causal_admin cannot carry a fence');
SELECT is(:'nobody_removes'::text, '42501', 'nor remove a region');

-- causalctl remove: a fenced region's registration goes, its fences stay.
SELECT causal.register_region('tap-live', 42) \g /dev/null
SELECT throws_ok($$SELECT causal.unregister_region('tap-live')$$, '55000', NULL,
                 'unregister_region refuses an active region: 55000');
SELECT throws_ok($$SELECT causal.unregister_region('test-east')$$, '55000', NULL, 'and this region itself: 55000');
SELECT is((SELECT causal.unregister_region('tap-far')), true, 'it removes a fenced one');
SELECT is((SELECT count(*)::int || ' ' || (SELECT count(*) FROM causal.fences WHERE region = 'tap-far')
             FROM causal.regions WHERE region = 'tap-far'), '0 1', '... whose fence stays');
SELECT is((SELECT epoch FROM causal.removed_regions WHERE region = 'tap-far'), 3::bigint,
          '... and whose removal is a row of causal.removed_regions, at the epoch it had (3, its fence''s)');

-- A removed region is a replicated fact: a late copy of its row, of a
-- register or of its heartbeat, as a peer that had not heard of the
-- removal would send it, brings no ghost back.
SET LOCAL session_replication_role = replica;
INSERT INTO causal.regions (region, epoch, state, fenced_at, changed_at)
VALUES ('tap-far', 1, 'fenced', causal.hlc_now(), causal.hlc_now());
INSERT INTO causal.regions (region, changed_at) VALUES ('tap-far', causal.hlc_now());
INSERT INTO causal.heartbeats (region, beat) VALUES ('tap-far', 1);
RESET session_replication_role;
SELECT is((SELECT count(*)::int FROM causal.regions WHERE region = 'tap-far')
          + (SELECT count(*)::int FROM causal.heartbeats WHERE region = 'tap-far'), 0,
          'a late row, register or heartbeat of a removed region is dropped');
-- The removal arriving from a peer removes a region here too.
SELECT causal.fence_region('tap-live', 1) \g /dev/null
INSERT INTO causal.heartbeats (region, beat) VALUES ('tap-live', 1);
SET LOCAL session_replication_role = replica;
INSERT INTO causal.removed_regions VALUES ('tap-live', 1, causal.hlc_now());
RESET session_replication_role;
SELECT is((SELECT count(*)::int FROM causal.regions WHERE region = 'tap-live')
          + (SELECT count(*)::int FROM causal.heartbeats WHERE region = 'tap-live'), 0,
          'a removal that replication brings removes the region and its heartbeat here');
-- A region of a removed name joins again above the epoch it had.
SELECT is((SELECT epoch FROM causal.register_region('tap-far', 43)),
          (SELECT epoch + 1 FROM causal.removed_regions WHERE region = 'tap-far'),
          'a region of a removed name registers again above its removed epoch');
INSERT INTO causal.heartbeats (region, beat) VALUES ('tap-far', 2);
SELECT is((SELECT beat FROM causal.heartbeats WHERE region = 'tap-far'), 2::bigint, '... and its heartbeats count again');
-- The registers' triggers run with pg_causal's rights: each on its own table alone.
CREATE TABLE tap_failover_not_regions (region text, epoch bigint);
CREATE TRIGGER borrowed BEFORE INSERT ON tap_failover_not_regions
    FOR EACH ROW EXECUTE FUNCTION causal.regions_register();
SELECT throws_ok($$INSERT INTO tap_failover_not_regions VALUES ('x', 0)$$, '39P01',
                 'causal.regions_register() is causal.regions''s trigger',
                 'a register''s trigger function on another table refuses to run: 39P01');
SELECT ok(NOT has_table_privilege('tap_failover_nobody', 'causal.removed_regions', 'INSERT')
          AND NOT has_function_privilege('tap_failover_nobody', 'causal.register_first_copy(anyelement, text[])', 'EXECUTE'),
          'a plain role cannot remove a region by a row, nor call the registers'' helper');

-- A link's last error may quote row values: not PUBLIC's to read.
SELECT ok(NOT has_function_privilege('tap_failover_nobody', 'causal.link_errors()', 'EXECUTE'),
          'a plain role cannot read the links'' last errors');
SELECT ok(has_function_privilege('pg_monitor', 'causal.link_errors()', 'EXECUTE')
          AND has_function_privilege('causal_admin', 'causal.link_errors()', 'EXECUTE'),
          'pg_monitor and causal_admin can');

-- The removal of this region itself, as a survivor's link that outlived it
-- would bring it here: the region keeps its row, and refuses its writers as
-- a fenced region does (before, its row went, and it took writes as a
-- region not yet registered, which no link carried).
CREATE TABLE tap_failover_chat (conversation_id text NOT NULL, body text);
SELECT causal.enable('tap_failover_chat', conversation => 'conversation_id') \g /dev/null
INSERT INTO tap_failover_chat (conversation_id, body) VALUES ('1', 'before the removal');
SET LOCAL session_replication_role = replica;
INSERT INTO causal.removed_regions
SELECT region, epoch, causal.hlc_now() FROM causal.regions WHERE region = 'test-east';
RESET session_replication_role;
SELECT is((SELECT count(*)::int FROM causal.regions WHERE region = 'test-east'), 1,
          'the removal of this region that reaches it keeps its row');
SELECT throws_ok($$INSERT INTO tap_failover_chat (conversation_id, body) VALUES ('1', 'after the removal')$$,
                 '5C001', NULL, '... and its writers are refused: 5C001');

SELECT * FROM finish();
ROLLBACK;
