-- Who may change the fencing state: the role causal_admin, through
-- fence_region, unfence_region and register_region. Everybody may read it;
-- nobody else may change it, directly or through those functions. The
-- quarantine holds message rows: only causal_admin reads it.
BEGIN;
-- operators live in schema causal, like every object of the extension
SET LOCAL search_path = public, causal;
SET LOCAL client_min_messages = warning;
SELECT plan(30);

SELECT ok(EXISTS (SELECT FROM pg_roles WHERE rolname = 'causal_admin'), 'the extension created the role causal_admin');
SELECT results_eq($$SELECT rolcanlogin, rolsuper, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = 'causal_admin'$$,
                  $$VALUES (false, false, false, false)$$, 'causal_admin is NOLOGIN and nothing more');

SELECT results_eq(
  $$SELECT p.proname::text COLLATE "default", p.prosecdef, array_to_string(p.proconfig, ';') COLLATE "default"
      FROM pg_proc p WHERE p.oid IN ('causal.fence_region(text, bigint)'::regprocedure,
                                     'causal.unfence_region(text, bigint)'::regprocedure,
                                     'causal.register_region(text, int)'::regprocedure)
     ORDER BY 1$$,
  $$VALUES ('fence_region', true, 'search_path=pg_catalog, pg_temp'),
           ('register_region', true, 'search_path=pg_catalog, pg_temp'),
           ('unfence_region', true, 'search_path=pg_catalog, pg_temp')$$,
  'fence_region, unfence_region and register_region are SECURITY DEFINER with a fixed search_path');
SELECT is((SELECT count(*) FROM pg_proc p, aclexplode(p.proacl) a
            WHERE p.oid IN ('causal.fence_region(text, bigint)'::regprocedure,
                            'causal.unfence_region(text, bigint)'::regprocedure,
                            'causal.register_region(text, int)'::regprocedure)
              AND a.privilege_type = 'EXECUTE' AND a.grantee = 0), 0::bigint,
          'PUBLIC may not execute them');

CREATE TABLE public.fencing_chat (conversation_id bigint, body text);
SELECT causal.enable('public.fencing_chat', 'conversation_id') \g /dev/null
INSERT INTO public.fencing_chat (conversation_id, body) VALUES (1, 'hello');
SELECT causal.register_region('test-west', 2) \g /dev/null

CREATE ROLE causal_tap_user;
GRANT SELECT, INSERT ON public.fencing_chat TO causal_tap_user;
CREATE ROLE causal_tap_admin IN ROLE causal_admin;
GRANT SELECT, INSERT ON public.fencing_chat TO causal_tap_admin;

-- ==== a plain role ============================================================
SET LOCAL ROLE causal_tap_user;
SELECT lives_ok('SELECT * FROM causal.regions', 'a plain role can read causal.regions');
SELECT lives_ok('SELECT * FROM causal.fences', 'and causal.fences');
SELECT is((SELECT local_inserts FROM causal.stat_tables WHERE relid = 'public.fencing_chat'::regclass), 1::bigint,
          'and causal.stat_tables');
SELECT ok(NOT causal.is_orphan('test-east', 0, causal.hlc_now()), 'and may ask causal.is_orphan()');
SELECT throws_ok($$SELECT causal.fence_region('test-east', 1)$$, '42501', NULL, 'a plain role cannot fence: 42501');
SELECT throws_ok($$SELECT causal.unfence_region('test-west', 1)$$, '42501', NULL, 'nor unfence: 42501');
SELECT throws_ok($$SELECT causal.register_region('test-north', 3)$$, '42501', NULL, 'nor register a region: 42501');
SELECT throws_ok($$INSERT INTO causal.regions (region, epoch, state, changed_at) VALUES ('test-east', 9, 'fenced', causal.hlc_now())$$,
                 '42501', NULL, 'nor insert into causal.regions: 42501');
SELECT throws_ok($$UPDATE causal.regions SET state = 'fenced', epoch = epoch + 1$$,
                 '42501', NULL, 'nor update causal.regions: 42501');
SELECT throws_ok($$DELETE FROM causal.regions$$, '42501', NULL, 'nor delete from causal.regions: 42501');
SELECT throws_ok($$INSERT INTO causal.fences (region, epoch, fenced_at) VALUES ('test-west', 0, causal.hlc_now())$$,
                 '42501', NULL, 'nor insert into causal.fences: 42501');
SELECT throws_ok($$UPDATE causal.fences SET fenced_at = causal.hlc_now()$$, '42501', NULL, 'nor update causal.fences: 42501');
SELECT throws_ok($$DELETE FROM causal.fences$$, '42501', NULL, 'nor delete from causal.fences: 42501');
SELECT throws_ok($$TRUNCATE causal.regions, causal.fences$$, '42501', NULL, 'nor truncate them: 42501');
SELECT throws_ok($$SELECT * FROM causal.quarantine$$, '42501', NULL, 'a plain role cannot read causal.quarantine: 42501');
SELECT throws_ok($$CREATE FUNCTION causal.hlc_now_hijack() RETURNS int LANGUAGE sql AS 'SELECT 1'$$, '42501', NULL,
                 'nor create objects in schema causal: 42501');
SELECT lives_ok($$INSERT INTO public.fencing_chat (conversation_id, body) VALUES (1, 'from a plain role')$$,
                'a plain role with INSERT on a message table can send messages (the trigger reads the fencing state)');
SELECT is((SELECT crdb_region FROM public.fencing_chat WHERE body = 'from a plain role'), 'test-east',
          'stamped like any other');
RESET ROLE;
SELECT is((SELECT count(*) FROM causal.regions WHERE region = 'test-east'), 0::bigint,
          'the plain role changed nothing');

-- ==== a member of causal_admin ================================================
SET LOCAL ROLE causal_tap_admin;
SELECT results_eq($$SELECT region, epoch, state FROM causal.fence_region('test-east', 1)$$,
                  $$VALUES ('test-east', 1::bigint, 'fenced')$$, 'a member of causal_admin can fence');
SELECT throws_ok($$INSERT INTO public.fencing_chat (conversation_id, body) VALUES (1, 'fenced')$$, '5C001', NULL,
                 'and the fence holds for the admin too');
SELECT results_eq($$SELECT region, epoch, state FROM causal.unfence_region('test-east', 2)$$,
                  $$VALUES ('test-east', 2::bigint, 'active')$$, 'and unfence');
SELECT results_eq($$SELECT region, node_id FROM causal.register_region('test-north', 3)$$,
                  $$VALUES ('test-north', 3)$$, 'and register a region');
SELECT lives_ok('SELECT * FROM causal.quarantine', 'and read causal.quarantine');
SELECT throws_ok($$UPDATE causal.regions SET epoch = 9$$, '42501', NULL,
                 'but not write causal.regions directly: only through the functions');
RESET ROLE;
SELECT results_eq($$SELECT region, epoch, state FROM causal.regions ORDER BY region$$,
                  $$VALUES ('test-east', 2::bigint, 'active'), ('test-north', 0, 'active'), ('test-west', 0, 'active')$$,
                  'causal.regions holds what the admin did');

SELECT * FROM finish();
ROLLBACK;
