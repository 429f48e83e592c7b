-- Causal message tables on the local path: what causal.enable() builds and
-- refuses, what causal.disable() undoes, and the rules of the insert trigger
-- in an ordinary session (stamping, deps, limits, retries, updates, the
-- epoch fence), the converging registers causal.regions and causal.fences,
-- and the per-table counters. The instance has causal.node_id = 1 and
-- causal.region = 'test-east', which is not registered at the start.
BEGIN;
-- operators live in schema causal, like every object of the extension
SET LOCAL search_path = public, causal;
SET LOCAL client_min_messages = warning;
SELECT plan(131);

-- pg_causal's part of a table: columns, indexes, triggers, publications.
CREATE FUNCTION pg_temp.columns_of(rel regclass)
RETURNS TABLE (name text, type regtype, not_null bool, default_value text) LANGUAGE sql AS $$
  SELECT a.attname::text, a.atttypid::regtype, a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
$$;
CREATE FUNCTION pg_temp.indexes_of(rel regclass) RETURNS TABLE (index oid, definition text)
LANGUAGE sql AS $$
  SELECT i.indexrelid::oid, pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = rel
$$;
CREATE FUNCTION pg_temp.causal_triggers(rel regclass) RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM pg_trigger WHERE tgrelid = rel AND tgname = 'causal_message'
$$;
-- In causal_messages, where its rows are published, and causal_copy, which
-- a first copy reads.
CREATE FUNCTION pg_temp.in_mesh(rel regclass) RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
   WHERE p.pubname IN ('causal_messages', 'causal_copy') AND pr.prrelid = rel
$$;
CREATE FUNCTION pg_temp.wall_ms() RETURNS bigint LANGUAGE sql AS $$
  SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint
$$;
CREATE FUNCTION pg_temp.local_inserts(rel regclass) RETURNS bigint LANGUAGE sql AS $$
  SELECT coalesce((SELECT local_inserts FROM causal.stat_tables WHERE relid = rel), 0)
$$;

-- ==== causal.enable() ========================================================

CREATE SCHEMA tap;
CREATE TABLE tap.chat (conversation_id bigint, sender text, body text);
INSERT INTO tap.chat VALUES (1, 'ana', 'written before enable'), (2, 'bo', 'also before');

SELECT is(causal.enable('tap.chat', conversation => 'conversation_id'), 'tap.chat'::regclass,
          'enable() returns the table it enabled');

SELECT results_eq(
  $$SELECT name, type, not_null FROM pg_temp.columns_of('tap.chat') ORDER BY name$$,
  $$VALUES ('body', 'text'::regtype, false), ('conversation_id', 'bigint', false), ('copies', 'causal.copy[]', true),
           ('crdb_region', 'text', true), ('deleted_at', 'causal.hlc', false), ('deps', 'causal.hlc[]', true),
           ('epoch', 'bigint', true), ('hlc', 'causal.hlc', true), ('msg_id', 'uuid', true), ('sender', 'text', false),
           ('written_by', 'text', false)$$,
  'enable() adds msg_id uuid, hlc, deps hlc[], crdb_region text, epoch bigint, copies, all NOT NULL, deleted_at, written_by, and keeps the own columns');
SELECT matches((SELECT default_value FROM pg_temp.columns_of('tap.chat') WHERE name = 'msg_id'),
               '^((pg_catalog\.)?gen_random_uuid|(causal\.)?new_msg_id)\(\)$',
               'msg_id defaults to a generated uuid (gen_random_uuid() or causal.new_msg_id())');
SELECT matches((SELECT default_value FROM pg_temp.columns_of('tap.chat') WHERE name = 'deps'),
               $$^'\{\}'::$$, 'deps defaults to the empty array');
SELECT is((SELECT count(*) FROM pg_temp.columns_of('tap.chat')
            WHERE name IN ('hlc', 'crdb_region', 'epoch') AND default_value IS NOT NULL), 0::bigint,
          'hlc, crdb_region and epoch have no default: the trigger stamps them');

SELECT results_eq(
  $$SELECT i.indisunique, i.indnatts::int, a.attname::text COLLATE "default", i.indpred IS NULL, c.relreplident::text
      FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
     WHERE i.indrelid = 'tap.chat'::regclass AND i.indisreplident$$,
  $$VALUES (true, 1, 'msg_id', true, 'i')$$,
  'a unique index on msg_id alone is the replica identity');
SELECT is((SELECT count(*) FROM pg_index i
            WHERE i.indrelid = 'tap.chat'::regclass AND i.indpred IS NULL AND i.indexprs IS NULL
              AND i.indkey::text = (SELECT string_agg(attnum::text, ' ' ORDER BY attname) FROM pg_attribute
                                     WHERE attrelid = 'tap.chat'::regclass AND attname IN ('conversation_id', 'hlc'))),
          1::bigint, 'an index on (conversation, hlc)');

SELECT results_eq(
  $$SELECT tgname::text COLLATE "default", tgenabled::text, tgtype::int,
           tgfoid = CASE tgname WHEN 'causal_message' THEN 'causal.message_trigger'::regproc
                                WHEN 'causal_message_stored' THEN 'causal.message_stored'::regproc
                                ELSE 'causal.message_truncate'::regproc END, tgnargs::int
      FROM pg_trigger WHERE tgrelid = 'tap.chat'::regclass AND NOT tgisinternal ORDER BY tgname$$,
  -- tgtype bits: 1 row, 2 before, 4 insert, 8 delete, 16 update, 32 truncate
  $$VALUES ('causal_message', 'A', 1 | 2 | 4 | 8 | 16, true, 2),
           ('causal_message_stored', 'A', 1 | 4 | 8, true, 2),
           ('causal_message_truncate', 'A', 2 | 32, true, 0)$$,
  'three triggers, enabled ALWAYS: causal_message BEFORE INSERT OR UPDATE OR DELETE and causal_message_stored AFTER INSERT OR DELETE for each row, causal_message_truncate BEFORE TRUNCATE');
SELECT matches((SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'tap.chat'::regclass AND tgname = 'causal_message'),
               $$message_trigger\('conversation_id', 'quiet'\)$$,
               'the trigger names the conversation column and is quiet by default');
SELECT set_eq(
  $$SELECT pubname::text, schemaname::text || '.' || tablename::text, rowfilter FROM pg_publication_tables
     WHERE pubname IN ('causal_mesh', 'causal_messages', 'causal_copy') AND schemaname IN ('tap', 'causal')$$,
  $$VALUES ('causal_messages', 'tap.chat', '(COALESCE(written_by, crdb_region) = ''test-east''::text)'), ('causal_copy', 'tap.chat', NULL),
           ('causal_mesh', 'causal.regions', NULL), ('causal_mesh', 'causal.fences', NULL),
           ('causal_mesh', 'causal.removed_regions', NULL),
           ('causal_mesh', 'causal.heartbeats', '(region = ''test-east''::text)')$$,
  'the table is in causal_messages (the rows this region wrote) and causal_copy; causal_mesh has pg_causal''s tables (heartbeats: this region''s)');
SELECT results_eq(
  $$SELECT count(*), count(DISTINCT hlc), count(DISTINCT msg_id), bool_and(crdb_region = 'test-east'),
           bool_and(epoch = 0), bool_and(causal.hlc_node(hlc) = 1), bool_and(deps = '{}')
      FROM tap.chat$$,
  $$VALUES (2::bigint, 2::bigint, 2::bigint, true, true, true, true)$$,
  'rows from before enable() are stamped: distinct hlc and msg_id, this region, its epoch (0, unregistered), no deps');

-- idempotent: a second call changes nothing
CREATE TEMP TABLE chat_columns AS SELECT * FROM pg_temp.columns_of('tap.chat');
CREATE TEMP TABLE chat_indexes AS SELECT * FROM pg_temp.indexes_of('tap.chat');
CREATE TEMP TABLE chat_rows AS SELECT msg_id, hlc, crdb_region, epoch FROM tap.chat;
SELECT lives_ok($$SELECT causal.enable('tap.chat', conversation => 'conversation_id')$$,
                'enable() can be called again');
SELECT set_eq('SELECT * FROM pg_temp.columns_of(''tap.chat'')', 'SELECT * FROM chat_columns',
              'a second enable() leaves the columns as they were');
SELECT set_eq('SELECT * FROM pg_temp.indexes_of(''tap.chat'')', 'SELECT * FROM chat_indexes',
              'a second enable() leaves the same indexes, no new ones');
SELECT is(pg_temp.causal_triggers('tap.chat'), 1::bigint, 'a second enable() leaves one trigger');
SELECT is(pg_temp.in_mesh('tap.chat'), 2::bigint, 'a second enable() leaves the table in causal_messages and causal_copy once');
SELECT set_eq('SELECT msg_id, hlc, crdb_region, epoch FROM tap.chat', 'SELECT * FROM chat_rows',
              'a second enable() does not stamp the rows again');
SELECT causal.enable('tap.chat', conversation => 'conversation_id', notify => true) \g /dev/null
SELECT matches((SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'tap.chat'::regclass AND tgname = 'causal_message'),
               $$message_trigger\('conversation_id', 'notify'\)$$, 'enable(notify => true) makes the trigger notify');
SELECT causal.enable('tap.chat', conversation => 'conversation_id', notify => false) \g /dev/null
SELECT is(pg_temp.causal_triggers('tap.chat'), 1::bigint, 'switching notify on and off leaves one trigger');

-- ORDER BY hlc within a conversation comes from the (conversation, hlc) index.
-- Bitmap and sequential scans off: whether they are cheaper for this data is
-- the planner's business; that the index can give the order is ours.
CREATE TABLE tap.history (conversation_id bigint, body text);
SELECT causal.enable('tap.history', 'conversation_id') \g /dev/null
INSERT INTO tap.history (conversation_id, body) SELECT g % 50, g::text FROM generate_series(1, 2000) g;
ANALYZE tap.history;
SELECT c.relname AS history_index FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = 'tap.history'::regclass AND i.indnatts = 2 AND i.indpred IS NULL AND i.indexprs IS NULL \gset
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT matches(tap_helpers.plan_of('SELECT * FROM tap.history WHERE conversation_id = 7 ORDER BY hlc'),
               'Index Scan using ' || :'history_index', 'one conversation in hlc order is read from the (conversation, hlc) index');
SELECT doesnt_match(tap_helpers.plan_of('SELECT * FROM tap.history WHERE conversation_id = 7 ORDER BY hlc'),
                    'Sort', 'with no sort: the index gives the order');
SELECT matches(tap_helpers.plan_of('SELECT * FROM tap.history WHERE conversation_id = 7 ORDER BY hlc DESC LIMIT 20'),
               'Index Scan Backward using ' || :'history_index', 'the latest page of a conversation scans it backward');
SELECT doesnt_match(tap_helpers.plan_of('SELECT * FROM tap.history WHERE conversation_id = 7 ORDER BY hlc DESC LIMIT 20'),
                    'Sort', 'with no sort either');
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT is((SELECT array_agg(body::int ORDER BY hlc) FROM tap.history WHERE conversation_id = 7),
          (SELECT array_agg(g ORDER BY g) FROM generate_series(1, 2000) g WHERE g % 50 = 7),
          'hlc order within a conversation is the order the messages were sent');

-- what enable() refuses
CREATE TABLE tap.no_conversation (body text);
SELECT throws_ok($$SELECT causal.enable('tap.no_conversation', 'conversation_id')$$, '42703', NULL,
                 'enable() with a conversation column that does not exist: 42703');
CREATE TABLE tap.partitioned (conversation_id bigint, body text) PARTITION BY HASH (conversation_id);
SELECT throws_ok($$SELECT causal.enable('tap.partitioned', 'conversation_id')$$, '0A000', NULL,
                 'enable() on a partitioned table: 0A000');
CREATE VIEW tap.chat_view AS SELECT conversation_id, body FROM tap.chat;
SELECT throws_ok($$SELECT causal.enable('tap.chat_view', 'conversation_id')$$, '42809', NULL,
                 'enable() on a view: 42809');
CREATE TABLE tap.by_place (conversation_id point, body text);
SELECT throws_ok($$SELECT causal.enable('tap.by_place', 'conversation_id')$$, '42804', NULL,
                 'enable() with a conversation column of a type without a btree opclass (point): 42804');
CREATE TABLE tap.text_hlc (conversation_id bigint, hlc text);
SELECT throws_ok($$SELECT causal.enable('tap.text_hlc', 'conversation_id')$$, '42804',
                 'column "hlc" of table tap.text_hlc has type text, not causal.hlc',
                 'enable() with an existing hlc column of another type: 42804');
SELECT throws_ok($$SELECT causal.enable('tap.does_not_exist', 'conversation_id')$$, '42P01', NULL,
                 'enable() on a table that does not exist: 42P01');
CREATE TABLE tap.serial_keyed (id bigserial PRIMARY KEY, conversation_id bigint, body text);
SELECT throws_ok($$SELECT causal.enable('tap.serial_keyed', 'conversation_id')$$, '42P16',
                 'cannot enable tap.serial_keyed: unique index tap.serial_keyed_pkey does not include msg_id',
                 'enable() refuses a local serial key: rows of different regions would collide on it');
CREATE TABLE tap.keyed_by_msg (conversation_id bigint, msg_id uuid, body text, PRIMARY KEY (conversation_id, msg_id));
SELECT lives_ok($$SELECT causal.enable('tap.keyed_by_msg', 'conversation_id')$$,
                'a unique key that includes msg_id is fine');
SELECT throws_ok($$SELECT causal.enable('tap.text_hlc', 'hlc')$$, '42P16', NULL,
                 'enable() with one of pg_causal''s own columns as the conversation: 42P16');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgname = 'causal_message'
            AND tgrelid IN ('tap.no_conversation'::regclass, 'tap.by_place'::regclass, 'tap.text_hlc'::regclass)),
          0::bigint, 'a refused enable() leaves no trigger behind');
SELECT is((SELECT count(*) FROM pg_attribute WHERE attrelid = 'tap.by_place'::regclass AND attname = 'msg_id'),
          0::bigint, 'nor columns');

-- what enable() must take
CREATE TABLE tap.by_handle (conversation_id varchar(64), body text);
SELECT lives_ok($$SELECT causal.enable('tap.by_handle', 'conversation_id')$$,
                'enable() takes a varchar conversation column (btree-indexable through text_ops)');
CREATE TABLE tap.customer_support_conversation_messages_2024 (conversation_id bigint, body text);
CREATE TABLE tap.customer_support_conversation_messages_2025 (conversation_id bigint, body text);
SELECT causal.enable('tap.customer_support_conversation_messages_2024', 'conversation_id') \g /dev/null
SELECT lives_ok($$SELECT causal.enable('tap.customer_support_conversation_messages_2025', 'conversation_id')$$,
                'enable() takes a second table whose name shares its first 40 characters with an enabled one');
CREATE TABLE tap.own_key (conversation_id bigint, msg_id uuid, body text);
INSERT INTO tap.own_key VALUES (1, gen_random_uuid(), 'x');
SELECT lives_ok($$SELECT causal.enable('tap.own_key', 'conversation_id')$$,
                'enable() takes a table whose own msg_id uuid column is nullable but holds no NULL');

-- ==== causal.disable() =======================================================

CREATE TABLE tap.gone (conversation_id bigint, body text);
SELECT causal.enable('tap.gone', 'conversation_id') \g /dev/null
INSERT INTO tap.gone (conversation_id, body) VALUES (1, 'one'), (1, 'two');
CREATE TEMP TABLE gone_columns AS SELECT * FROM pg_temp.columns_of('tap.gone');
CREATE TEMP TABLE gone_indexes AS SELECT * FROM pg_temp.indexes_of('tap.gone');
CREATE TEMP TABLE gone_rows AS SELECT * FROM tap.gone;
SELECT is(causal.disable('tap.gone'), 'tap.gone'::regclass, 'disable() returns the table');
SELECT is(pg_temp.causal_triggers('tap.gone'), 0::bigint, 'disable() drops the trigger');
SELECT is(pg_temp.in_mesh('tap.gone'), 0::bigint, 'disable() takes the table out of the publications');
SELECT set_has($$SELECT pubname::text, schemaname::text || '.' || tablename::text FROM pg_publication_tables$$,
               $$VALUES ('causal_mesh', 'causal.regions'), ('causal_mesh', 'causal.fences'),
                        ('causal_messages', 'tap.chat'), ('causal_copy', 'tap.chat')$$,
               'the other members of the publications stay');
SELECT set_eq('SELECT * FROM pg_temp.columns_of(''tap.gone'')', 'SELECT * FROM gone_columns',
              'disable() keeps the columns');
SELECT set_eq('SELECT * FROM pg_temp.indexes_of(''tap.gone'')', 'SELECT * FROM gone_indexes',
              'disable() keeps the indexes');
SELECT set_eq('SELECT * FROM tap.gone', 'SELECT * FROM gone_rows', 'disable() keeps the rows, stamps and all');
SELECT throws_ok($$SELECT causal.disable('tap.gone')$$, '55000', 'table tap.gone is not a causal message table',
                 'disable() of a table that is no message table (any more) says so');

-- ==== local path: stamping ====================================================

SELECT causal.hlc_now() AS before_insert \gset
INSERT INTO tap.chat (conversation_id, sender, body) VALUES (42, 'ana', 'Let''s meet')
RETURNING hlc AS first_hlc, crdb_region AS first_region, epoch AS first_epoch, msg_id AS first_msg_id \gset
SELECT cmp_ok(:'first_hlc'::causal.hlc, '>', :'before_insert'::causal.hlc, 'hlc comes from the clock: above every earlier value');
SELECT cmp_ok(:'first_hlc'::causal.hlc, '<', causal.hlc_now(), 'and below every later one');
SELECT is(causal.hlc_node(:'first_hlc'), current_setting('causal.node_id')::int, 'hlc carries this node''s id');
SELECT cmp_ok(abs(causal.hlc_physical_ms(:'first_hlc') - pg_temp.wall_ms()), '<', 1000::bigint,
              'hlc is close to the wall clock');
SELECT is(:'first_region', current_setting('causal.region'), 'crdb_region is causal.region');
SELECT is(:'first_epoch'::bigint, 0::bigint, 'epoch is the region''s epoch (0 while unregistered)');
SELECT isnt(:'first_msg_id'::uuid, NULL, 'msg_id is generated when omitted');

WITH sent AS (
  INSERT INTO tap.chat (conversation_id, sender, body)
  SELECT 43, 'bo', g::text FROM generate_series(1, 100) g RETURNING hlc, body)
SELECT ok(bool_and(later.hlc > earlier.hlc), 'the rows of one statement get strictly increasing hlc, in the order sent')
  FROM sent earlier JOIN sent later ON later.body::int = earlier.body::int + 1;

SELECT hlc AS low_hlc FROM tap.chat WHERE body = '1' \gset
INSERT INTO tap.chat (conversation_id, sender, body, hlc, crdb_region, epoch)
VALUES (42, 'eve', 'forged', causal.hlc_from_parts(1, 0, 9), 'mars', 0);
SELECT cmp_ok((SELECT hlc FROM tap.chat WHERE body = 'forged'), '>', :'low_hlc'::causal.hlc,
              'a client-supplied hlc is replaced by the clock''s');
SELECT is((SELECT causal.hlc_node(hlc) FROM tap.chat WHERE body = 'forged'), 1, 'with this node''s id');
SELECT is((SELECT crdb_region FROM tap.chat WHERE body = 'forged'), 'test-east', 'a client-supplied crdb_region is replaced');
SELECT throws_ok($$INSERT INTO tap.chat (conversation_id, sender, body, epoch) VALUES (42, 'eve', 'from the future', 7)$$,
                 '5C002', 'epoch 7 is newer than region "test-east"''s epoch 0',
                 'an epoch newer than the region''s is refused: the region may be fenced without knowing it yet');
INSERT INTO tap.chat (conversation_id, sender, body, msg_id) VALUES (42, 'ana', 'null id 1', NULL), (42, 'ana', 'null id 2', NULL);
SELECT is((SELECT count(DISTINCT msg_id) FROM tap.chat WHERE body LIKE 'null id %'), 2::bigint,
          'msg_id is generated when NULL, a different one for each row');
INSERT INTO tap.chat (conversation_id, sender, body, msg_id) VALUES (42, 'ana', 'own id', '6f1d3c7e-0000-4000-8000-000000000001');
SELECT is((SELECT msg_id FROM tap.chat WHERE body = 'own id'), '6f1d3c7e-0000-4000-8000-000000000001'::uuid,
          'a client msg_id is kept');

-- deps: hlc > every dep
SELECT hlc AS dep_a FROM tap.chat WHERE body = '10' \gset
SELECT hlc AS dep_b FROM tap.chat WHERE body = '90' \gset
INSERT INTO tap.chat (conversation_id, sender, body, deps)
VALUES (43, 'ana', 'reply', ARRAY[:'dep_b', :'dep_a']::causal.hlc[]) RETURNING hlc AS reply_hlc \gset
SELECT cmp_ok(:'reply_hlc'::causal.hlc, '>', :'dep_b'::causal.hlc, 'hlc is above every dep from the past');
SELECT is((SELECT deps FROM tap.chat WHERE body = 'reply'), ARRAY[:'dep_b', :'dep_a']::causal.hlc[],
          'deps are stored as sent');
SELECT causal.hlc_from_parts(causal.hlc_physical_ms(causal.hlc_now()), 60000, 9) AS busy_dep \gset
INSERT INTO tap.chat (conversation_id, sender, body, deps) VALUES (43, 'ana', 'busy', ARRAY[:'busy_dep']::causal.hlc[]);
SELECT cmp_ok((SELECT hlc FROM tap.chat WHERE body = 'busy'), '>', :'busy_dep'::causal.hlc,
              'hlc is above a dep of another node in the same millisecond with a larger counter');
SELECT causal.hlc_from_parts(pg_temp.wall_ms() + 300, 5, 2) AS ahead_dep \gset
INSERT INTO tap.chat (conversation_id, sender, body, deps) VALUES (43, 'ana', 'ahead', ARRAY[:'dep_a', :'ahead_dep']::causal.hlc[]);
SELECT cmp_ok((SELECT hlc FROM tap.chat WHERE body = 'ahead'), '>', :'ahead_dep'::causal.hlc,
              'hlc is above a dep 300 ms ahead of the wall clock (within causal.max_clock_offset)');
INSERT INTO tap.chat (conversation_id, sender, body) VALUES (43, 'ana', 'after ahead');
SELECT cmp_ok((SELECT hlc FROM tap.chat WHERE body = 'after ahead'), '>', :'ahead_dep'::causal.hlc,
              'the clock observed that dep: the next message is above it too');
INSERT INTO tap.chat (conversation_id, sender, body, deps) VALUES (43, 'ana', 'null deps', NULL);
SELECT is((SELECT deps FROM tap.chat WHERE body = 'null deps'), '{}'::causal.hlc[], 'NULL deps are stored as no deps');
SELECT lives_ok($$INSERT INTO tap.chat (conversation_id, sender, body, deps)
                  SELECT 43, 'ana', '128 deps', array_fill(hlc, ARRAY[128]) FROM tap.chat WHERE body = '1'$$,
                'a message may depend on 128 messages');

-- limits
SELECT throws_ok($$INSERT INTO tap.chat (conversation_id, sender, body, deps)
                   SELECT 43, 'ana', '129 deps', array_fill(hlc, ARRAY[129]) FROM tap.chat WHERE body = '1'$$,
                 '54000', 'a message may depend on at most 128 messages, not 129', '129 deps: 54000');
SELECT throws_ok(format('INSERT INTO tap.chat (conversation_id, sender, body, deps) VALUES (43, %L, %L, ARRAY[%L, NULL]::causal.hlc[])',
                        'ana', 'null dep', :'dep_a'),
                 '22004', 'deps must not contain NULL', 'a NULL element in deps: 22004');
SELECT throws_ok(format('INSERT INTO tap.chat (conversation_id, sender, body, deps) VALUES (43, %L, %L, ARRAY[causal.hlc_from_parts(%s, 0, 2)])',
                        'ana', 'future dep',
                        pg_temp.wall_ms() + (SELECT setting::bigint FROM pg_settings WHERE name = 'causal.max_clock_offset') + 300),
                 '22008', NULL, 'a dep further ahead of the wall clock than causal.max_clock_offset: 22008');
-- deps are a list: what every region compares alike
SELECT throws_ok(format('INSERT INTO tap.chat (conversation_id, sender, body, deps) VALUES (43, %L, %L, ARRAY[ARRAY[%L::causal.hlc]])',
                        'ana', 'nested deps', :'dep_a'),
                 '2202E', 'deps must be a one-dimensional array starting at index 1', 'deps of two dimensions: 2202E');
SELECT throws_ok(format('INSERT INTO tap.chat (conversation_id, sender, body, deps) VALUES (43, %L, %L, %L::causal.hlc[])',
                        'ana', 'shifted deps', '[0:0]={' || :'dep_a' || '}'),
                 '2202E', 'deps must be a one-dimensional array starting at index 1', 'deps starting at index 0: 2202E');
CREATE TABLE tap.listed (conversation_id bigint, sender text, body text);
SELECT causal.enable('tap.listed', 'conversation_id') \g /dev/null
SET session_replication_role = replica;
INSERT INTO tap.listed (msg_id, conversation_id, sender, body, hlc, deps, crdb_region, epoch)
VALUES (gen_random_uuid(), 43, 'ana', 'replicated nested deps', causal.hlc_now(),
        ARRAY[ARRAY[:'dep_a'::causal.hlc]], 'test-west', 0);
SET session_replication_role = origin;
SELECT is((SELECT count(*) FROM tap.listed WHERE body = 'replicated nested deps'), 0::bigint,
          'a replicated row with deps of two dimensions is not stored');
SELECT is((SELECT reason FROM causal.quarantine WHERE row_data->>'body' = 'replicated nested deps'),
          'deps must be a one-dimensional array starting at index 1', 'it is quarantined, with the reason');
SELECT throws_ok($$INSERT INTO tap.chat (conversation_id, sender, body) VALUES (NULL, 'ana', 'nowhere')$$,
                 '23502', 'a message needs a conversation: column "conversation_id" is NULL', 'a NULL conversation: 23502');
SELECT is((SELECT count(*) FROM tap.chat WHERE body IN ('129 deps', 'null dep', 'future dep', 'nowhere')), 0::bigint,
          'refused messages leave no row');

-- retries: one msg_id, one message
INSERT INTO tap.chat (conversation_id, sender, body, msg_id) VALUES (44, 'ana', 'once', '6f1d3c7e-0000-4000-8000-0000000000aa')
RETURNING hlc AS once_hlc \gset
SELECT throws_ok($$INSERT INTO tap.chat (conversation_id, sender, body, msg_id) VALUES (44, 'ana', 'once', '6f1d3c7e-0000-4000-8000-0000000000aa')$$,
                 '23505', NULL, 'a plain retry of the same msg_id: 23505');
SELECT results_eq($$SELECT count(*), min(hlc) FROM tap.chat WHERE msg_id = '6f1d3c7e-0000-4000-8000-0000000000aa'$$,
                  format('VALUES (1::bigint, %L::causal.hlc)', :'once_hlc'), 'still one row, with its original hlc');
WITH retried AS (
  INSERT INTO tap.chat (conversation_id, sender, body, msg_id) VALUES (44, 'ana', 'once', '6f1d3c7e-0000-4000-8000-0000000000aa')
  ON CONFLICT (msg_id) DO NOTHING RETURNING hlc)
SELECT is(count(*), 0::bigint, 'a retry with ON CONFLICT (msg_id) DO NOTHING inserts nothing') FROM retried;
WITH sent AS (
  INSERT INTO tap.chat (conversation_id, sender, body, msg_id) VALUES (44, 'ana', 'once', '6f1d3c7e-0000-4000-8000-0000000000aa')
  ON CONFLICT (msg_id) DO NOTHING RETURNING hlc)
SELECT is((SELECT hlc FROM sent UNION ALL
           SELECT hlc FROM tap.chat WHERE msg_id = '6f1d3c7e-0000-4000-8000-0000000000aa' LIMIT 1),
          :'once_hlc'::causal.hlc, 'the one-round-trip retry returns the original hlc');
WITH sent AS (
  INSERT INTO tap.chat (conversation_id, sender, body, msg_id) VALUES (44, 'ana', 'first try', '6f1d3c7e-0000-4000-8000-0000000000bb')
  ON CONFLICT (msg_id) DO NOTHING RETURNING hlc)
SELECT is((SELECT hlc FROM sent UNION ALL
           SELECT hlc FROM tap.chat WHERE msg_id = '6f1d3c7e-0000-4000-8000-0000000000bb' LIMIT 1),
          (SELECT hlc FROM sent), 'on the first try the same statement returns the new hlc');
SELECT results_eq($$SELECT count(*), count(*) FILTER (WHERE body = 'once') FROM tap.chat
                     WHERE msg_id = '6f1d3c7e-0000-4000-8000-0000000000aa' OR body = 'first try'$$,
                  $$VALUES (2::bigint, 1::bigint)$$, 'after all the retries: one row per msg_id');

-- updates: messages are append-only
CREATE TEMP TABLE first_row AS SELECT ctid AS row_ctid, * FROM tap.chat WHERE msg_id = :'first_msg_id';
SELECT throws_ok(format('UPDATE tap.chat SET body = %L WHERE msg_id = %L', 'edited', :'first_msg_id'),
                 '0A000', 'a causal message cannot be changed once sent', 'an UPDATE of body: 0A000');
SELECT throws_ok(format('UPDATE tap.chat SET hlc = causal.hlc_now() WHERE msg_id = %L', :'first_msg_id'),
                 '0A000', NULL, 'an UPDATE of hlc: 0A000');
SELECT throws_ok(format('UPDATE tap.chat SET deps = ARRAY[%L]::causal.hlc[] WHERE msg_id = %L', :'before_insert', :'first_msg_id'),
                 '0A000', NULL, 'an UPDATE of deps: 0A000');
SELECT throws_ok(format('UPDATE tap.chat SET crdb_region = %L WHERE msg_id = %L', 'mars', :'first_msg_id'),
                 '0A000', NULL, 'an UPDATE of crdb_region: 0A000');
SELECT throws_ok(format('UPDATE tap.chat SET epoch = 5 WHERE msg_id = %L', :'first_msg_id'),
                 '0A000', NULL, 'an UPDATE of epoch: 0A000');
SELECT throws_ok(format('UPDATE tap.chat SET msg_id = gen_random_uuid() WHERE msg_id = %L', :'first_msg_id'),
                 '0A000', NULL, 'an UPDATE of msg_id: 0A000');
SELECT throws_ok(format('UPDATE tap.chat SET sender = NULL WHERE msg_id = %L', :'first_msg_id'),
                 '0A000', NULL, 'an UPDATE that sets a column NULL: 0A000');
SELECT lives_ok(format('UPDATE tap.chat SET body = body, hlc = hlc WHERE msg_id = %L', :'first_msg_id'),
                'an UPDATE that changes nothing succeeds');
WITH changed AS (UPDATE tap.chat SET body = body WHERE msg_id = :'first_msg_id' RETURNING 1)
SELECT is(count(*), 1::bigint, 'and goes through, so RETURNING shows the row (the race-free retry idiom)') FROM changed;
SELECT set_eq(format('SELECT * FROM tap.chat WHERE msg_id = %L', :'first_msg_id'),
              'SELECT conversation_id, sender, body, msg_id, hlc, deps, crdb_region, epoch, deleted_at, copies, written_by FROM first_row',
              'the row is as it was');
INSERT INTO tap.chat (conversation_id, sender, body) VALUES (47, 'ana', repeat('Let''s meet. ', 1000));
SELECT lives_ok($$UPDATE tap.chat SET body = repeat('Let''s meet. ', 1000) WHERE conversation_id = 47$$,
                'an UPDATE that sets a long (compressed) body to the text it holds changes nothing: skipped, not refused');

-- ==== local path: the epoch fence =============================================

-- this backend caches the region state: a fence rolled back must not stick
SAVEPOINT before_fence;
SELECT causal.fence_region('test-east', 1) \g /dev/null
ROLLBACK TO SAVEPOINT before_fence;
SELECT lives_ok($$INSERT INTO tap.chat (conversation_id, sender, body) VALUES (42, 'ana', 'fence rolled back')$$,
                'a fence that was rolled back is forgotten at once: writes go on');

SELECT results_eq($$SELECT region, epoch, state, fenced_at IS NOT NULL FROM causal.fence_region('test-east', 1)$$,
                  $$VALUES ('test-east', 1::bigint, 'fenced', true)$$, 'fence_region() puts up the fence with the new epoch');
SELECT results_eq($$SELECT f.region, f.epoch, f.fenced_at = r.fenced_at FROM causal.fences f JOIN causal.regions r USING (region)$$,
                  $$VALUES ('test-east', 0::bigint, true)$$, 'causal.fences records the fenced epoch (the one before) and when');
SELECT fenced_at AS fenced_at FROM causal.fences WHERE region = 'test-east' AND epoch = 0 \gset
SELECT throws_ok($$INSERT INTO tap.chat (conversation_id, sender, body) VALUES (42, 'ana', 'while fenced')$$,
                 '5C001', 'region "test-east" is fenced', 'a fenced region refuses writes: 5C001');
SELECT is((tap_helpers.error_of($$INSERT INTO tap.chat (conversation_id, sender, body) VALUES (42, 'ana', 'while fenced')$$)).hint,
          'No other region is active.', 'with no other region registered, the HINT says so');
SELECT causal.register_region('test-west', 2) \g /dev/null
SELECT is((tap_helpers.error_of($$INSERT INTO tap.chat (conversation_id, sender, body) VALUES (42, 'ana', 'while fenced')$$)).hint,
          'Write to region "test-west", which is active.', 'the HINT names an active region');
SELECT throws_ok($$INSERT INTO tap.chat (conversation_id, sender, body, epoch) VALUES (42, 'ana', 'while fenced', 1)$$,
                 '5C001', NULL, 'carrying the new epoch does not get a write past the fence');
SELECT throws_ok($$SELECT causal.fence_region('test-east', 1)$$, '5C002', NULL,
                 'fence_region() with an epoch not above the current one: 5C002');
SELECT throws_ok($$SELECT causal.unfence_region('test-east', 1)$$, '5C002', NULL,
                 'unfence_region() with an epoch not above the current one: 5C002');
SELECT results_eq($$SELECT region, epoch, state, fenced_at FROM causal.unfence_region('test-east', 2)$$,
                  $$VALUES ('test-east', 2::bigint, 'active', NULL::causal.hlc)$$, 'unfence_region() lifts the fence with a new epoch');
INSERT INTO tap.chat (conversation_id, sender, body) VALUES (42, 'ana', 'back') RETURNING hlc AS back_hlc \gset
SELECT is((SELECT epoch FROM tap.chat WHERE body = 'back'), 2::bigint, 'after the fence is lifted, writes work again, in epoch 2');
SELECT throws_ok($$INSERT INTO tap.chat (conversation_id, sender, body, epoch) VALUES (42, 'ana', 'stale', 1)$$,
                 '5C002', 'epoch 1 is older than region "test-east"''s epoch 2', 'a write carrying a stale epoch: 5C002');
SELECT is((tap_helpers.error_of($$INSERT INTO tap.chat (conversation_id, sender, body, epoch) VALUES (42, 'ana', 'stale', 0)$$)).hint,
          'Read the current epoch from causal.regions, or write to region "test-west".',
          'its HINT says where to read the epoch and names an active region');
INSERT INTO tap.chat (conversation_id, sender, body, epoch) VALUES (42, 'ana', 'current epoch', 2);
SELECT is((SELECT epoch FROM tap.chat WHERE body = 'current epoch'), 2::bigint, 'a write carrying the current epoch is taken');
INSERT INTO tap.chat (conversation_id, sender, body, epoch) VALUES (42, 'ana', 'no epoch', NULL);
SELECT is((SELECT epoch FROM tap.chat WHERE body = 'no epoch'), 2::bigint, 'a write carrying no epoch is stamped with the current one');
SELECT is((SELECT count(*) FROM tap.chat WHERE body IN ('while fenced', 'stale')), 0::bigint, 'fenced and stale writes left no row');

SELECT ok(causal.is_orphan('test-east', 0, causal.hlc_now()), 'a write of the fenced epoch after the fence is an orphan');
SELECT ok(NOT causal.is_orphan('test-east', 0, :'first_hlc'), 'one from before the fence is not');
SELECT ok(NOT causal.is_orphan('test-east', 0, :'fenced_at'), 'nor one at the very moment of the fence');
SELECT ok(NOT causal.is_orphan('test-west', 0, causal.hlc_now()), 'another region''s write is not');
SELECT ok(NOT causal.is_orphan('test-east', 2, causal.hlc_now()), 'a write of the current epoch is not');
SELECT ok(NOT (SELECT bool_or(causal.is_orphan(crdb_region, epoch, hlc)) FROM tap.chat),
          'no message written on the local path is an orphan');

-- ==== converging registers ====================================================

CREATE TEMP TABLE east AS SELECT * FROM causal.regions WHERE region = 'test-east';
UPDATE causal.regions SET epoch = 1, state = 'fenced', changed_at = causal.hlc_now() WHERE region = 'test-east';
SELECT set_eq($$SELECT * FROM causal.regions WHERE region = 'test-east'$$, 'SELECT * FROM east',
              'causal.regions ignores an update to a lower epoch');
UPDATE causal.regions SET node_id = 9, changed_at = causal.hlc_from_parts(1, 0, 1) WHERE region = 'test-east';
SELECT set_eq($$SELECT * FROM causal.regions WHERE region = 'test-east'$$, 'SELECT * FROM east',
              'and one in the same epoch and state with an older changed_at');
SELECT lives_ok($$INSERT INTO causal.regions (region, node_id, epoch, state, changed_at)
                  VALUES ('test-east', 1, 1, 'fenced', causal.hlc_now())$$,
                'the same region arriving as an insert is no key violation');
SELECT set_eq($$SELECT * FROM causal.regions WHERE region = 'test-east'$$, 'SELECT * FROM east',
              'and is ignored with a lower epoch');
UPDATE causal.regions SET node_id = 1, changed_at = causal.hlc_now() WHERE region = 'test-east';
SELECT is((SELECT node_id FROM causal.regions WHERE region = 'test-east'), 1,
          'an update in the same epoch with a newer changed_at is taken');
-- a fence and an unfence racing to one epoch: fenced wins, in any order
INSERT INTO causal.regions (region, node_id, epoch, state, changed_at) VALUES ('test-south', 3, 5, 'active', causal.hlc_now());
UPDATE causal.regions SET state = 'fenced', changed_at = causal.hlc_from_parts(1, 0, 3) WHERE region = 'test-south';
UPDATE causal.regions SET state = 'active', changed_at = causal.hlc_now() WHERE region = 'test-south';
SELECT is((SELECT state FROM causal.regions WHERE region = 'test-south'), 'fenced',
          'in one epoch fenced beats active, whichever changed_at is newer');
INSERT INTO causal.regions (region, node_id, epoch, state, changed_at) VALUES ('test-west', 2, 3, 'active', causal.hlc_from_parts(1, 0, 2));
SELECT is((SELECT epoch FROM causal.regions WHERE region = 'test-west'), 3::bigint,
          'an insert of a known region with a higher epoch is taken, whatever its changed_at');
INSERT INTO causal.fences (region, epoch, fenced_at) VALUES ('test-east', 0, causal.hlc_now());
SELECT is((SELECT fenced_at FROM causal.fences WHERE region = 'test-east' AND epoch = 0), :'fenced_at'::causal.hlc,
          'causal.fences keeps the earlier fence when the same one arrives later');
UPDATE causal.fences SET fenced_at = causal.hlc_now() WHERE region = 'test-east' AND epoch = 0;
SELECT is((SELECT fenced_at FROM causal.fences WHERE region = 'test-east' AND epoch = 0), :'fenced_at'::causal.hlc,
          'and ignores an update to a later fenced_at');
INSERT INTO causal.fences (region, epoch, fenced_at) VALUES ('test-east', 0, :'first_hlc');
SELECT is((SELECT fenced_at FROM causal.fences WHERE region = 'test-east' AND epoch = 0), :'first_hlc'::causal.hlc,
          'and takes an earlier one');
SELECT is((SELECT count(*) FROM causal.fences), 1::bigint, 'still one row per fenced epoch');

-- ==== an import ===============================================================

-- Moving an existing history in is one statement (or one COPY) of many rows.
CREATE TABLE tap.import (conversation_id bigint, body text);
SELECT causal.enable('tap.import', 'conversation_id') \g /dev/null
SELECT lives_ok($$INSERT INTO tap.import (conversation_id, body)
                  SELECT g % 100, 'imported ' || g FROM generate_series(1, 20000) g$$,
                'one statement can insert 20000 messages: no lock per row held until commit exhausts the lock table');

-- ==== counters ================================================================

SELECT pg_temp.local_inserts('tap.chat') AS inserts_before \gset
INSERT INTO tap.chat (conversation_id, sender, body) SELECT 45, 'ana', 'counted ' || g FROM generate_series(1, 5) g;
SELECT is(pg_temp.local_inserts('tap.chat') - :inserts_before, 5::bigint, 'causal.stat_tables counts 5 local inserts after 5 inserts');
SELECT is((SELECT applied + duplicates + winners_replaced + orphans + quarantined FROM causal.stat_tables WHERE relid = 'tap.chat'::regclass),
          0::bigint, 'and nothing of the apply path');
SELECT pg_temp.local_inserts('tap.chat') AS inserts_before \gset
INSERT INTO tap.chat (conversation_id, sender, body, msg_id) VALUES (44, 'ana', 'once', '6f1d3c7e-0000-4000-8000-0000000000aa')
ON CONFLICT (msg_id) DO NOTHING;
SELECT is(pg_temp.local_inserts('tap.chat') - :inserts_before, 0::bigint,
          'a retry that ON CONFLICT DO NOTHING dropped is not counted as a local insert');

-- ==== notify ==================================================================

-- the channel is "<schema>.<table>"; a NOTIFY channel name has at most 63 bytes
CREATE TABLE tap.messages_of_the_customer_support_conversations_archive_2024_q1 (conversation_id bigint, body text);
SELECT causal.enable('tap.messages_of_the_customer_support_conversations_archive_2024_q1', 'conversation_id', notify => true) \g /dev/null
SELECT lives_ok($$INSERT INTO tap.messages_of_the_customer_support_conversations_archive_2024_q1 (conversation_id, body) VALUES (1, 'x')$$,
                'a table that enable(notify => true) accepted takes inserts, however long its qualified name');

SELECT * FROM finish();
ROLLBACK;
