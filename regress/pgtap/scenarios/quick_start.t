#!/usr/bin/env bash
# The README's quick start, verbatim, on a fresh instance: its
# postgresql.conf lines, then each SQL block in a session of its own (the
# default search_path), as a reader would paste them into psql.
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/cluster.sh
source regress/lib/tap.sh
trap 'instance_stop quickstart >/dev/null 2>&1' EXIT
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

plan 14
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
is "$(grep -E "^(ana|ben)\|" <<<"$out" | cut -d'|' -f1 | tr '\n' ' ')" "ana ben ana ben " \
   "... and reads the conversation in order, twice: its history, and on from a cursor"
ok "$(grep -qE '^[0-9]+\.[0-9]{5}@[0-9]+$' <<<"$out"; echo $?)" "... and shows the cursor"
is "$(grep -c '^```sql$' <<<"$section")" 3 \
   "the quick start has the three SQL blocks this test runs"
