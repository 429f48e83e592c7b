#!/usr/bin/env bash
# The README's quick start, verbatim, on a fresh instance: its
# postgresql.conf lines, then each SQL block in a session of its own (the
# default search_path), as a reader would paste them into psql. Then what
# its third block teaches, where it matters: a message that arrives after a
# read with a smaller hlc than the read saw (its transaction took its stamp
# first and committed last) is missed by a read on from max(hlc), and
# returned by catch_up(..., since => cursor) from causal.stable_hlc().
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/cluster.sh
source regress/lib/tap.sh
work=$(mktemp -d)
trap 'exec 3>&-; instance_stop quickstart >/dev/null 2>&1; rm -rf "$work"' EXIT
# From "## Quick start" to the next heading of its level.
section=$(awk '/^## / { inside = ($0 == "## Quick start") } inside' README.md)
[ -n "$section" ] || bail "the README has no quick start"
block() {  # block LANG N: the Nth fenced block of that language in the section
  awk -v lang="$1" -v want="$2" '
    $0 == "```" lang { n++; inside = (n == want); next }
    /^```/ { inside = 0; next }
    inside' <<<"$section"
}
conf=$(block conf 1 | sed -e 's/#.*//' -e '/^[[:space:]]*$/d')
[ -n "$conf" ] || bail "the quick start has no conf block"
mapfile -t conf_lines <<<"$conf"
{ instance_init quickstart 24319 -1 '' "${conf_lines[@]}" && instance_start quickstart; } >/dev/null 2>&1 ||
  bail "could not start an instance with the quick start's settings"

plan 19
is "$(instance_psql quickstart -d postgres -At -c "SELECT current_setting('wal_level') || ' ' ||
                                                  current_setting('causal.region')")" "logical us-east" \
   "the quick start's settings are in force"
out=$(block sql 1 | instance_psql quickstart -d postgres -v ON_ERROR_STOP=1 -At 2>&1)
ok $? "the first SQL block runs verbatim${out:+: $(tail -n 1 <<<"$out")}"
ok "$(grep -qE '\|us-east\|0$' <<<"$out"; echo $?)" "... and the message table stamps its message in us-east, epoch 0"
chat() { instance_psql quickstart -d chat -At -c "$1"; }
is "$(chat "SELECT tableowner FROM pg_tables WHERE schemaname = 'app' AND tablename = 'messages'")" chat_app \
   "... the application owns the table"
is "$(chat "SELECT rolsuper::text || ' ' || pg_has_role('chat_dba', 'causal_admin', 'MEMBER')::text
              FROM pg_roles WHERE rolname = 'chat_dba'")" "false true" \
   "... and the DBA who enabled it is in causal_admin, no superuser"
is "$(chat "SELECT conversation FROM causal.message_tables() WHERE relid = 'app.messages'::regclass AND problem IS NULL")" \
   conversation_id "... and it is a well-formed message table"

out=$(block sql 2 | instance_psql quickstart -d postgres -v ON_ERROR_STOP=1 -At 2>&1)
ok $? "the second block (a reply, sent twice) runs verbatim in a new session${out:+: $(tail -n 1 <<<"$out")}"
mapfile -t answers < <(grep -E '^[0-9]+\.[0-9]{5}@[0-9]+$' <<<"$out")
ok "$([ "${#answers[@]}" = 2 ] && [ "${answers[0]}" = "${answers[1]}" ]; echo $?)" \
   "... both sends answer with the same hlc (${answers[*]:-none})"
is "$(chat "SELECT count(*) FROM app.messages WHERE msg_id = '0190b2c4-7e5a-7c3e-9a41-5d2f8e6b1a07'")" 1 \
   "... and store one message"
is "$(chat "SELECT r.deps = ARRAY[p.hlc] AND r.hlc > p.hlc FROM app.messages r, app.messages p
             WHERE r.body = 'How about 3pm?' AND p.body = 'Let''s meet'")" t \
   "... whose deps name the message it answers, and whose hlc is above it"

out=$(block sql 3 | instance_psql quickstart -d postgres -v ON_ERROR_STOP=1 -At 2>&1)
ok $? "the third block runs in a new session, causal off its search_path${out:+: $(tail -n 1 <<<"$out")}"
hlc_re='[0-9]+\.[0-9]{5}@[0-9]+'
is "$(grep -E "^[a-z]+\|.*\|$hlc_re$" <<<"$out" | cut -d'|' -f1 | tr '\n' ' ')" "ana ben " \
   "... and opens the conversation in order"
is "$(grep -E '^[a-z]+\|' <<<"$out" | grep -vE "\|$hlc_re$")" "cy|Hi, I just joined" \
   "... and reads on from its cursor: the message written after it, and nothing it had shown"

# A message that arrives after a read with a smaller hlc than the read saw:
# dan's transaction takes its stamp, ana's takes a later one and commits,
# a client takes its cursor and reads, and only then does dan's commit.
mkfifo "$work/dan"
instance_psql quickstart -d chat -At <"$work/dan" >"$work/dan.out" 2>&1 &
dan_pid=$!
exec 3>"$work/dan"
echo "SET ROLE chat_app;
BEGIN;
INSERT INTO app.messages (conversation_id, sender, body) VALUES (42, 'dan', 'Sorry, I was typing') RETURNING hlc;" >&3
for _ in $(seq 100); do grep -qE "^$hlc_re$" "$work/dan.out" && break; sleep 0.1; done
late=$(grep -E "^$hlc_re$" "$work/dan.out")
[ -n "$late" ] || bail "dan's transaction did not stamp its message: $(cat "$work/dan.out")"
early=$(instance_psql quickstart -d chat -At -c "SET ROLE chat_app" \
          -c "INSERT INTO app.messages (conversation_id, sender, body) VALUES (42, 'ana', 'Welcome, cy') RETURNING hlc")
read_out=$(instance_psql quickstart -d chat -At 2>&1 <<'SQL'
SET ROLE chat_app;
SELECT causal.stable_hlc() AS cursor \gset
CREATE TEMP TABLE shown AS SELECT body, hlc FROM causal.history(NULL::app.messages, '42');
SELECT 'cursor', :'cursor';
SELECT 'max', max(hlc) FROM shown;
SELECT 'seen', coalesce(array_agg(hlc), '{}') FROM shown WHERE hlc >= :'cursor';
SELECT 'shown', string_agg(body, ', ' ORDER BY hlc) FROM shown;
SQL
)
field() { awk -F'|' -v k="$1" '$1 == k { print $2 }' <<<"$read_out"; }
cursor=$(field cursor) max=$(field max) seen=$(field seen)
echo "COMMIT;" >&3
exec 3>&-
wait "$dan_pid"
chat() { instance_psql quickstart -d chat -At -c "$1"; }
is "$(chat "SELECT '$late'::causal.hlc < '$early'::causal.hlc AND '$max'::causal.hlc = '$early'::causal.hlc")" t \
   "a message stamped first and committed last has a smaller hlc than the greatest one a read before its commit saw"
is "$(field shown)" "Let's meet, How about 3pm?, Hi, I just joined, Welcome, cy" \
   "... and that read showed the conversation without it"
is "$(chat "SELECT '$cursor'::causal.hlc <= '$late'::causal.hlc")" t \
   "... and the cursor taken before that read is not above it"
is "$(chat "SELECT count(*) FROM app.messages WHERE conversation_id = 42 AND hlc > '$max'")" 0 \
   "a read on with hlc > max(hlc) misses it"
is "$(chat "SELECT m.sender || ': ' || m.body
              FROM causal.catch_up('app.messages', '42', seen => '$seen', since => '$cursor') c
              JOIN app.messages m USING (msg_id) ORDER BY c.position")" "dan: Sorry, I was typing" \
   "catch_up(..., seen, since => cursor) returns it, and nothing the read had shown"
is "$(grep -c '^```sql$' <<<"$section")" 3 \
   "the quick start has the three SQL blocks this test runs"
