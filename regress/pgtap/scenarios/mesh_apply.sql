-- Run on east by mesh_apply.t; :west and :south are connection strings of
-- the other regions, read through dblink.
SET search_path = public, causal;
SELECT plan(25);

CREATE FUNCTION pg_temp.at(region text, query text) RETURNS text LANGUAGE sql AS $$
  SELECT v FROM dblink(region, query) AS t(v text)
$$;
-- What a region holds and how it orders and flags it, as one digest (all
-- but the row west's CHECK refused).
CREATE FUNCTION pg_temp.digest_query() RETURNS text LANGUAGE sql AS $q$ SELECT $$
  SELECT md5(string_agg(concat_ws(' ', msg_id, hlc, conversation_id, body, crdb_region, epoch,
                                  causal.is_orphan(crdb_region, epoch, hlc)), ',' ORDER BY hlc))
    FROM chat.messages WHERE body NOT LIKE 'long %' $$ $q$;
CREATE FUNCTION pg_temp.digest() RETURNS text LANGUAGE plpgsql AS $$
DECLARE result text;
BEGIN
  EXECUTE pg_temp.digest_query() INTO result;
  RETURN result;
END $$;

-- convergence
SELECT is(pg_temp.at(:'west', pg_temp.digest_query()), pg_temp.digest(), 'west holds the same messages, flags and order as east');
SELECT is(pg_temp.at(:'south', pg_temp.digest_query()), pg_temp.digest(), 'so does south');
SELECT is((SELECT count(*) FROM chat.messages WHERE conversation_id <> 900), 9::bigint,
          'three conversation messages, the retried one once, after-malformed, the long one and the one after, split brain, ping');
SELECT is(pg_temp.at(:'south', 'SELECT count(*) FROM chat.messages WHERE conversation_id = 900'), '10000',
          'a bulk transaction of 10,000 messages was applied whole');
SELECT is(pg_temp.at(:'west', 'SELECT count(*) - count(DISTINCT msg_id) FROM chat.messages')::int
          + pg_temp.at(:'south', 'SELECT count(*) - count(DISTINCT msg_id) FROM chat.messages')::int
          + (SELECT count(*) - count(DISTINCT msg_id) FROM chat.messages)::int, 0,
          'no region holds a message twice');
SELECT is(pg_temp.at(:'west', 'SELECT md5(string_agg(concat_ws('' '', region, node_id, epoch, state, fenced_at, changed_at), '','' ORDER BY region)) FROM causal.regions'),
          (SELECT md5(string_agg(concat_ws(' ', region, node_id, epoch, state, fenced_at, changed_at), ',' ORDER BY region)) FROM causal.regions),
          'causal.regions converged');

-- each region publishes only what its own writes made: nothing comes back
SELECT is((SELECT duplicates FROM causal.stat_tables WHERE relid = 'chat.messages'::regclass), 0::bigint,
          'none of east''s own messages came back to it');
SELECT count(*) AS rows_before, pg_current_wal_lsn() AS wal_before,
       (SELECT applied + duplicates + winners_replaced FROM causal.stat_tables) AS seen_before,
       (SELECT beat FROM causal.heartbeats WHERE region = 'south') AS south_beat
  FROM chat.messages \gset
-- Proof that west and south sent what they would have: each writes after
-- this (west a message, south, fenced, its next heartbeat), and a stream
-- keeps commit order, so what either would send back of east's rows, which
-- they applied long before, is here once that is.
CREATE FUNCTION pg_temp.await_west_and_south(south_beat bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..600 LOOP
    IF EXISTS (SELECT FROM chat.messages WHERE body = 'after the count')
       AND (SELECT beat FROM causal.heartbeats WHERE region = 'south') > south_beat THEN
      RETURN true;
    END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
  RETURN false;
END $$;
SELECT dblink_exec(:'west', $$INSERT INTO chat.messages (conversation_id, body) VALUES (78, 'after the count')$$) \g /dev/null
SELECT ok(pg_temp.await_west_and_south(:south_beat), 'west''s next message and south''s next heartbeat reached east');
SELECT is((SELECT count(*) FROM chat.messages), :rows_before::bigint + 1, 'no more rows arrive than west''s new one');
SELECT is((SELECT applied + duplicates + winners_replaced FROM causal.stat_tables), :seen_before::bigint + 1,
          'nothing more is applied or dropped');
SELECT cmp_ok(pg_wal_lsn_diff(pg_current_wal_lsn(), :'wal_before'), '<', 65536::numeric,
              'no loop: idle, the region writes next to no WAL');

-- a reply is stamped after what it replies to, in every region
SELECT ok(bool_and(m.hlc > d), 'every message''s hlc is above each of its deps')
  FROM chat.messages m, unnest(m.deps) d;

-- the msg_id retried in two regions
SELECT is((SELECT hlc::text FROM chat.messages WHERE msg_id = :'retried'), :'winner',
          'one winner for the retried msg_id: the smaller hlc');
SELECT is(pg_temp.at(:'west', format('SELECT hlc::text FROM chat.messages WHERE msg_id = %L', :'retried')), :'winner',
          'west holds the same winner');
SELECT cmp_ok((SELECT winners_replaced FROM causal.stat_tables WHERE relid = 'chat.messages'::regclass)
              + pg_temp.at(:'west', 'SELECT winners_replaced FROM causal.stat_tables')::bigint, '>=', 1::bigint,
              'the losing copy was replaced where it had been written');

-- the malformed row
SELECT is(pg_temp.at(:'west', 'SELECT reason FROM causal.quarantine'), 'a dep is not older than the message itself',
          'west quarantined the malformed row with the reason');
SELECT is(pg_temp.at(:'south', 'SELECT row_data->>''body'' FROM causal.quarantine'), 'malformed',
          'south kept it, whole, in causal.quarantine');
SELECT is(pg_temp.at(:'south', 'SELECT count(*) FROM pg_stat_subscription WHERE pid IS NOT NULL'), '2',
          'and its apply workers run on');

-- the row that broke west's CHECK
SELECT matches(pg_temp.at(:'west', $$SELECT string_agg(reason, '; ') FROM causal.quarantine WHERE row_data->>'body' LIKE 'long %'$$),
               'violates check constraint "short_bodies"', 'west quarantined the row its CHECK refused, with the reason');
SELECT is(pg_temp.at(:'south', $$SELECT count(*) FROM chat.messages WHERE body LIKE 'long %'$$), '1',
          'south, without the CHECK, stored it');

-- the partitioned region's writes
SELECT is((SELECT causal.is_orphan(crdb_region, epoch, hlc) FROM chat.messages WHERE body = 'split brain'), true,
          'south''s write after its fence is an orphan');
SELECT is(pg_temp.at(:'south', 'SELECT causal.is_orphan(crdb_region, epoch, hlc) FROM chat.messages WHERE body = ''split brain'''), 't',
          'in south too');
SELECT cmp_ok((SELECT orphans FROM causal.stat_tables WHERE relid = 'chat.messages'::regclass), '>=', 1::bigint,
              'the apply path counted it');
SELECT throws_ok(format('SELECT dblink_exec(%L, %L)', :'south',
                        'INSERT INTO chat.messages (conversation_id, body) VALUES (42, ''after the fence'')'),
                 '5C001', NULL, 'south, now that it knows, refuses local writes');

-- listeners hear about applied rows
SELECT matches(:'notified'::text, 'notification "chat.messages" with payload "message"',
               'west''s listener was notified of the row applied from east');
SELECT * FROM finish();
