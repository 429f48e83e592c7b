#!/usr/bin/env bash
# NOTIFY only where someone listens (extension/listeners.cpp). A transaction
# that queued a NOTIFY cannot be prepared, which makes "was a NOTIFY queued?"
# visible from SQL: a write to a notify => true table prepares while no
# session of the database listens, and does not while one does. A session
# that starts listening waits for writers already running, so the rows it
# then reads include theirs: none falls between its LISTEN and its read.
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/cluster.sh
source regress/lib/tap.sh
work=$(mktemp -d)
listener_pid=""
stop_listener() {
  [ -n "$listener_pid" ] || return 0
  exec 3>&-
  wait "$listener_pid" 2>/dev/null
  listener_pid=""
}
trap 'stop_listener; instance_stop notify-listeners >/dev/null 2>&1; rm -rf "$work"' EXIT

{ instance_init notify-listeners 24328 1 test-east "max_prepared_transactions = 4" &&
  instance_start notify-listeners; } >/dev/null 2>&1 || bail "could not start an instance"
sql() { instance_psql notify-listeners -d postgres -X -At -v ON_ERROR_STOP=1 "$@"; }
sql >/dev/null <<'SQL' || bail "could not set up the database"
SET client_min_messages = warning;
CREATE EXTENSION pg_causal;
CREATE SCHEMA n;
CREATE TABLE n.messages (conversation_id bigint, sender text, body text);
SELECT causal.enable('n.messages', 'conversation_id', notify => true);
SQL

# prepares BODY: 0 when a transaction writing a message with BODY can be
# prepared (it queued no NOTIFY); the error otherwise.
prepares() {
  sql -c "BEGIN" -c "INSERT INTO n.messages (conversation_id, sender, body) VALUES (7, 'ana', '$1')" \
      -c "PREPARE TRANSACTION 'p'" -c "COMMIT PREPARED 'p'" 2>&1 >/dev/null
}
# A listening session fed through a pipe: listen_in SQL sends it a statement.
start_listener() {
  mkfifo "$work/in.$1"
  instance_psql notify-listeners -d postgres -X -At <"$work/in.$1" >"$work/out.$1" 2>&1 &
  listener_pid=$!
  exec 3>"$work/in.$1"
}
listen_in() { echo "$1" >&3; }
# Until the session has run all it was sent: it answers a marker.
settle_listener() {
  local marker="done $RANDOM"
  listen_in "SELECT '$marker';"
  for _ in $(seq 100); do grep -q "$marker" "$work/out.$1" && return 0; sleep 0.1; done
  return 1
}
sessions_listening() {
  sql -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' OR query LIKE 'SELECT ''done%'"
}

out=$(prepares 'nobody listens')
is "$out" "" "a write while nobody listens queues no NOTIFY: its transaction can be prepared"

start_listener 1
listen_in 'LISTEN "n.messages";'
settle_listener 1 || bail "the listening session did not answer"
out=$(prepares 'someone listens')
ok "$(grep -q 'cannot PREPARE a transaction that has executed LISTEN, UNLISTEN, or NOTIFY' <<<"$out"; echo $?)" \
   "a write while a session listens queues its NOTIFY"
sql -c "INSERT INTO n.messages (conversation_id, sender, body) VALUES (8, 'bo', 'heard')" >/dev/null
hlc=$(sql -c "SELECT hlc FROM n.messages WHERE body = 'heard'")
settle_listener 1
ok "$(grep -q "notification \"n.messages\" with payload \"8 $hlc\"" "$work/out.1"; echo $?)" \
   "the listening session is told of the message"

listen_in 'BEGIN; UNLISTEN *; ROLLBACK;'
settle_listener 1
out=$(prepares 'unlisten rolled back')
ok "$([ -n "$out" ]; echo $?)" "UNLISTEN * rolled back: the session still counts as listening"
listen_in 'UNLISTEN *;'
settle_listener 1
out=$(prepares 'unlistened')
is "$out" "" "UNLISTEN * committed: the session no longer counts"
listen_in 'LISTEN "n.messages";'
listen_in 'DISCARD ALL;'
settle_listener 1
out=$(prepares 'discarded')
is "$out" "" "DISCARD ALL: the session no longer counts"
listen_in 'LISTEN other_channel;'
settle_listener 1
out=$(prepares 'other channel')
ok "$([ -n "$out" ]; echo $?)" "a session listening on any channel of the database counts"
stop_listener
for _ in $(seq 50); do [ "$(sessions_listening)" = 0 ] && break; sleep 0.1; done
out=$(prepares 'listener gone')
is "$out" "" "a listening session that exits no longer counts"

# A writer that checked before anyone listened, still running; then a
# session starts listening and reads: its read must include the writer's row.
sql -c "BEGIN" -c "INSERT INTO n.messages (conversation_id, sender, body) VALUES (9, 'cy', 'in flight')" \
    -c "SELECT pg_sleep(2)" -c "COMMIT" >/dev/null 2>&1 &
writer=$!
for _ in $(seq 50); do
  [ "$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(2)'")" = 1 ] && break
  sleep 0.1
done
seen=$(sql -q -c 'LISTEN "n.messages"' -c "SELECT count(*) FROM n.messages WHERE body = 'in flight'")
wait "$writer"
is "$seen" "1" "a session that starts listening waits for writers already running: its next read has their rows"
done_testing
