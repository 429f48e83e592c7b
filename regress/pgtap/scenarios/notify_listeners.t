#!/usr/bin/env bash
# NOTIFY only where someone listens (extension/table/listeners.cpp): a write to a
# notify => true table is announced (causal.stat_tables.announced) while a
# session of the database listens, on any channel, and not otherwise. A
# session that starts listening waits for the writers that found nobody
# listening and are still running, so the rows it then reads include
# theirs; it waits for no other transaction.
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
CREATE TABLE n.other (v int);
SQL

write() { sql -c "INSERT INTO n.messages (conversation_id, sender, body) VALUES (7, 'ana', '$1')" >/dev/null; }
announced() { sql -c "SELECT coalesce((SELECT announced FROM causal.stat_tables WHERE relid = 'n.messages'::regclass), 0)"; }
# announces BODY: "yes" when a message written now is announced, else "no"
announces() {
  local before; before=$(announced)
  write "$1"
  [ "$(announced)" -gt "$before" ] && echo yes || echo no
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

# writing_meanwhile DB SQL: runs SQL in a transaction of DB that stays open
# 3 s more, in the background ($writer); returns once it is open.
writing_meanwhile() {
  instance_psql notify-listeners -d "$1" -X -q -c "BEGIN" -c "$2" -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null 2>&1 &
  writer=$!
  for _ in $(seq 50); do
    [ "$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(3)'")" = 1 ] && return 0
    sleep 0.1
  done
}
# What a first LISTEN says when it may wait 1 s at most: nothing, or the
# lock timeout.
first_listen() { sql -c "SET lock_timeout = '1s'" -c 'LISTEN "n.messages"' 2>&1; }

is "$(announces 'nobody listens')" no "a write while nobody listens is not announced"

start_listener 1
listen_in 'LISTEN "n.messages";'
settle_listener 1 || bail "the listening session did not answer"
is "$(announces 'someone listens')" yes "a write while a session listens is announced"
hlc=$(sql -c "SELECT hlc FROM n.messages WHERE body = 'someone listens'")
settle_listener 1
ok "$(grep -q "notification \"n.messages\" with payload \"message\"" "$work/out.1"; echo $?)" \
   "and the listening session is told of it: payload message, nothing of the message itself (any login may LISTEN)"
ok "$(! grep -q "$hlc" "$work/out.1"; echo $?)" "... not its hlc"
sql -c "ALTER SYSTEM SET causal.notify_payload = 'hlc'" -c "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 50); do [ "$(sql -c "SHOW causal.notify_payload")" = hlc ] && break; sleep 0.1; done
is "$(announces 'with its hlc')" yes "with causal.notify_payload = hlc, a write is announced"
hlc=$(sql -c "SELECT hlc FROM n.messages WHERE body = 'with its hlc'")
settle_listener 1
ok "$(grep -q "notification \"n.messages\" with payload \"message $hlc\"" "$work/out.1"; echo $?)" \
   "... with payload 'message <hlc>', for a latency probe"
sql -c "ALTER SYSTEM RESET causal.notify_payload" -c "SELECT pg_reload_conf()" >/dev/null
listen_in 'BEGIN; UNLISTEN *; ROLLBACK;'
settle_listener 1
is "$(announces 'unlisten rolled back')" yes "UNLISTEN * rolled back: the session still counts as listening"
listen_in 'BEGIN; SAVEPOINT s; UNLISTEN *; ROLLBACK TO s; COMMIT;'
settle_listener 1
is "$(announces 'unlisten in a savepoint rolled back')" yes \
   "UNLISTEN * in a subtransaction rolled back: the session still counts"
listen_in 'BEGIN; SAVEPOINT s; UNLISTEN *; RELEASE s; COMMIT;'
settle_listener 1
is "$(announces 'unlisten in a savepoint released')" no "UNLISTEN * in a released subtransaction, committed: no longer"
listen_in 'LISTEN "n.messages";'
listen_in 'UNLISTEN *;'
settle_listener 1
is "$(announces 'unlistened')" no "UNLISTEN * committed: the session no longer counts"
listen_in 'LISTEN "n.messages";'
listen_in 'DISCARD ALL;'
settle_listener 1
is "$(announces 'discarded')" no "DISCARD ALL: the session no longer counts"
listen_in 'LISTEN other_channel;'
settle_listener 1
is "$(announces 'other channel')" yes "a session listening on any channel of the database counts"
stop_listener
for _ in $(seq 50); do
  [ "$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN other_channel;'")" = 0 ] && break
  sleep 0.1
done
is "$(announces 'listener gone')" no "a listening session that exits no longer counts"

prepare_error=$(sql -c "BEGIN" -c "INSERT INTO n.messages (conversation_id, sender, body) VALUES (7, 'ana', 'prepared')" \
                    -c "PREPARE TRANSACTION 'p'" 2>&1 >/dev/null)
ok "$(grep -q 'cannot PREPARE a transaction that wrote to a causal message table with notify => true' <<<"$prepare_error"; echo $?)" \
   "a transaction that wrote to a notify table unannounced cannot be prepared (it could never announce)"

# A writer that found nobody listening, still running; then a session starts
# listening and reads: its read must include the writer's row.
writing_meanwhile postgres "INSERT INTO n.messages (conversation_id, sender, body) VALUES (9, 'cy', 'in flight')"
seen=$(sql -q -c 'LISTEN "n.messages"' -c "SELECT count(*) FROM n.messages WHERE body = 'in flight'")
wait "$writer"
is "$seen" "1" "a session that starts listening waits for unannounced writers: its next read has their rows"

# An unannounced writer of another database does not hold a LISTEN up.
sql >/dev/null <<'SQL'
CREATE DATABASE other;
SQL
instance_psql notify-listeners -d other -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION pg_causal;
CREATE TABLE elsewhere (conversation_id bigint, sender text, body text);
SELECT causal.enable('elsewhere', 'conversation_id', notify => true);
SQL
writing_meanwhile other "INSERT INTO elsewhere (conversation_id, sender, body) VALUES (1, 'di', 'x')"
out=$(first_listen)
wait "$writer"
is "$out" "" "a LISTEN does not wait for an unannounced writer of another database"

# Any other transaction, however long, does not hold a LISTEN up.
writing_meanwhile postgres "INSERT INTO n.other VALUES (1)"
out=$(first_listen)
wait "$writer"
is "$out" "" "a LISTEN does not wait for a write transaction that touched no notify table"
done_testing
