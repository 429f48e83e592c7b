-- The DDL guard (extension/ddl_guard.cpp): at the end of every command that
-- can change a table, a role that is not a superuser must have left the
-- message tables it owns as causal.enable() made them
-- (causal.message_table_problem); and DROP EXTENSION pg_causal CASCADE
-- refuses while message tables exist, unless causal.allow_drop_extension.
CREATE FUNCTION causal.guard_ddl() RETURNS event_trigger
    AS 'MODULE_PATHNAME', 'guard_ddl' LANGUAGE C;
REVOKE ALL ON FUNCTION causal.guard_ddl() FROM PUBLIC;
CREATE EVENT TRIGGER causal_guard_ddl ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE TRIGGER', 'ALTER TRIGGER', 'DROP TRIGGER',
                 'CREATE INDEX', 'DROP INDEX', 'ALTER INDEX')
    EXECUTE FUNCTION causal.guard_ddl();
CREATE EVENT TRIGGER causal_guard_drop_extension ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION')
    EXECUTE FUNCTION causal.guard_ddl();
-- Also with session_replication_role = replica: pg_causal stores replicated
-- rows, and stamps the rows from before enable(), as the table's owner in
-- that mode, and the owner's code (a CHECK constraint) could make DDL then.
ALTER EVENT TRIGGER causal_guard_ddl ENABLE ALWAYS;
ALTER EVENT TRIGGER causal_guard_drop_extension ENABLE ALWAYS;

