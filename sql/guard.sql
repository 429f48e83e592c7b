-- The DDL guard (extension/table/ddl_guard.cpp): at the end of every command that
-- can change a message table, a role that is not a superuser must have left
-- the message tables the command touched within their shape
-- (causal.message_table_problem); it may not drop one of pg_causal's
-- columns (sql_drop, also to add it again); and DROP EXTENSION pg_causal
-- CASCADE refuses while message tables exist, unless
-- causal.allow_drop_extension. The start trigger notes the tables of what a
-- DROP removes, while they can still be found.
CREATE FUNCTION causal.guard_ddl() RETURNS event_trigger
    AS 'MODULE_PATHNAME', 'guard_ddl' LANGUAGE C;
REVOKE ALL ON FUNCTION causal.guard_ddl() FROM PUBLIC;
CREATE EVENT TRIGGER causal_guard_ddl ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE TRIGGER', 'ALTER TRIGGER', 'DROP TRIGGER',
                 'CREATE INDEX', 'DROP INDEX', 'ALTER INDEX', 'CREATE RULE', 'ALTER RULE', 'DROP RULE',
                 'GRANT', 'REVOKE', 'ALTER SEQUENCE')
    EXECUTE FUNCTION causal.guard_ddl();
CREATE EVENT TRIGGER causal_guard_ddl_start ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'ALTER TABLE', 'CREATE TABLE', 'CREATE TRIGGER', 'ALTER TRIGGER', 'DROP TRIGGER',
                 'CREATE INDEX', 'DROP INDEX', 'ALTER INDEX', 'CREATE RULE', 'ALTER RULE', 'DROP RULE',
                 'GRANT', 'REVOKE', 'ALTER SEQUENCE')
    EXECUTE FUNCTION causal.guard_ddl();
-- Every command that drops objects: a column also goes with what it
-- depends on (DROP COLLATION ... CASCADE, DROP EXTENSION ... CASCADE).
CREATE EVENT TRIGGER causal_guard_ddl_drop ON sql_drop
    EXECUTE FUNCTION causal.guard_ddl();
-- Also with session_replication_role = replica: pg_causal stores replicated
-- rows, and stamps the rows from before enable(), as the table's owner in
-- that mode, and the owner's code (a CHECK constraint) could make DDL then.
ALTER EVENT TRIGGER causal_guard_ddl ENABLE ALWAYS;
ALTER EVENT TRIGGER causal_guard_ddl_start ENABLE ALWAYS;
ALTER EVENT TRIGGER causal_guard_ddl_drop ENABLE ALWAYS;
