-- Causal message tables seen from several sessions: NOTIFY at commit, a
-- fence put up by one session stops another's writes, and a retry racing
-- the original send. What other sessions must see has to be committed, so
-- the sessions are dblink connections to this database, which commit; this
-- session only asks them and never touches their tables (its locks would
-- block their cleanup). Everything they create is dropped at the end, and
-- the region rows they change are removed again.
BEGIN;
-- operators live in schema causal, like every object of the extension
SET LOCAL search_path = public, causal;
SET LOCAL client_min_messages = warning;
SELECT plan(19);

CREATE EXTENSION IF NOT EXISTS dblink;

-- Connections: w writes messages, l listens, a administers the regions.
CREATE FUNCTION pg_temp.connect(name text) RETURNS void LANGUAGE sql AS $$
  SELECT dblink_connect(name, format('host=%s port=%s dbname=%s user=%s',
                                     split_part(current_setting('unix_socket_directories'), ',', 1),
                                     current_setting('port'), current_database(), current_user));
  SELECT dblink_exec(name, 'SET client_min_messages = warning');
$$;
-- The one value a query returns in another session (NULL for no row).
CREATE FUNCTION pg_temp.remote(name text, query text) RETURNS text LANGUAGE sql AS $$
  SELECT (SELECT v FROM dblink(name, query) AS t(v text) LIMIT 1)
$$;
-- What the listener receives, as '<channel> <payload>', until `last` or 10 s.
CREATE FUNCTION pg_temp.notifications_until(last text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
  received text[] := '{}';
  deadline timestamptz := clock_timestamp() + interval '10 s';
BEGIN
  WHILE NOT (last = ANY (received)) AND clock_timestamp() < deadline LOOP
    received := received || ARRAY(SELECT notify_name || ' ' || extra FROM dblink_get_notify('l'));
    IF NOT (last = ANY (received)) THEN PERFORM pg_sleep(0.01); END IF;
  END LOOP;
  RETURN received;
END $$;
-- Sends a marker message into another notifying table; returns what the
-- listener received up to it (notifications arrive in commit order), the
-- marker itself as '<marker>'.
CREATE FUNCTION pg_temp.received_before_marker() RETURNS text[] LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_temp.remote('w', $q$INSERT INTO tap_sessions.marks (conversation_id, body) VALUES (1, 'marker')
                                  RETURNING hlc::text$q$);
  RETURN array_replace(pg_temp.notifications_until('tap_sessions.marks message'), 'tap_sessions.marks message',
                       '<marker>');
END $$;

SELECT pg_temp.connect('w'), pg_temp.connect('l'), pg_temp.connect('a') \g /dev/null
SELECT EXISTS (SELECT FROM pg_publication WHERE pubname = 'causal_mesh') AS mesh_existed \gset
SELECT dblink_exec('w', 'DROP SCHEMA IF EXISTS tap_sessions CASCADE'),
       dblink_exec('w', 'CREATE SCHEMA tap_sessions'),
       dblink_exec('w', 'CREATE TABLE tap_sessions.chat (conversation_id bigint, sender text, body text)'),
       dblink_exec('w', 'CREATE TABLE tap_sessions.quiet (conversation_id bigint, sender text, body text)'),
       dblink_exec('w', 'CREATE TABLE tap_sessions.marks (conversation_id bigint, body text)'),
       pg_temp.remote('w', $$SELECT causal.enable('tap_sessions.chat', 'conversation_id', notify => true)$$),
       pg_temp.remote('w', $$SELECT causal.enable('tap_sessions.quiet', 'conversation_id')$$),
       pg_temp.remote('w', $$SELECT causal.enable('tap_sessions.marks', 'conversation_id', notify => true)$$),
       dblink_exec('l', 'LISTEN "tap_sessions.chat"'),
       dblink_exec('l', 'LISTEN "tap_sessions.quiet"'),
       dblink_exec('l', 'LISTEN "tap_sessions.marks"') \g /dev/null
SELECT pg_temp.remote('w', 'SELECT pg_backend_pid()') AS writer_pid \gset

-- ==== NOTIFY =================================================================

-- Any login may LISTEN on any channel (PostgreSQL 15 checks nothing): the
-- payload says what any login may know.
SELECT pg_temp.remote('w', $$INSERT INTO tap_sessions.chat (conversation_id, sender, body, msg_id)
  VALUES (42, 'ana', 'Let''s meet', '6f1d3c7e-0000-4000-8000-0000000000cc') RETURNING hlc::text$$) AS hello_hlc \gset
SELECT is(pg_temp.notifications_until('tap_sessions.chat message'), ARRAY['tap_sessions.chat message'],
          'a committed insert notifies channel "<schema>.<table>" with payload message: no conversation key, no hlc');
SELECT is((SELECT array_agg(be_pid) FROM dblink_get_notify('l')), NULL, 'nothing else is pending');

SELECT dblink_exec('w', $$INSERT INTO tap_sessions.chat (conversation_id, sender, body)
  VALUES (43, 'bo', 'a'), (43, 'bo', 'b'), (43, 'bo', 'c')$$) \g /dev/null
SELECT is(pg_temp.received_before_marker(), ARRAY['tap_sessions.chat message', '<marker>'],
          'a statement inserting three messages notifies once (PostgreSQL sends a transaction''s equal notifications once)');

SELECT dblink_exec('w', $$INSERT INTO tap_sessions.quiet (conversation_id, sender, body) VALUES (42, 'ana', 'hush')$$) \g /dev/null
SELECT is(pg_temp.received_before_marker(), ARRAY['<marker>'],
          'a table enabled without notify sends nothing');

SELECT dblink_exec('w', $$BEGIN; INSERT INTO tap_sessions.chat (conversation_id, sender, body) VALUES (42, 'ana', 'regret'); ROLLBACK$$) \g /dev/null
SELECT is(pg_temp.received_before_marker(), ARRAY['<marker>'],
          'a rolled back insert notifies nobody');

SELECT dblink_exec('w', $$INSERT INTO tap_sessions.chat (conversation_id, sender, body, msg_id)
  VALUES (42, 'ana', 'Let''s meet', '6f1d3c7e-0000-4000-8000-0000000000cc')$$, false) \g /dev/null
SELECT is(pg_temp.received_before_marker(), ARRAY['<marker>'],
          'a retry refused by the unique msg_id notifies nobody');

SELECT dblink_exec('w', $$INSERT INTO tap_sessions.chat (conversation_id, sender, body, msg_id)
  VALUES (42, 'ana', 'Let''s meet', '6f1d3c7e-0000-4000-8000-0000000000cc') ON CONFLICT (msg_id) DO NOTHING$$) \g /dev/null
SELECT is(pg_temp.received_before_marker(), ARRAY['<marker>'],
          'a retry that ON CONFLICT DO NOTHING dropped notifies nobody (no message that was never stored)');

SELECT dblink_exec('w', $$DELETE FROM tap_sessions.chat WHERE msg_id = '6f1d3c7e-0000-4000-8000-0000000000cc'$$) \g /dev/null
SELECT is(pg_temp.notifications_until('tap_sessions.chat deleted'), ARRAY['tap_sessions.chat deleted'],
          'a committed DELETE notifies payload deleted (its tombstone)');

-- ==== a fence put up in another session ======================================

SELECT is(pg_temp.remote('w', $$INSERT INTO tap_sessions.chat (conversation_id, sender, body) VALUES (42, 'ana', 'epoch 0') RETURNING epoch::text$$),
          '0', 'before the fence the writer stamps epoch 0 (and has read the region state)');
SELECT pg_temp.remote('a', $$SELECT causal.fence_region('test-east', 1)$$) \g /dev/null
SELECT throws_ok($$SELECT dblink_exec('w', 'INSERT INTO tap_sessions.chat (conversation_id, sender, body) VALUES (42, ''ana'', ''fenced'')')$$,
                 '5C001', NULL, 'a fence committed by another session stops the writer''s next insert: 5C001');
SELECT throws_ok($$SELECT dblink_exec('w', 'DELETE FROM tap_sessions.chat WHERE body = ''epoch 0''')$$,
                 '5C001', NULL, 'and its next delete: 5C001');
SELECT pg_temp.remote('a', $$SELECT causal.unfence_region('test-east', 2)$$) \g /dev/null
SELECT is(pg_temp.remote('w', $$INSERT INTO tap_sessions.chat (conversation_id, sender, body) VALUES (42, 'ana', 'epoch 2') RETURNING epoch::text$$),
          '2', 'lifting it in another session lets the writer write again, in epoch 2');
SELECT throws_ok($$SELECT dblink_exec('w', 'INSERT INTO tap_sessions.chat (conversation_id, sender, body, epoch) VALUES (42, ''ana'', ''stale'', 0)')$$,
                 '5C002', NULL, 'and the writer refuses the epoch from before: 5C002');
-- A REPEATABLE READ transaction whose snapshot predates a fence: its insert
-- must still see the fence, and so must every later insert of the writer.
SELECT dblink_exec('w', 'BEGIN ISOLATION LEVEL REPEATABLE READ'),
       pg_temp.remote('w', 'SELECT count(*)::text FROM causal.regions') \g /dev/null
SELECT pg_temp.remote('a', $$SELECT causal.fence_region('test-east', 3)$$) \g /dev/null
SELECT throws_ok($$SELECT dblink_exec('w', 'INSERT INTO tap_sessions.chat (conversation_id, sender, body) VALUES (42, ''ana'', ''old snapshot'')')$$,
                 '5C001', NULL, 'a fence committed after the writer''s snapshot was taken still stops it');
SELECT dblink_exec('w', 'ROLLBACK') \g /dev/null
SELECT throws_ok($$SELECT dblink_exec('w', 'INSERT INTO tap_sessions.chat (conversation_id, sender, body) VALUES (42, ''ana'', ''next'')')$$,
                 '5C001', NULL, 'and the writer''s next transaction too: no stale state was cached');
SELECT pg_temp.remote('a', $$DELETE FROM causal.fences WHERE region = 'test-east' RETURNING 1$$),
       pg_temp.remote('a', $$DELETE FROM causal.regions WHERE region = 'test-east' RETURNING 1$$) \g /dev/null
SELECT is(pg_temp.remote('w', $$INSERT INTO tap_sessions.chat (conversation_id, sender, body) VALUES (42, 'ana', 'unregistered') RETURNING epoch::text$$),
          '0', 'removing the region row in another session is seen too (epoch 0 again)');

-- ==== a retry racing the original send =======================================

-- a sends msg_id dd and has not committed yet; w retries it with the
-- race-free one-round-trip idiom (ON CONFLICT DO UPDATE of nothing), waits
-- for a, and must still learn the original hlc.
SELECT dblink_exec('a', 'BEGIN') \g /dev/null
SELECT pg_temp.remote('a', $$INSERT INTO tap_sessions.chat (conversation_id, sender, body, msg_id)
  VALUES (46, 'ana', 'raced', '6f1d3c7e-0000-4000-8000-0000000000dd') RETURNING hlc::text$$) AS raced_hlc \gset
SELECT dblink_send_query('w', $$
  INSERT INTO tap_sessions.chat (conversation_id, sender, body, msg_id)
  VALUES (46, 'ana', 'raced', '6f1d3c7e-0000-4000-8000-0000000000dd')
  ON CONFLICT (msg_id) DO UPDATE SET msg_id = EXCLUDED.msg_id RETURNING hlc::text$$) \g /dev/null
CREATE FUNCTION pg_temp.wait_for_lock_wait(pid int) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE deadline timestamptz := clock_timestamp() + interval '10 s';
BEGIN
  WHILE clock_timestamp() < deadline LOOP
    IF EXISTS (SELECT FROM pg_stat_activity WHERE pg_stat_activity.pid = wait_for_lock_wait.pid AND wait_event_type = 'Lock') THEN
      RETURN true;
    END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
  RETURN false;
END $$;
SELECT ok(pg_temp.wait_for_lock_wait(:writer_pid), 'the retry waits for the original send to finish');
SELECT dblink_exec('a', 'COMMIT') \g /dev/null
CREATE TEMP TABLE raced AS SELECT hlc FROM dblink_get_result('w') AS t(hlc text);
SELECT count(*) FROM dblink_get_result('w') AS t(hlc text) \g /dev/null
SELECT is((SELECT array_agg(hlc) FROM raced), ARRAY[:'raced_hlc'],
          'a retry racing the original send learns the original hlc in the same round trip');
SELECT is(pg_temp.remote('w', $$SELECT count(*)::text FROM tap_sessions.chat WHERE msg_id = '6f1d3c7e-0000-4000-8000-0000000000dd'$$),
          '1', 'and one message was stored');

-- ==== cleanup =================================================================

SELECT pg_temp.remote('w', $$SELECT causal.disable('tap_sessions.chat')$$),
       pg_temp.remote('w', $$SELECT causal.disable('tap_sessions.quiet')$$),
       dblink_exec('w', 'DROP SCHEMA tap_sessions CASCADE') \g /dev/null
SELECT dblink_exec('w', 'DROP PUBLICATION causal_mesh') WHERE NOT :'mesh_existed'::bool \g /dev/null
SELECT dblink_disconnect('w'), dblink_disconnect('l'), dblink_disconnect('a') \g /dev/null

SELECT * FROM finish();
ROLLBACK;
