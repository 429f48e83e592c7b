-- After ALTER EXTENSION pg_causal UPDATE from 0.2.0; :before and :after are
-- the state upgrade.t read before it and after it.
SET search_path = public;  -- no causal: 0.3.0's operators are found anyway
SELECT plan(15);
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'pg_causal'),
          (SELECT default_version FROM pg_available_extensions WHERE name = 'pg_causal'),
          'the extension is at the version this build installs');
SELECT is(:'meta_version', (SELECT default_version FROM pg_available_extensions WHERE name = 'pg_causal'),
          'META.json gives the same version');
SELECT is(:'after'::text,
  :'before'::text,
  'every message, hlc value, fence and quarantined row is as it was, and no table or index was rewritten (same relfilenodes)');
SELECT lives_ok($$SELECT bt_index_check('chat.clock_h', true)$$, 'the hlc index passes amcheck, every row found in it');
SET enable_seqscan = off;
SELECT is((SELECT id FROM chat.clock WHERE h = causal.hlc_from_parts(1700000000500, 500 % 3, 3)), 500,
          'and answers through the index, with the operator now in pg_catalog');
RESET enable_seqscan;
SELECT is(ARRAY(SELECT DISTINCT o.oprnamespace::regnamespace::text FROM pg_operator o
                 WHERE o.oprleft = 'causal.hlc'::regtype AND o.oprright = 'causal.hlc'::regtype),
          ARRAY['pg_catalog'], 'the hlc operators moved to pg_catalog');
SELECT is((SELECT max(h) FROM chat.clock), causal.hlc_from_parts(1700000001000, 1000 % 3, 3), 'max(hlc) without causal on the path');
SELECT has_column('chat', 'messages', 'written_by', 'message tables gained written_by');
SELECT is(ARRAY(SELECT pubname || ' ' || coalesce(rowfilter, '-') FROM pg_publication_tables
                 WHERE schemaname = 'chat' AND tablename = 'messages' ORDER BY pubname),
          ARRAY['causal_copy -', 'causal_mesh -', 'causal_messages (COALESCE(written_by, crdb_region) = ''up-east''::text)'],
          'the table is in causal_messages and causal_copy, and stays in causal_mesh, which peers not yet moved take');
SELECT causal.mesh_publication(false) \g /dev/null
SELECT is(ARRAY(SELECT pubname FROM pg_publication_tables WHERE schemaname = 'chat' AND tablename = 'messages'
                 ORDER BY pubname),
          ARRAY['causal_copy', 'causal_messages']::name[],
          'once causalctl init has moved every link, causal_mesh stops carrying it');
SELECT causal.enable('chat.messages', 'conversation_id') \g /dev/null
SELECT is((SELECT count(*) FROM pg_publication_tables WHERE pubname = 'causal_mesh' AND schemaname = 'chat'), 0::bigint,
          'and a later enable() does not put it back');
SELECT is((SELECT rowfilter FROM pg_publication_tables WHERE pubname = 'causal_mesh' AND tablename = 'heartbeats'),
          '(region = ''up-east''::text)', 'causal_mesh publishes this region''s heartbeats only');
SELECT lives_ok($$INSERT INTO chat.messages (conversation_id, sender, body) VALUES (1, 'bo', 'after the update')$$,
                'a message table takes new messages');
SELECT is((SELECT causal.hlc_node(hlc) FROM chat.messages WHERE body = 'after the update'), 3, 'stamped by this node');
SELECT lives_ok($$DELETE FROM chat.messages WHERE body = 'message 8'$$, 'and deletes them into tombstones');
SELECT * FROM finish();
