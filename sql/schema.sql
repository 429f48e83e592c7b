-- Schema causal holds every object of the extension. The extension makes it
-- itself (pg_causal.control names pg_catalog as the extension's schema, as
-- pg_cron does), so the schema is a member of the extension: DROP
-- EXTENSION removes it, and one that is already there is never adopted. Its
-- owner, whoever made it, could otherwise replace or overload what
-- pg_causal's SECURITY DEFINER functions call.
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) 'causal') THEN
    RAISE EXCEPTION 'schema "causal" already exists' USING ERRCODE = '42P06',
      DETAIL = format('pg_causal creates schema causal itself and never installs into one that was there '
                      'before: its owner (%s) could change what pg_causal runs.',
                      (SELECT nspowner::regrole FROM pg_catalog.pg_namespace
                        WHERE nspname OPERATOR(pg_catalog.=) 'causal')),
      HINT = 'Drop or rename that schema, then create the extension.';
  END IF;
END $$;
CREATE SCHEMA causal;
-- Everyone may look it up, as in public; what each object allows is granted
-- on the object.
GRANT USAGE ON SCHEMA causal TO PUBLIC;
