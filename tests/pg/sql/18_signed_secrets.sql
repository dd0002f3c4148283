-- The keys of signed context may hold HMAC secrets: whoever reads one can
-- mint tokens for every tenant. The application role can neither read nor
-- change them. The test cluster has them in postgresql.conf
-- (tests/pg/fixtures/signed-keys.conf: ed1 and the HMAC key hs1).
\set ECHO none
\i ../fixtures/signed-tokens.psql
\set ECHO all
\set test_db :DBNAME
ALTER DATABASE :"DBNAME" SET session_preload_libraries = 'dnr';

\c - app
-- not with SHOW, current_setting, pg_settings (the row is not there for
-- anyone), pg_file_settings or the configuration files
SHOW dnr.signing_keys;
SELECT current_setting('dnr.signing_keys');
SELECT current_setting('dnr.signing_keys', true);
SELECT count(*) AS keys_in_pg_settings FROM pg_settings WHERE name = 'dnr.signing_keys';
SELECT count(*) AS keys_in_pg_show_all_settings FROM pg_show_all_settings() WHERE name = 'dnr.signing_keys';
SELECT name, setting, context FROM pg_settings WHERE name LIKE 'dnr.%' ORDER BY name;
SELECT name, setting FROM pg_file_settings WHERE name LIKE 'dnr.%';
SELECT pg_read_file('postgresql.conf');
SELECT count(*) AS stored_key_settings FROM pg_db_role_setting
 WHERE array_to_string(setconfig, ',') LIKE '%signing_keys%';
-- not by changing them
SET dnr.signing_keys = 'mine:hs256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
SELECT set_config('dnr.signing_keys', '', true);
RESET dnr.signing_keys;
ALTER ROLE app SET dnr.signing_keys = 'mine:hs256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
ALTER SYSTEM SET dnr.signing_keys = 'mine:hs256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
-- and no error shows them: a token refused for its key says which kid
SELECT dnr.set_context_signed(:'hs_bad_signature');

-- A superuser reads them.
\c - postgres
SELECT current_setting('dnr.signing_keys') = :'keys_default' AS superuser_reads_the_keys;
SELECT name, sourcefile LIKE '%postgresql.conf' AS in_postgresql_conf FROM pg_file_settings
 WHERE name LIKE 'dnr.%' ORDER BY name;
-- So does a member of pg_read_all_settings: grant it to no application role.
CREATE ROLE signed_reader NOLOGIN IN ROLE pg_read_all_settings;
GRANT signed_reader TO app;
SET ROLE app;
SELECT current_setting('dnr.signing_keys') = :'keys_default' AS pg_read_all_settings_reads_the_keys;
RESET ROLE;
REVOKE signed_reader FROM app;
DROP ROLE signed_reader;

-- HMAC secrets are never stored where every role can read them:
-- pg_db_role_setting (ALTER DATABASE/ROLE ... SET) and pg_proc.proconfig
-- (a function's SET clause). Not even by a superuser.
ALTER DATABASE :"test_db" SET dnr.signing_keys = :'keys_default';
ALTER ROLE app SET dnr.signing_keys = :'keys_default';
ALTER ROLE app IN DATABASE :"test_db" SET dnr.signing_keys = :'keys_default';
CREATE FUNCTION keyed() RETURNS int LANGUAGE sql SET dnr.signing_keys = :'keys_default' AS 'SELECT 1';
-- (SQLSTATE 42501, insufficient_privilege)
\set VERBOSITY sqlstate
ALTER ROLE app SET dnr.signing_keys = :'keys_default';
\set VERBOSITY default
-- Ed25519 public keys are no secret: they may be stored there.
ALTER ROLE app IN DATABASE :"test_db" SET dnr.signing_keys = :'keys_eddsa_public';
SELECT array_length(setconfig, 1) AS stored_settings FROM pg_db_role_setting
 WHERE setrole = 'app'::regrole AND setdatabase = (SELECT oid FROM pg_database WHERE datname = :'test_db');
ALTER ROLE app IN DATABASE :"test_db" RESET dnr.signing_keys;
-- postgresql.conf (or an included file) and ALTER SYSTEM
-- (postgresql.auto.conf) are readable by superusers only.
ALTER SYSTEM SET dnr.signing_keys = :'keys_default';
ALTER SYSTEM RESET dnr.signing_keys;
-- and a superuser's SET for the session
SET dnr.signing_keys = :'keys_rotation';
RESET dnr.signing_keys;
