#!/usr/bin/env bash
# pg_dump -Fc and pg_restore carry hlc columns, hlc[] columns and their
# indexes into a new database, value for value.
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/cluster.sh
trap 'instance_stop dump >/dev/null 2>&1' EXIT
{ instance_init dump 24326 6 test-dump && instance_start dump; } >/dev/null 2>&1 ||
  bail "could not start an instance"

instance_psql dump -d postgres >/dev/null <<'SQL' || bail "could not set up the source database"
CREATE DATABASE source;
CREATE DATABASE restored;
\c source
CREATE EXTENSION pg_causal;
CREATE SCHEMA chat;
CREATE TABLE chat.messages (id bigint PRIMARY KEY, h causal.hlc NOT NULL, deps causal.hlc[]);
INSERT INTO chat.messages
SELECT g, causal.hlc_now(), ARRAY[causal.hlc_from_parts(g, g % 65536, g % 65536)]
  FROM generate_series(1, 20000) g;
INSERT INTO chat.messages VALUES (0, '281474976710655.65535@65535', NULL);
CREATE INDEX messages_h ON chat.messages (h);
CREATE INDEX messages_h_brin ON chat.messages USING brin (h);
SET client_min_messages = warning;
CREATE TABLE chat.talk (conversation_id bigint, body text);
SELECT causal.enable('chat.talk', 'conversation_id', notify => true);
INSERT INTO chat.talk (conversation_id, body) SELECT g % 3, 'line ' || g FROM generate_series(1, 100) g;
SELECT causal.register_region('test-dump', 6), causal.fence_region('elsewhere', 1);
SQL

dump=$(instance_dir dump)/source.dump
instance_env dump
"$PGBIN/pg_dump" -Fc -d source -f "$dump" || bail "pg_dump failed"
"$PGBIN/pg_restore" --exit-on-error -d restored "$dump" || bail "pg_restore failed"

digest_sql="SELECT md5(string_agg(id || ' ' || h::text || ' ' || coalesce(deps::text, '-'), ',' ORDER BY h))
              FROM chat.messages"
digest=$(instance_psql dump -d source -At -c "$digest_sql") || bail "could not digest the source"
talk_sql="SELECT md5(string_agg(concat_ws(' ', msg_id, hlc, deps, crdb_region, epoch, body), ',' ORDER BY hlc))
            FROM chat.talk"
talk=$(instance_psql dump -d source -At -c "$talk_sql") || bail "could not digest chat.talk"
fencing_sql="SELECT md5((SELECT string_agg(concat_ws(' ', region, node_id, epoch, state, fenced_at, changed_at), ',' ORDER BY region) FROM causal.regions)
                     || (SELECT string_agg(concat_ws(' ', region, epoch, fenced_at), ',' ORDER BY region) FROM causal.fences))"
fencing=$(instance_psql dump -d source -At -c "$fencing_sql") || bail "could not digest the fencing state"
instance_psql dump -d restored -c 'CREATE EXTENSION pgtap' >/dev/null || bail "no pgtap"
tap_sql dump restored regress/pgtap/scenarios/dump_restore.sql -v digest="$digest" \
  -v talk="$talk" -v talk_sql="$talk_sql" -v fencing="$fencing" -v fencing_sql="$fencing_sql"
