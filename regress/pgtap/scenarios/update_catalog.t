#!/usr/bin/env bash
# ALTER EXTENSION pg_causal UPDATE leaves the catalog as CREATE EXTENSION
# makes it: a database made at each earlier version (with a message table), updated, and
# moved on as causalctl init moves a mesh (causal.mesh_publication(false)),
# against one made at this version with the same table. Compared through
# pg_dump --binary-upgrade --schema-only, which also dumps every member of
# an extension: functions with their bodies, settings and ACLs, types,
# operators and their classes, casts, tables, triggers, comments, the event
# trigger, and the publications. Only what differs by nature is left out:
# OIDs, frozen xids, pg_dump's random \restrict key.
set -u
cd "$(dirname "$0")/../../.."
source regress/lib/cluster.sh
source regress/lib/tap.sh
trap 'instance_stop update-catalog >/dev/null 2>&1' EXIT
{ instance_init update-catalog 24313 5 cat-east && instance_start update-catalog; } >/dev/null 2>&1 ||
  bail "could not start an instance"
sql() { local db=$1; shift; instance_psql update-catalog -d "$db" -v ON_ERROR_STOP=1 "$@"; }
message_table="CREATE SCHEMA chat;
CREATE TABLE chat.messages (conversation_id bigint NOT NULL, sender text NOT NULL DEFAULT '', body text);
SELECT causal.enable('chat.messages', 'conversation_id', notify => true);"
for db in installed from_0_2 from_0_3; do sql postgres -c "CREATE DATABASE $db" >/dev/null || bail "no database $db"; done
sql installed -c "CREATE EXTENSION pg_causal" -c "$message_table" >/dev/null 2>&1 || bail "could not install"
current=$(sed -n "s/^default_version = '\(.*\)'/\1/p" pg_causal.control)
catalog() {
  as_server pg_dump --binary-upgrade --schema-only -h "$CAUSAL_WORK" -p 24313 -U postgres "$1" |
    grep -Ev '^(--|$)|binary_upgrade_set_next_|relfrozenxid|^WHERE oid = |^\\(un)?restrict ' |
    sed -E "/binary_upgrade_create_empty_extension/ s/'\{[0-9,]+\}'/'{the configuration tables' oids}'/"
}
installed=$(catalog installed) || bail "pg_dump failed"
ok "$([ "$(grep -c 'ALTER EXTENSION pg_causal ADD' <<<"$installed")" -gt 100 ]; echo $?)" \
   "the dump lists the extension's members ($(grep -c 'ALTER EXTENSION pg_causal ADD' <<<"$installed"))"
# From each earlier version: made there, with the same table, updated, and
# moved on as causalctl init moves a mesh (causal.mesh_publication(false)).
for version in 0.2.0 0.3.0; do
  db=from_${version%.0}; db=${db//./_}
  sql "$db" -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_causal VERSION '$version'" \
    -c "$message_table" >/dev/null 2>&1 || bail "could not install $version"
  sql "$db" -c "ALTER EXTENSION pg_causal UPDATE" >/dev/null 2>&1 || bail "could not update from $version"
  is "$(sql "$db" -At -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_causal'")" "$current" \
     "$version updated to the current version"
  sql "$db" -c "SELECT causal.mesh_publication(false)" >/dev/null || bail "could not move the publications on"
  updated=$(catalog "$db") || bail "pg_dump failed"
  is "$(diff <(echo "$installed") <(echo "$updated"))" "" "the catalog of a database updated from $version is the installed one's"
done
done_testing
