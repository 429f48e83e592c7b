-- What causal.catch_up() says of deletions, against the whole table: each
-- row says whether its message is deleted, and with a cursor the messages
-- deleted at or after it follow, those the client already has included
-- (a cursor used to pass them for good). Randomized: five conversations,
-- each a random run of writes and deletes with a cursor taken midway.
BEGIN;
SET LOCAL search_path = public, causal;
SET LOCAL client_min_messages = warning;
SELECT plan(10);

CREATE SCHEMA tap_deletions;
CREATE TABLE tap_deletions.chat (conversation_id bigint, body text);
SELECT causal.enable('tap_deletions.chat', 'conversation_id');
SELECT ok(EXISTS (SELECT FROM pg_index i WHERE i.indrelid = 'tap_deletions.chat'::regclass AND i.indpred IS NOT NULL
                     AND pg_get_indexdef(i.indexrelid) LIKE '%(conversation_id, deleted_at) WHERE (deleted_at IS NOT NULL)'),
          'enable() indexes the deletions of each conversation');

CREATE TEMP TABLE cursors (conversation bigint PRIMARY KEY, since causal.hlc);
SELECT setseed(0.2026);
DO $$
DECLARE
  steps int;
BEGIN
  FOR c IN 1..5 LOOP
    steps := 50 + (random() * 200)::int;
    FOR i IN 1..steps LOOP
      IF i = steps / 2 THEN INSERT INTO cursors VALUES (c, causal.hlc_now()); END IF;
      IF random() < 0.65 THEN
        INSERT INTO tap_deletions.chat (conversation_id, body) VALUES (c, 'm' || i);
      ELSE
        DELETE FROM tap_deletions.chat
         WHERE msg_id = (SELECT msg_id FROM tap_deletions.chat
                          WHERE conversation_id = c AND deleted_at IS NULL ORDER BY random() LIMIT 1);
      END IF;
    END LOOP;
  END LOOP;
END $$;
SELECT cmp_ok((SELECT count(*) FROM tap_deletions.chat t JOIN cursors k ON k.conversation = t.conversation_id
                WHERE t.deleted_at >= k.since AND t.hlc < k.since), '>', 0::bigint,
              'the runs delete messages from below their cursors');

-- every conversation's answer from its cursor, and without one
CREATE TEMP VIEW from_cursor AS
  SELECT k.conversation, c.* FROM cursors k, causal.catch_up('tap_deletions.chat', k.conversation::text, NULL,
                                                             since => k.since) WITH ORDINALITY c;
CREATE TEMP VIEW whole AS
  SELECT k.conversation, c.* FROM cursors k, causal.catch_up('tap_deletions.chat', k.conversation::text, NULL) c;

SELECT set_eq('SELECT conversation, msg_id FROM from_cursor WHERE deleted',
              'SELECT t.conversation_id, t.msg_id FROM tap_deletions.chat t JOIN cursors k ON k.conversation = t.conversation_id
                WHERE t.deleted_at >= k.since',
              'from a cursor: deleted is true exactly for the messages deleted at or after it');
SELECT set_eq('SELECT conversation, msg_id FROM from_cursor WHERE position IS NULL',
              'SELECT t.conversation_id, t.msg_id FROM tap_deletions.chat t JOIN cursors k ON k.conversation = t.conversation_id
                WHERE t.deleted_at >= k.since AND t.hlc < k.since',
              '... those below it, which the client has, as rows of their own without a position');
SELECT is((SELECT count(*) FROM from_cursor WHERE position IS NULL
             AND (delivered IS NOT NULL OR concurrent IS NOT NULL OR orphan IS NOT NULL OR NOT deleted)), 0::bigint,
          '... which say nothing but that they are deleted');
SELECT is((SELECT count(*) FROM (SELECT conversation, lag(d.deleted_at) OVER w AS before, d.deleted_at
                                   FROM from_cursor f JOIN tap_deletions.chat d USING (msg_id)
                                  WHERE f.position IS NULL WINDOW w AS (PARTITION BY conversation ORDER BY f.ordinality)) x
            WHERE x.before > x.deleted_at), 0::bigint,
          '... in the order they were deleted');
SELECT results_eq('SELECT conversation, msg_id, deleted FROM from_cursor WHERE position IS NOT NULL ORDER BY conversation, position',
                  'SELECT w.conversation, w.msg_id, w.deleted FROM whole w JOIN cursors k USING (conversation)
                    WHERE w.hlc >= k.since ORDER BY w.conversation, w.position',
                  'the messages from the cursor on: the whole history''s tail, in its order, deletions flagged alike');
-- a client that saw a message above its cursor that was deleted since
SELECT set_eq($$SELECT c.msg_id FROM (SELECT t.msg_id, t.hlc, k.since, k.conversation FROM tap_deletions.chat t
                                        JOIN cursors k ON k.conversation = t.conversation_id
                                       WHERE t.hlc >= k.since AND t.deleted_at IS NOT NULL ORDER BY t.hlc LIMIT 1) s,
                      causal.catch_up('tap_deletions.chat', s.conversation::text, ARRAY[s.hlc], since => s.since) c
                WHERE c.position IS NULL AND c.msg_id = s.msg_id$$,
              $$SELECT t.msg_id FROM tap_deletions.chat t JOIN cursors k ON k.conversation = t.conversation_id
                 WHERE t.hlc >= k.since AND t.deleted_at IS NOT NULL ORDER BY t.hlc LIMIT 1$$,
              'a message above the cursor the client saw and that was deleted since: a deletion row of its own');
-- the client names only the newest message it saw (its maximal one, which
-- catch_up accepts): a message in its past, above the cursor and deleted
-- since, is still one it has
CREATE TEMP TABLE reply_cursor AS SELECT causal.hlc_now() AS since;
INSERT INTO tap_deletions.chat (conversation_id, body) VALUES (99, 'question');
INSERT INTO tap_deletions.chat (conversation_id, body, deps)
SELECT 99, 'answer', ARRAY[hlc] FROM tap_deletions.chat WHERE body = 'question';
DELETE FROM tap_deletions.chat WHERE conversation_id = 99 AND body = 'question';
SELECT results_eq($$SELECT c.msg_id, c.position IS NULL, c.deleted
                      FROM causal.catch_up('tap_deletions.chat', '99',
                                           ARRAY(SELECT hlc FROM tap_deletions.chat WHERE body = 'answer'),
                                           since => (SELECT since FROM reply_cursor)) c$$,
                  $$SELECT msg_id, true, true FROM tap_deletions.chat WHERE conversation_id = 99 AND deleted_at IS NOT NULL$$,
                  'a deleted message in the past of the one the client names: reported as deleted');
SELECT set_eq('SELECT conversation, msg_id, deleted FROM whole',
              'SELECT conversation_id, msg_id, deleted_at IS NOT NULL FROM tap_deletions.chat
                WHERE conversation_id IN (SELECT conversation FROM cursors)',
              'without a cursor: every message, deleted saying which are tombstones');

SELECT * FROM finish();
ROLLBACK;
