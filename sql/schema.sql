-- Schema causal, made by CREATE EXTENSION (pg_causal.control), holds every
-- object of the extension. Everyone may look it up, as in public; what each
-- object allows is granted on the object.
GRANT USAGE ON SCHEMA causal TO PUBLIC;

