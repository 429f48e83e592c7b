-- Deletions follow the fences (src/core/copies.hpp): a tombstone that a
-- region wrote in an epoch the mesh had fenced deletes nothing, as that
-- region's inserts of the same window are orphans. The message keeps its
-- body where it has one, takes it back from the first live copy where the
-- tombstone erased it, and a deletion by an active region still deletes.
-- Each region lists what such deletions did in causal.fenced_deletions.
-- Rows arrive as the replication apply worker brings them
-- (session_replication_role = replica); this server is region test-east.
BEGIN;
SET LOCAL search_path = public, causal;
SET LOCAL client_min_messages = warning;
SELECT plan(20);

CREATE SCHEMA tap_fenced;
CREATE TABLE tap_fenced.chat (conversation_id bigint, sender text, body text);
SELECT causal.enable('tap_fenced.chat', 'conversation_id');

-- Stamps a minute ago, `ms` milliseconds apart.
CREATE FUNCTION pg_temp.at(ms int) RETURNS causal.hlc LANGUAGE sql AS $$
  SELECT causal.hlc_from_parts((extract(epoch FROM pg_catalog.now()) * 1000)::bigint - 60000 + ms, 0, 7)
$$;
CREATE FUNCTION pg_temp.id(n int) RETURNS uuid LANGUAGE sql AS $$
  SELECT ('00000000-0000-7000-8000-' || lpad(n::text, 12, '0'))::uuid
$$;
-- Message n as another region's copy: live with `body`, or, with
-- deleted_ms, the tombstone that `by` wrote then.
CREATE FUNCTION pg_temp.arrive(n int, body text, deleted_ms int DEFAULT NULL, by text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  SET LOCAL session_replication_role = replica;
  INSERT INTO tap_fenced.chat (msg_id, conversation_id, sender, body, hlc, deps, crdb_region, epoch, deleted_at, written_by)
  VALUES (pg_temp.id(n), 1, CASE WHEN deleted_ms IS NULL THEN 'ana' END, CASE WHEN deleted_ms IS NULL THEN body END,
          pg_temp.at(n), '{}', 'tap-west', 0, pg_temp.at(deleted_ms), coalesce(by, 'tap-west'));
  SET LOCAL session_replication_role = origin;
END $$;
CREATE FUNCTION pg_temp.held(n int) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(CASE WHEN deleted_at IS NULL THEN body END, 'deleted') FROM tap_fenced.chat WHERE msg_id = pg_temp.id(n)
$$;
CREATE FUNCTION pg_temp.noted(n int) RETURNS text LANGUAGE sql AS $$
  SELECT written_by || ':' || state FROM causal.fenced_deletions WHERE msg_id = pg_temp.id(n)
$$;

SELECT causal.register_region(r, k) FROM (VALUES ('tap-ap', 31), ('tap-late', 32), ('tap-eu', 33)) v(r, k) \g /dev/null
-- tap-ap is fenced from 100 ms on, in epoch 1.
INSERT INTO causal.fences (region, epoch, fenced_at) VALUES ('tap-ap', 1, pg_temp.at(100));

SELECT ok(causal.is_fenced_deletion('tap-ap', pg_temp.at(150)) AND NOT causal.is_fenced_deletion('tap-ap', pg_temp.at(50))
          AND NOT causal.is_fenced_deletion('tap-eu', pg_temp.at(150)),
          'causal.is_fenced_deletion(): the region''s deletions after its fenced_at, no other''s');

-- ==== over a live copy ======================================================
SELECT pg_temp.arrive(1, 'one');
SELECT pg_temp.arrive(1, NULL, 150, 'tap-ap');
SELECT is(pg_temp.held(1), 'one', 'a fenced region''s deletion of a message held here deletes nothing: the body stays');
SELECT is(pg_temp.noted(1), 'tap-ap:kept', '... and causal.fenced_deletions lists it as kept');

SELECT pg_temp.arrive(2, 'two');
SELECT pg_temp.arrive(2, NULL, 50, 'tap-ap');
SELECT is(pg_temp.held(2), 'deleted', 'its deletion from before the fence deletes');
SELECT is(pg_temp.noted(2), NULL, '... and is no fenced deletion');

-- ==== before the message ====================================================
SELECT pg_temp.arrive(3, NULL, 160, 'tap-ap');
SELECT is(pg_temp.held(3), 'deleted', 'a fenced deletion of a message not here yet is kept as its (erased) tombstone');
SELECT is(pg_temp.noted(3), 'tap-ap:awaiting body', '... awaiting the body');
SELECT pg_temp.arrive(3, 'three');
SELECT is(pg_temp.held(3), 'three', 'the live copy brings the body');
SELECT is(pg_temp.noted(3), 'tap-ap:restored', '... and the record says restored');

-- ==== before the fence ======================================================
SELECT pg_temp.arrive(4, 'four');
SELECT pg_temp.arrive(4, NULL, 300, 'tap-late');
SELECT is(pg_temp.held(4), 'deleted', 'a deletion whose fence has not arrived yet deletes');
INSERT INTO causal.fences (region, epoch, fenced_at) VALUES ('tap-late', 1, pg_temp.at(250));
SELECT results_eq($$SELECT region, epoch, since FROM causal.fence_scans WHERE region = 'tap-late'$$,
                  $$VALUES ('tap-late', 1::bigint, pg_temp.at(250))$$,
                  'the fence arriving leaves the relay a scan for its region''s tombstones, from fenced_at on');
SELECT pg_temp.arrive(4, 'four');
SELECT is(pg_temp.held(4), 'four', 'then a live copy (the relay asks peers for one) brings the body back');

-- ==== an active region's deletion wins ======================================
SELECT pg_temp.arrive(1, NULL, 400, 'tap-eu');
SELECT is(pg_temp.held(1), 'deleted', 'an active region''s deletion erases a message a fenced one could not');
SELECT pg_temp.arrive(5, NULL, 170, 'tap-ap');
SELECT pg_temp.arrive(5, NULL, 500, 'tap-eu');
SELECT is(pg_temp.held(5) || ' ' || pg_temp.noted(5), 'deleted tap-ap:erased',
          '... also one still awaiting its body: the record says erased');
SELECT pg_temp.arrive(6, NULL, 180, 'tap-ap');
DELETE FROM tap_fenced.chat WHERE msg_id = pg_temp.id(6);
SELECT results_eq($$SELECT written_by, deleted_at > pg_temp.at(1000) FROM tap_fenced.chat WHERE msg_id = pg_temp.id(6)$$,
                  $$VALUES ('test-east', true)$$,
                  'a DELETE here of a fenced tombstone writes this region''s own tombstone, which replicates');
SELECT is(pg_temp.noted(6), 'tap-ap:awaiting body',
          '... whose record the relay settles, not the deleting role (it may not write there)');
-- ... also for a role that may only write the table (the review found it
-- refused: the record was written as the deleting role).
CREATE ROLE tap_fenced_writer;
GRANT USAGE ON SCHEMA tap_fenced TO tap_fenced_writer;
GRANT SELECT, DELETE ON tap_fenced.chat TO tap_fenced_writer;
SELECT pg_temp.arrive(7, NULL, 185, 'tap-ap');
SET LOCAL ROLE tap_fenced_writer;
DELETE FROM tap_fenced.chat WHERE msg_id = pg_temp.id(7);
RESET ROLE;
SELECT results_eq($$SELECT written_by FROM tap_fenced.chat WHERE msg_id = pg_temp.id(7)$$, $$VALUES ('test-east')$$,
                  '... also when the deleting role may only write the table');
SELECT pg_temp.arrive(3, NULL, 190, 'tap-ap');
SELECT is(pg_temp.held(3), 'three', 'a fenced deletion arriving again over the body it lost changes nothing');

-- ==== the lift ==============================================================
UPDATE causal.fences SET lifted_at = pg_temp.at(600) WHERE region = 'tap-ap';
SELECT ok(causal.is_fenced_deletion('tap-ap', pg_temp.at(150)) AND NOT causal.is_fenced_deletion('tap-ap', pg_temp.at(700)),
          'once lifted, deletions inside the fenced interval stay fenced; those after the lift are not');
-- This region's own fence, lifted 300 ms ahead of its clock (within
-- causal.max_clock_offset), as a peer that rejoined it would stamp it.
INSERT INTO causal.fences (region, epoch, fenced_at) VALUES ('test-east', 7, pg_temp.at(100));
UPDATE causal.fences SET lifted_at = causal.hlc_from_parts((extract(epoch FROM clock_timestamp()) * 1000)::bigint + 300, 0, 9)
 WHERE region = 'test-east';
SELECT ok(causal.hlc_now() > (SELECT lifted_at FROM causal.fences WHERE region = 'test-east'),
          'the lift of this region''s own fence moves its clock past lifted_at: its deletions from then on are not fenced');

SELECT * FROM finish();
ROLLBACK;
