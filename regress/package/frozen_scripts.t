#!/usr/bin/env bash
# The previous version's install script in sql/updates/ (upgrade.t and
# mixed_versions.t make their 0.2.0 databases with it) is what 0.2.0
# shipped: its SQL topics at the commit tagged v0.2.0, concatenated as its
# Makefile did. Needs the git history (a source archive has none).
cd "$(dirname "$0")/../.."
source regress/lib/tap.sh
release=870b966  # v0.2.0
if ! git rev-parse -q --verify "$release^{commit}" >/dev/null 2>&1; then
  echo "1..0 # SKIP no git history with the 0.2.0 release"
  exit 0
fi
topics=$(git show "$release:Makefile" | awk '/^SQL_TOPICS/ { on = 1 } on { print } on && !/\\$/ { exit }' |
         sed 's/^SQL_TOPICS *= *//; s/\\$//' | tr -s ' \n' ' ')
shipped=$(for t in $topics; do git show "$release:$t"; done | md5sum)
# after its two lines of header
is "$(tail -n +3 sql/updates/pg_causal--0.2.0.sql | md5sum)" "$shipped" \
   "sql/updates/pg_causal--0.2.0.sql is 0.2.0's install script as built at $release ($(wc -w <<<"$topics") topics)"
is "$(git show "$release:Makefile" | sed -n 's/^EXTVERSION *= *//p')" 0.2.0 "... which was version 0.2.0"
done_testing
