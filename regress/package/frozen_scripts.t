#!/usr/bin/env bash
# The earlier versions' install scripts in sql/updates/ (upgrade.t,
# update_catalog.t and mixed_versions.t make their old databases with them)
# are what those versions shipped: their SQL topics at the release commit,
# concatenated as its Makefile did. Needs the git history (a source archive
# has none).
cd "$(dirname "$0")/../.."
source regress/lib/tap.sh
# frozen VERSION COMMIT: sql/updates/pg_causal--VERSION.sql, after its two
# lines of header, is the SQL topics at COMMIT concatenated as its Makefile did.
frozen() {
  local version=$1 release=$2 topics shipped
  if ! git rev-parse -q --verify "$release^{commit}" >/dev/null 2>&1; then
    ok 0 "# SKIP no git history with the $version release"
    return
  fi
  topics=$(git show "$release:Makefile" | awk '/^SQL_TOPICS/ { on = 1 } on { print } on && !/\\$/ { exit }' |
           sed 's/^SQL_TOPICS *= *//; s/\\$//' | tr -s ' \n' ' ')
  shipped=$(for t in $topics; do git show "$release:$t"; done | md5sum)
  is "$(tail -n +3 "sql/updates/pg_causal--$version.sql" | md5sum)" "$shipped" \
     "sql/updates/pg_causal--$version.sql is $version's install script as built at $release ($(wc -w <<<"$topics") topics)"
  is "$(git show "$release:Makefile" | sed -n 's/^EXTVERSION *= *//p')" "$version" "... which was version $version"
}
frozen 0.2.0 870b966  # v0.2.0
frozen 0.3.0 4bc0738  # the last commit of 0.3.0
done_testing
