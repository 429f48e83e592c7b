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
SELECT causal.enable('chat.messages', 'conversation_id', notify => true);
CREATE TABLE public.talk (conversation_id bigint NOT NULL, id bigserial, body text);
SELECT causal.enable('public.talk', 'conversation_id');"
for db in installed from_0_2 from_0_3; do sql postgres -c "CREATE DATABASE $db" >/dev/null || bail "no database $db"; done
sql installed -c "CREATE EXTENSION pg_causal" -c "$message_table" >/dev/null 2>&1 || bail "could not install"
current=$(sed -n "s/^default_version = '\(.*\)'/\1/p" pg_causal.control)
catalog() {
  as_server pg_dump --binary-upgrade --schema-only -h "$CAUSAL_WORK" -p 24313 -U postgres "$1" |
    grep -Ev '^(--|$)|binary_upgrade_set_next_|relfrozenxid|^WHERE oid = |^\\(un)?restrict ' |
    sed -E "/binary_upgrade_create_empty_extension/ s/'\{[0-9,]+\}'/'{the configuration tables' oids}'/"
}
# pg_dump leaves out what pg_init_privs says an object started with: the
# initial privileges of the tables' schemas and of the tables, which are
# not the extension's, must be what they are in a fresh install.
initial_privileges() {
  sql "$1" -At -c "SELECT i.classoid::regclass || ' ' || coalesce(n.nspname, c.oid::regclass::text) || ' ' || i.privtype::text
                          || ' ' || i.initprivs::text
                     FROM pg_init_privs i
                     LEFT JOIN pg_namespace n ON i.classoid = 'pg_namespace'::regclass AND n.oid = i.objoid
                     LEFT JOIN pg_class c ON i.classoid = 'pg_class'::regclass AND c.oid = i.objoid
                    WHERE coalesce(n.nspname, c.relnamespace::regnamespace::text) IN ('public', 'chat') ORDER BY 1"
}
installed=$(catalog installed) || bail "pg_dump failed"
installed_privileges=$(initial_privileges installed) || bail "could not read pg_init_privs"
ok "$([[ $installed_privileges == *"pg_namespace public i "* ]]; echo $?)" \
   "a fresh install's schema public has its initial privileges ($installed_privileges)"
ok "$([ "$(grep -c 'ALTER EXTENSION pg_causal ADD' <<<"$installed")" -gt 100 ]; echo $?)" \
   "the dump lists the extension's members ($(grep -c 'ALTER EXTENSION pg_causal ADD' <<<"$installed"))"
# From each earlier version: made there, with the same table, updated, and
# moved on as causalctl init moves a mesh (causal.mesh_publication(false)).
for version in 0.2.0 0.3.0; do
  db=from_${version%.0}; db=${db//./_}
  sql "$db" -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_causal VERSION '$version'" \
    -c "$message_table" >/dev/null 2>&1 || bail "could not install $version"
  out=$(sql "$db" -c "ALTER EXTENSION pg_causal UPDATE" 2>&1) || bail "could not update from $version: $out"
  is "$(sql "$db" -At -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_causal'")" "$current" \
     "$version updated to the current version"
  # The indexes of deletions and of latest stamps are the DBA's to build,
  # concurrently, as the update says: once built, the catalog is the
  # installed one's.
  builds=$(sed -n 's/^HINT: .*in every region: \(CREATE INDEX CONCURRENTLY .*\)$/\1/p' <<<"$out")
  is "$(grep -c 'deleted_at) WHERE deleted_at IS NOT NULL' <<<"$builds") $(grep -c 'causal.latest_stamp(hlc, deleted_at, copies), msg_id' <<<"$builds")" \
     "2 2" "... and names both message tables' indexes of deletions and of latest stamps, to build concurrently"
  while read -r build; do [ -z "$build" ] || sql "$db" -c "$build" >/dev/null || bail "could not run: $build"; done <<<"$builds"
  sql "$db" -c "SELECT causal.mesh_publication(false)" >/dev/null || bail "could not move the publications on"
  updated=$(catalog "$db") || bail "pg_dump failed"
  is "$(diff <(echo "$installed") <(echo "$updated"))" "" "the catalog of a database updated from $version is the installed one's"
  is "$(initial_privileges "$db")" "$installed_privileges" \
     "... and so are the initial privileges pg_dump goes by, of the tables' schemas (public) and the tables"
done
done_testing
