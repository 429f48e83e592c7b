-- Run in the restored database; :digest is the source table's digest.
SET search_path = public, causal;
SELECT plan(5);
SELECT has_extension('pg_causal', 'the extension is restored');
SELECT is(md5(string_agg(id || ' ' || h::text || ' ' || coalesce(deps::text, '-'), ',' ORDER BY h)),
          :'digest', 'every hlc and hlc[] value is restored exactly')
  FROM chat.messages;
SELECT has_index('chat', 'messages', 'messages_h', 'the btree index is restored');
SELECT has_index('chat', 'messages', 'messages_h_brin', 'the BRIN index is restored');
SET enable_seqscan = off;
SELECT is((SELECT id FROM chat.messages WHERE h = '281474976710655.65535@65535'), 0::bigint,
          'and answers through the index');
SELECT * FROM finish();
