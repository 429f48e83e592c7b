-- Run in the restored database; :digest is the source table's digest.
SET search_path = public, causal;
SELECT plan(10);
SELECT has_extension('pg_causal', 'the extension is restored');
SELECT is(md5(string_agg(id || ' ' || h::text || ' ' || coalesce(deps::text, '-'), ',' ORDER BY h)),
          :'digest', 'every hlc and hlc[] value is restored exactly')
  FROM chat.messages;
SELECT has_index('chat', 'messages', 'messages_h', 'the btree index is restored');
SELECT has_index('chat', 'messages', 'messages_h_brin', 'the BRIN index is restored');
SET enable_seqscan = off;
SELECT is((SELECT id FROM chat.messages WHERE h = '281474976710655.65535@65535'), 0::bigint,
          'and answers through the index');
RESET enable_seqscan;

-- a causal message table and the fencing state
CREATE FUNCTION pg_temp.value_of(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE result text;
BEGIN
  EXECUTE query INTO result;
  RETURN result;
END $$;
SELECT is(pg_temp.value_of(:'talk_sql'), :'talk', 'every message of an enabled table is restored as it was');
SELECT is(pg_temp.value_of(:'fencing_sql'), :'fencing', 'causal.regions and causal.fences are restored');
SELECT is((SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'chat.talk'::regclass AND tgname = 'causal_message'),
          'A'::"char", 'the trigger is back, enabled ALWAYS');
SELECT is(ARRAY(SELECT pubname || ' ' || coalesce(rowfilter, '-') FROM pg_publication_tables
                  WHERE schemaname = 'chat' AND tablename = 'talk' ORDER BY pubname),
          ARRAY['causal_copy -', 'causal_messages (COALESCE(written_by, crdb_region) = ''' || current_setting('causal.region') || '''::text)'],
          'the table is in publications causal_messages (with its row filter) and causal_copy again');
SELECT lives_ok('INSERT INTO chat.talk (conversation_id, body) VALUES (1, ''after the restore'')',
                'and stamps new messages');
SELECT * FROM finish();
