#!/usr/bin/env bash
# Apply workers racing for one msg_id (extension/table/apply_path.cpp): two
# sessions in replica mode bring copies of the same new msg_ids at the same
# moments, as two subscriptions of one region do. Each takes the msg_id's
# lock before it looks for the row and keeps it until its own row is in the
# index, so the second always finds the first's row and applies the copy
# rule: no insert fails on the unique index (which would stop a
# subscription until it retries), and every copy is kept.
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/cluster.sh
source regress/lib/tap.sh
here=regress/pgtap/scenarios
trap 'instance_stop apply-race >/dev/null 2>&1' EXIT

{ instance_init apply-race 24322 1 test-east && instance_start apply-race; } >/dev/null 2>&1 ||
  bail "could not start an instance"
instance_psql apply-race -d postgres >/dev/null <<'SQL' || bail "could not set up the database"
SET client_min_messages = warning;
CREATE EXTENSION pg_causal;
CREATE SCHEMA race;
CREATE TABLE race.messages (conversation_id bigint, sender text, body text);
SELECT causal.enable('race.messages', 'conversation_id');
CREATE SEQUENCE race.counter;
SQL

out=$(PGOPTIONS="-c session_replication_role=replica" "$PGBIN/pgbench" -n -h "$CAUSAL_WORK" \
        -p "$(instance_port apply-race)" -U postgres -d postgres -c 2 -j 2 -T 4 -f "$here/apply_race.pgbench" 2>&1)
pgbench_rc=$?
done_count=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
ok "$([ "$pgbench_rc" = 0 ] && ! grep -q 'aborted' <<<"$out"; echo $?)" \
   "no copy failed on the unique index ($done_count copies brought)"
grep -m3 -i 'error' <<<"$out" | while read -r line; do diag "$line"; done
read -r rows ids copies both < <(instance_psql apply-race -d postgres -At -F ' ' -c \
  "SELECT count(*), count(DISTINCT msg_id), sum(1 + cardinality(copies)), count(*) FILTER (WHERE cardinality(copies) > 0)
     FROM race.messages")
is "$rows" "$ids" "one row per msg_id"
is "$copies" "$done_count" "every copy brought is kept, in its row or in its copies"
ok "$([ "${both:-0}" -gt 0 ]; echo $?)" "the sessions did race: $both msg_ids were brought by both"
done_testing
