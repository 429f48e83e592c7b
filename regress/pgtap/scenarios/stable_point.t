#!/usr/bin/env bash
# The stable point (extension/read/stable.cpp) stays below every stamp of a
# transaction still open: a DELETE's tombstone as much as an INSERT's
# message, or a cursor taken meanwhile passes a deletion it never sees. A
# transaction that stamped cannot be prepared: its mark would have to
# outlive the session, and one abandoned PREPARE would hold every cursor of
# every region down for good.
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/cluster.sh
source regress/lib/tap.sh
work=$(mktemp -d)
trap 'instance_stop stable-point >/dev/null 2>&1; rm -rf "$work"' EXIT

{ instance_init stable-point 24333 1 test-east "max_prepared_transactions = 4" &&
  instance_start stable-point; } >/dev/null 2>&1 || bail "could not start an instance"
sql() { instance_psql stable-point -d postgres -X -At -v ON_ERROR_STOP=1 "$@"; }
sql >/dev/null <<'SQL' || bail "could not set up the database"
SET client_min_messages = warning;
CREATE EXTENSION pg_causal;
CREATE SCHEMA s;
CREATE TABLE s.messages (conversation_id bigint, sender text, body text);
SELECT causal.enable('s.messages', 'conversation_id');
CREATE TABLE s.other (v int);
CREATE TABLE s.released (yes boolean);
INSERT INTO s.messages (conversation_id, sender, body) VALUES (1, 'ana', 'to delete'), (1, 'ana', 'to keep');
SQL

# open_while SQL: runs SQL in a transaction that stays open until release,
# in the background; returns once SQL has run. (In READ COMMITTED each
# statement of the loop sees the row release commits.)
open_while() {
  sql -c "DELETE FROM s.released" >/dev/null
  sql -c "BEGIN" -c "$1" -c "SELECT 'ran'" \
      -c "DO \$\$ BEGIN WHILE NOT EXISTS (SELECT FROM s.released) LOOP PERFORM pg_sleep(0.05); END LOOP; END \$\$" \
      -c "COMMIT" >"$work/open.out" 2>&1 &
  opened=$!
  for _ in $(seq 200); do grep -q '^ran$' "$work/open.out" && return 0; sleep 0.05; done
  return 1
}
release() { sql -c "INSERT INTO s.released VALUES (true)" >/dev/null; wait "$opened"; }

# --- a DELETE holds the point down until it commits -----------------------------
open_while "DELETE FROM s.messages WHERE body = 'to delete'" || bail "the DELETE did not run: $(cat "$work/open.out")"
sleep 0.2  # the clock ticks on: a point that ignores the tombstone passes it
during=$(sql -c "SELECT causal.local_stable()")
release
deleted=$(sql -c "SELECT deleted_at FROM s.messages WHERE deleted_at IS NOT NULL")
[ -n "$deleted" ] || bail "no tombstone: $(cat "$work/open.out")"
is "$(sql -c "SELECT '$during'::causal.hlc <= '$deleted'::causal.hlc")" t \
   "a DELETE still open keeps the stable point at or below its tombstone's stamp ($during vs $deleted)"
is "$(sql -c "SELECT causal.local_stable() > '$deleted'::causal.hlc")" t "... and lets it pass once committed"

# --- an INSERT, the same (the rule the DELETE now shares) ---------------------
open_while "INSERT INTO s.messages (conversation_id, sender, body) VALUES (1, 'ana', 'late')" ||
  bail "the INSERT did not run: $(cat "$work/open.out")"
sleep 0.2
during=$(sql -c "SELECT causal.local_stable()")
release
is "$(sql -c "SELECT '$during'::causal.hlc <= hlc FROM s.messages WHERE body = 'late'")" t \
   "an INSERT still open keeps the stable point at or below its message's stamp"

# --- PREPARE ------------------------------------------------------------------
prepare() {  # prepare NAME SQL: the error of PREPARE TRANSACTION after SQL, with its SQLSTATE
  sql -v VERBOSITY=verbose -c "BEGIN" -c "$2" -c "PREPARE TRANSACTION '$1'" 2>&1 >/dev/null
}
out=$(prepare p1 "INSERT INTO s.messages (conversation_id, sender, body) VALUES (1, 'ana', 'prepared')")
ok "$(grep -q '0A000.*cannot PREPARE a transaction that stamped a causal message' <<<"$out"; echo $?)" \
   "PREPARE after an INSERT into a message table: refused, 0A000"
[[ $out == *0A000* ]] || diag "$out"
is "$(sql -c "SELECT count(*) FROM s.messages WHERE body = 'prepared'")|$(sql -c "SELECT count(*) FROM pg_prepared_xacts")" \
   "0|0" "... nothing written, nothing prepared"
out=$(prepare p2 "DELETE FROM s.messages WHERE body = 'to keep'")
ok "$(grep -q '0A000' <<<"$out"; echo $?)" "PREPARE after a DELETE from a message table: refused, 0A000"
is "$(sql -c "SELECT count(*) FROM s.messages WHERE body = 'to keep' AND deleted_at IS NULL")" 1 "... the message is still there"
before=$(sql -c "SELECT causal.local_stable()")
out=$(prepare p3 "INSERT INTO s.other VALUES (1)")
is "$out" "" "PREPARE of a transaction that stamped nothing: allowed"
sleep 0.05
is "$(sql -c "SELECT causal.local_stable() > '$before'::causal.hlc")" t \
   "... and the point moves on while it stays prepared"
sql -c "COMMIT PREPARED 'p3'" >/dev/null
is "$(sql -c "SELECT count(*) FROM s.other")" 1 "... and commits"

done_testing
