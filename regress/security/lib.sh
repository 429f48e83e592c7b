# The tenant-attack suite's harness (regress/security/*.t): one instance,
# the roles of a shared database, and the checks every attack ends with.
# Source it after cluster.sh and tap.sh.
#
# Roles:
#   owner     owns schema chat and the message table chat.messages
#   intruder  a login with no rights of its own
#   dbowner   owns the database (not a superuser)
#   admin     a member of causal_admin (not a superuser)
# The trusted ones are the superuser (postgres) and causal_admin.

SEC_DB=tenants
SEC_INSTANCE=""

# sql ROLE SQL...: runs as ROLE in the tenants database; prints the output,
# and the SQLSTATE of an error as "ERROR <state>: <message>".
sql() {
  local role=$1; shift
  psql -X -q -At -h "$CAUSAL_WORK" -p "$(instance_port "$SEC_INSTANCE")" -U "$role" -d "$SEC_DB" \
    -v ON_ERROR_STOP=1 -v VERBOSITY=verbose "$@" 2>&1 |
    sed -E 's/^(psql:[^ ]* )?ERROR:  ([0-9A-Z]{5}): /ERROR \2: /'
}
# sqlstate ROLE SQL: "ok" when SQL succeeds, else its SQLSTATE
sqlstate() {
  local out
  out=$(sql "$1" -c "$2")
  if [[ $out =~ ERROR\ ([0-9A-Z]{5}) ]]; then echo "${BASH_REMATCH[1]}"; else echo ok; fi
}
su_sql() { sql postgres "$@"; }

# liveness_rounds_done: returns once the liveness worker has finished a
# whole round since it started (its heartbeat, then the replication
# supervision): the beat moved twice, and a round begins only after the
# one before it ended. What an assertion that the worker ran nothing as a
# superuser needs first. (Operators by schema: a session's search_path may
# be a tenant's.)
LIVENESS_BEAT_SQL="SELECT h.beat FROM causal.heartbeats h WHERE h.region OPERATOR(pg_catalog.=) 'test-east'"
liveness_rounds_done() {
  local beat i next
  for beat in first second; do
    next=""
    for i in $(seq 1 300); do
      next=$(su_sql -c "$LIVENESS_BEAT_SQL")
      [ -n "$next" ] && [ "$next" -gt "${LIVENESS_BEAT:-0}" ] && break
      next=""
      sleep 0.1
    done
    [ -n "$next" ] || return 1
    LIVENESS_BEAT=$next
  done
}

sec_start() {  # sec_start NAME PORT [postgresql.conf lines...]
  SEC_INSTANCE=$1
  local port=$2; shift 2
  instance_init "$SEC_INSTANCE" "$port" 1 test-east "causal.database = '$SEC_DB'" \
    "causal.heartbeat_interval = '100ms'" "$@" >/dev/null || return 1
  instance_start "$SEC_INSTANCE" || return 1
  instance_psql "$SEC_INSTANCE" -d postgres >/dev/null <<SQL || return 1
CREATE ROLE owner LOGIN;
CREATE ROLE intruder LOGIN;
CREATE ROLE dbowner LOGIN;
CREATE ROLE admin LOGIN;
CREATE DATABASE $SEC_DB OWNER dbowner;
SQL
}

# spy_in SCHEMA ROLE: a function SCHEMA.spy(what) of ROLE's, the payload of
# an attack. It logs "pg_causal spy: WHAT ran as ROLE" (RAISE LOG runs no
# SQL, so the line is there even where no statement may run), and where it
# runs as a superuser it records that and makes its author one.
spy_in() {
  sql "$2" >/dev/null <<SQL
CREATE FUNCTION $1.spy(what text) RETURNS boolean LANGUAGE plpgsql AS \$\$
BEGIN
  RAISE LOG 'pg_causal spy: % ran as %', what, current_user;
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN
    INSERT INTO public.ran_as_superuser (what, role) VALUES (what, current_user);
    EXECUTE 'ALTER ROLE $2 SUPERUSER';
  END IF;
  RETURN true;
END \$\$;
SQL
}
# spied LOG OWNER: what the spy logged it ran as, other than OWNER ("none")
spied() {
  local lines
  lines=$(grep -ho "pg_causal spy: .* ran as [a-z_]*" "$1" | grep -v " ran as $2\$" | sort -u | paste -sd ';' -)
  echo "${lines:-none}"
}

# The checks every attack ends with: nobody but postgres became superuser or
# gained causal_admin, the server log shows no crashed process (a crash
# ends every session), and the messages are all there.
no_escalation() {  # no_escalation WHAT
  is "$(su_sql -c "SELECT coalesce(string_agg(rolname, ',' ORDER BY rolname), 'none') FROM pg_roles
                    WHERE rolname IN ('owner', 'intruder', 'dbowner', 'admin')
                      AND (rolsuper OR pg_has_role(oid, 'causal_admin', 'MEMBER') AND rolname <> 'admin')")" \
     none "$1: no role became superuser or causal_admin"
}
no_crash() {  # no_crash WHAT
  is "$(grep -cE 'terminated by signal|terminating any other active server processes' \
          "$(instance_dir "$SEC_INSTANCE")/server.log")" 0 "$1: no server process crashed"
}
