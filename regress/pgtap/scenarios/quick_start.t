#!/usr/bin/env bash
# The README's quick start ("Using it"), verbatim, on a fresh instance: its
# postgresql.conf lines, then each SQL block in a session of its own (the
# default search_path), as a reader would paste them into psql.
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/cluster.sh
source regress/lib/tap.sh
trap 'instance_stop quickstart >/dev/null 2>&1' EXIT
section=$(sed -n '/^## Using it$/,/^## Reference$/p' README.md)
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

plan 6
is "$(instance_psql quickstart -d postgres -At -c "SELECT current_setting('wal_level') || ' ' ||
                                                  current_setting('causal.region')")" "logical us-east" \
   "the quick start's settings are in force"
out=$(block sql 1 | instance_psql quickstart -d postgres -v ON_ERROR_STOP=1 -At 2>&1)
ok $? "the first SQL block runs verbatim${out:+: $(tail -n 1 <<<"$out")}"
ok "$(grep -q "Let's meet" <<<"$out"; echo $?)" "... and shows the message it wrote"
ok "$(grep -q '|us-east$' <<<"$out"; echo $?)" "... and the message table stamps it in us-east"
out=$(block sql 2 | instance_psql quickstart -d postgres -v ON_ERROR_STOP=1 -At 2>&1)
ok $? "the second block runs in a new session, causal off its search_path${out:+: $(tail -n 1 <<<"$out")}"
ok "$(grep -q "Let's meet" <<<"$out"; echo $?)" "... and reads on from a cursor"
