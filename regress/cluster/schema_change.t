#!/usr/bin/env bash
# Schema changes on a live mesh of three regions. A column added in one
# region alone stops the links out of it: causalctl status says which link,
# why (the apply worker's own error) and what to do. causalctl ddl makes a
# change in every region in the order that keeps the links flowing, while
# every region writes: an added column, an index built concurrently, a
# column's type changed; it refuses a dropped column, and a statement that
# fails somewhere changes no region.
source "$(dirname "$0")/../lib/cluster-test.sh"
regions=(us-east eu-west ap-south)
MESH_CONF=()
mesh_up schema 28600 5 "${regions[@]}" || bail "could not build the mesh"

# Errors of every apply and table sync worker so far, all regions together.
link_errors() {
  local r total=0 n
  for r in "${regions[@]}"; do
    n=$(mesh_sql "$r" -At -c "SELECT coalesce(sum(apply_error_count + sync_error_count), 0) FROM pg_stat_subscription_stats")
    total=$((total + n))
  done
  echo "$total"
}
everywhere() {  # everywhere SQL: the answer in every region, one line
  local r; for r in "${regions[@]}"; do printf '%s|' "$(mesh_sql "$r" -At -c "$1")"; done
}
arrives() {  # arrives BODY: the message reaches every region within 20 s
  local r
  for r in "${regions[@]}"; do
    wait_until "$(mesh_instance "$r")" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body = '$1'" 20 || return 1
  done
}

# --- a column added in one region alone --------------------------------------
mesh_sql eu-west -c "ALTER TABLE chat.messages ADD COLUMN mood text" >/dev/null || bail "could not add a column"
mesh_sql eu-west -c "INSERT INTO chat.messages (conversation_id, sender, body, mood) VALUES (1, 'eve', 'drifted', 'glad')" \
  >/dev/null || bail "could not write in eu-west"
# Wait for this link's own error: ap-south's may come first, and a worker
# PostgreSQL has just relaunched streams for a moment before it fails again.
for _ in $(seq 1 60); do
  run out causalctl_mesh status
  grep -qE '^  eu-west -> us-east +down ' <<<"$out" &&
    [[ $out == *"eu-west -> us-east: the apply worker stopped on an error"*"missing replicated column"* ]] && break
  sleep 0.5
done
is "$rc" 1 "status after a column was added in eu-west alone: exit 1"
ok "$(grep -qE '^  eu-west -> us-east +down ' <<<"$out"; echo $?)" "... the link eu-west -> us-east is down"
ok "$([[ $out == *"eu-west -> us-east: the apply worker stopped on an error"*"missing replicated column"* ]]; echo $?)" \
   "... stopped by its apply worker's error, quoted"
ok "$(contains "$out" "causalctl ddl")" "... and it says what to do"
[[ $out == *"missing replicated column"* ]] || diag "$out"
for r in us-east ap-south; do
  mesh_sql "$r" -c "ALTER TABLE chat.messages ADD COLUMN mood text" >/dev/null || bail "could not add the column in $r"
done
arrives drifted
ok $? "once the other regions have the column too, the message arrives everywhere"

# --- causalctl ddl while every region writes ---------------------------------
cat >"$work/write.sql" <<'SQL'
INSERT INTO chat.messages (conversation_id, sender, body)
VALUES (1 + (random() * 9)::int, current_setting('causal.region'), 'steady');
SQL
writing=1
writer() {  # writes until $work/stop exists
  while [ ! -e "$work/stop" ]; do mesh_sql "$1" -f "$work/write.sql" >/dev/null 2>&1; sleep 0.02; done
}
pids=()
for r in "${regions[@]}"; do writer "$r" & pids+=($!); done
sleep 2
before=$(link_errors)
# Messages each region wrote before the first change: the writers must go
# on through all three (a count, not a rate: the machine's speed decides how
# many).
written_before=$(mesh_sql us-east -At -c "SELECT string_agg(sender || ':' || n, ' ' ORDER BY sender)
                                           FROM (SELECT sender, count(*) n FROM chat.messages
                                                  WHERE body = 'steady' GROUP BY sender) c")

run out causalctl_mesh ddl "ALTER TABLE chat.messages ADD COLUMN priority int NOT NULL DEFAULT 0"
is "$rc" 0 "ddl: add a column while every region writes: exit 0"
[ "$rc" = 0 ] || diag "$out"
is "$(everywhere "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'chat.messages'::regclass AND attname = 'priority'")" \
   "integer|integer|integer|" "... the column is in every region"
mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body, priority) VALUES (2, 'ana', 'urgent', 5)" >/dev/null
arrives urgent
ok $? "... a message written with it reaches every region"
is "$(everywhere "SELECT priority FROM chat.messages WHERE body = 'urgent'")" "5|5|5|" "... with its value"

run out causalctl_mesh ddl "CREATE INDEX CONCURRENTLY messages_priority ON chat.messages (priority)"
is "$rc" 0 "ddl: CREATE INDEX CONCURRENTLY: exit 0"
is "$(everywhere "SELECT count(*) FROM pg_index WHERE indexrelid = to_regclass('chat.messages_priority') AND indisvalid")" \
   "1|1|1|" "... a valid index in every region"

run out causalctl_mesh ddl "ALTER TABLE chat.messages ALTER COLUMN priority TYPE bigint"
is "$rc" 0 "ddl: change a column's type while every region writes: exit 0"
[ "$rc" = 0 ] || diag "$out"
mesh_sql ap-south -c "INSERT INTO chat.messages (conversation_id, sender, body, priority) VALUES (3, 'raj', 'huge', 5000000000)" >/dev/null
arrives huge
ok $? "... a value only the new type holds reaches every region"
is "$(everywhere "SELECT priority FROM chat.messages WHERE body = 'huge'")" "5000000000|5000000000|5000000000|" "... unchanged"

# Every writer goes on after the last change: each region's count of its
# messages in us-east grows past what it was before the first.
grew=0
for r in "${regions[@]}"; do
  b=$(grep -oE "(^| )$r:[0-9]+" <<<"$written_before" | cut -d: -f2)
  wait_until "$(mesh_instance us-east)" "$MESH_DB" \
    "SELECT count(*) > ${b:-0} FROM chat.messages WHERE body = 'steady' AND sender = '$r'" 30 && grew=$((grew + 1))
done
touch "$work/stop"
for pid in "${pids[@]}"; do wait "$pid"; done
diag "messages each region wrote before the changes: $written_before"
is "$grew" "${#regions[@]}" "every region kept writing through the changes, and its messages reached us-east"
is "$(link_errors)" "$before" "no link stopped on an error during the three changes"

# --- what ddl refuses, and a statement that fails somewhere --------------------
columns() { everywhere "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
                         WHERE attrelid = 'chat.messages'::regclass AND attnum > 0 AND NOT attisdropped"; }
had=$(columns)
run out causalctl_mesh ddl "ALTER TABLE chat.messages DROP COLUMN mood"
is "$rc" 4 "ddl DROP COLUMN: refused, exit 4"
ok "$(contains "$out" "Nothing was changed")" "... saying nothing was changed"
run out causalctl_mesh ddl "ALTER TABLE chat.messages RENAME COLUMN mood TO feeling"
is "$rc" 4 "ddl RENAME COLUMN: refused, exit 4"
mesh_sql ap-south -c "CREATE TABLE chat.only_here (x int)" >/dev/null
run out causalctl_mesh ddl "ALTER TABLE chat.only_here ADD COLUMN y int"
is "$rc" 3 "ddl of a table one region lacks: exit 3"
ok "$(contains "$out" "every region rolled back")" "... every region rolled back"
is "$(mesh_sql ap-south -At -c "SELECT count(*) FROM pg_attribute WHERE attrelid = 'chat.only_here'::regclass AND attname = 'y'")" \
   0 "... ap-south, which has the table, does not have the column"
is "$(columns)" "$had" "... and no message table changed"

# --- refused by what the catalog shows, whatever the statement's text ----------
# Each runs in every region's open transaction and is judged by the message
# table's columns, type and shape before and after it (src/core/schema_change).
run out causalctl_mesh ddl "ALTER TABLE chat.messages DROP mood"
is "$rc" 4 "ddl ALTER TABLE ... DROP mood (no COLUMN for a pattern to see): refused, exit 4"
ok "$(contains "$out" "drops column mood of message table chat.messages (in every region)")" \
   "... naming the column, the table and where"
[ "$rc" = 4 ] || diag "$out"
is "$(columns)" "$had" "... and every region still has the column"
type_of() { everywhere "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
                         WHERE attrelid = 'chat.messages'::regclass AND attname = '$1'"; }
run out causalctl_mesh ddl "ALTER TABLE chat.messages ALTER COLUMN mood TYPE integer USING length(mood)"
is "$rc" 4 "ddl: a column's type changed to one the old values may not fit (text to integer): refused, exit 4"
ok "$(contains "$out" "changes the type of column mood of message table chat.messages from text to integer")" \
   "... saying which change"
is "$(type_of mood)" "text|text|text|" "... and it is text in every region"
run out causalctl_mesh ddl "ALTER TABLE chat.messages ALTER COLUMN epoch TYPE text"
is "$rc" 4 "ddl: pg_causal's column epoch retyped: refused, exit 4"
ok "$(contains "$out" "pg_causal's column epoch")" "... saying it is pg_causal's"
# hlc is the key of an index on causal.latest_stamp(hlc, ...), which has no
# form for text: PostgreSQL refuses the statement itself, in every region.
run out causalctl_mesh ddl "ALTER TABLE chat.messages ALTER COLUMN hlc TYPE text"
is "$rc|$(type_of hlc)" "3|causal.hlc|causal.hlc|causal.hlc|" "ddl: pg_causal's column hlc retyped: fails, and hlc stays causal.hlc everywhere"
run out causalctl_mesh ddl "ALTER TABLE chat.messages DISABLE TRIGGER causal_message_stored"
is "$rc" 4 "ddl: one of pg_causal's triggers disabled: refused, exit 4"
ok "$(contains "$out" "out of the shape of a message table")" "... as taking the table out of the shape"
is "$(everywhere "SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'chat.messages'::regclass
                   AND tgname = 'causal_message_stored'")" "A|A|A|" "... and the trigger stays enabled everywhere"
run out causalctl_mesh ddl "ALTER TABLE chat.messages RENAME TO letters"
is "$rc" 4 "ddl: the message table renamed: refused, exit 4"
ok "$(contains "$out" "renames message table chat.messages to chat.letters")" "... saying so"

# A COMMIT that fails in one region after another committed: the change
# cannot be taken back there, so the regions after it commit still (they
# stopped, and the links into them waited too). eu-west, second of three,
# refuses at COMMIT (a deferred foreign key); us-east and ap-south commit.
everywhere_do() { local r; for r in "${regions[@]}"; do mesh_sql "$r" -c "$1" >/dev/null || return 1; done; }
everywhere_do "CREATE TABLE public.ddl_probe (x int)" || bail "could not create public.ddl_probe"
mesh_sql eu-west -c "CREATE TABLE public.ddl_probe_parent (x int PRIMARY KEY)" \
                 -c "ALTER TABLE public.ddl_probe ADD FOREIGN KEY (x) REFERENCES public.ddl_probe_parent
                     DEFERRABLE INITIALLY DEFERRED" >/dev/null || bail "could not add eu-west's deferred key"
run out causalctl_mesh ddl "INSERT INTO public.ddl_probe VALUES (1)"
is "$rc" 3 "ddl whose COMMIT fails in eu-west, after us-east committed: exit 3"
ok "$(contains "$out" "committed in us-east, ap-south, unknown in eu-west")" "... saying where it is, and where not"
[ "$rc" = 3 ] || diag "$out"
is "$(everywhere "SELECT count(*) FROM public.ddl_probe")" "1|0|1|" "... and ap-south, after eu-west, committed too"

# A COPY is no schema change: libpq hands its result out again until the
# copy ends, and causalctl spun on it with every region's transaction open.
for copy in "COPY chat.messages TO STDOUT" "COPY chat.messages (body) FROM STDIN"; do
  run out env CAUSALCTL_CONFIG="$CAUSAL_WORK/$MESH_PREFIX.causalctl.conf" timeout 60 "$CAUSAL_BUILD/causalctl" ddl "$copy"
  is "$rc" 3 "ddl '$copy': ends, exit 3"
  ok "$(contains "$out" "causalctl runs no COPY")" "... saying it runs no COPY"
done
sessions=""
for _ in $(seq 1 50); do
  sessions=$(everywhere "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'causalctl'")
  [ "$sessions" = "0|0|0|" ] && break; sleep 0.1
done
is "$sessions" "0|0|0|" "... and leaves no session behind"

# --- the locks: in every region at once, and never held by a causalctl gone ----
# causalctl's granted ACCESS EXCLUSIVE locks on chat.messages in REGION
ctl_locks() {
  mesh_sql "$1" -At -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                        WHERE a.application_name = 'causalctl' AND l.relation = 'chat.messages'::regclass
                          AND l.mode = 'AccessExclusiveLock' AND l.granted"
}
# hold_lock REGION SECONDS: a session that holds chat.messages that long, in
# the background (blocker_pid), once it has the lock.
hold_lock() {
  PGAPPNAME=blocker mesh_sql "$1" -c "BEGIN" -c "LOCK TABLE chat.messages IN ACCESS SHARE MODE" \
    -c "SELECT pg_sleep($2)" -c "COMMIT" >/dev/null 2>&1 &
  blocker_pid=$!
  wait_until "$(mesh_instance "$1")" "$MESH_DB" "SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE a.application_name = 'blocker' AND l.relation = 'chat.messages'::regclass AND l.granted" 10
}
# until_locks EXPECTED: polls (10 s) until eu-west's and ap-south's count is EXPECTED
until_locks() {
  local _
  for _ in $(seq 1 100); do
    [ "$(ctl_locks eu-west)$(ctl_locks ap-south)" = "$1" ] && return 0
    sleep 0.1
  done
  return 1
}
hold_lock us-east 5 || bail "the blocker did not get its lock in us-east"
causalctl_mesh ddl "ALTER TABLE chat.messages ADD COLUMN note text" >"$work/ddl-note.out" 2>&1 &
ddl_pid=$!
until_locks 11
ok $? "while us-east's lock is waited for, eu-west and ap-south hold theirs already: the locks go to every region at once"
wait "$ddl_pid"
is "$?" 0 "... and once us-east's lock is free, the change goes through: exit 0"
wait "$blocker_pid"
is "$(type_of note)" "text|text|text|" "... in every region"

# A causalctl frozen (SIGSTOP: a host gone, its sockets still open) while it
# holds the locks: each region ends its session once it has said nothing
# for --idle-timeout, which rolls back and frees the lock.
hold_lock us-east 120 || bail "the blocker did not get its lock in us-east"
CAUSALCTL_CONFIG="$CAUSAL_WORK/$MESH_PREFIX.causalctl.conf" "$CAUSAL_BUILD/causalctl" \
  ddl "ALTER TABLE chat.messages ADD COLUMN frozen text" --idle-timeout 2 --lock-timeout 100 >/dev/null 2>&1 &
ctl_pid=$!
until_locks 11
held=$?
ok "$held" "causalctl holds its locks in eu-west and ap-south, waiting for us-east's"
kill -STOP "$ctl_pid"
stopped_at=$(now)
until_locks 00
released=$?
# (not ok as well when it never held them: nothing was shown then)
ok "$((held || released))" "frozen, it holds them no longer than its --idle-timeout 2 ($(since "$stopped_at") s after it froze)"
kill -9 "$ctl_pid"
wait "$ctl_pid" 2>/dev/null
mesh_sql us-east -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'blocker'" >/dev/null
wait "$blocker_pid" 2>/dev/null
for r in "${regions[@]}"; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" \
    "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'causalctl'" 20 || break
done
ok $? "killed (kill -9), no session of it is left in any region"
is "$(type_of frozen)" "|||" "... and no region has the column it was adding"

# Killed while its statement runs (a long rewrite, here a sleep): each
# region notices the client gone within a second and ends the statement,
# instead of holding what it locked until the statement ends.
CAUSALCTL_CONFIG="$CAUSAL_WORK/$MESH_PREFIX.causalctl.conf" "$CAUSAL_BUILD/causalctl" \
  ddl "SELECT pg_sleep(60)" >/dev/null 2>&1 &
ctl_pid=$!  # causalctl's own (causalctl_mesh would put a shell between)
running=1
for _ in $(seq 1 100); do
  [ "$(everywhere "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'causalctl'
                    AND query = 'SELECT pg_sleep(60)' AND state = 'active'")" = "1|1|1|" ] && { running=0; break; }
  sleep 0.1
done
ok "$running" "causalctl's statement runs in every region"
kill -9 "$ctl_pid"
wait "$ctl_pid" 2>/dev/null
killed_at=$(now)
gone=1
for _ in $(seq 1 100); do
  [ "$(everywhere "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'causalctl'")" = "0|0|0|" ] &&
    { gone=0; break; }
  sleep 0.1
done
ok "$((running || gone))" "killed, its sessions end within 10 s, not when the statement would ($(since "$killed_at") s)"

run out causalctl_mesh verify --wait 30
is "$rc" 0 "verify: every region holds the same messages in the same order"
[ "$rc" = 0 ] || diag "$out"
done_testing
