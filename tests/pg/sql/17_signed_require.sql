-- dnr.require_signed: while it is on, a role that is not a superuser
-- changes the context only with a valid token. Every other way to switch
-- tenant is tried here as the application role and refused; the context
-- stays the token's. Tokens: tests/pg/fixtures (see 16_signed_tokens).
-- Tenant A = 11111111-..., tenant B = 22222222-...
\set ECHO none
\i ../fixtures/signed-tokens.psql
\set ECHO all
-- (psql changes DBNAME with every \c)
\set test_db :DBNAME

-- The library in every new session of this database (so the settings are
-- locked before a session's first statement), and signed context required.
ALTER DATABASE :"DBNAME" SET session_preload_libraries = 'dnr';
ALTER DATABASE :"DBNAME" SET dnr.require_signed = on;
-- The application may create functions, and may become another role that
-- is not a superuser.
GRANT CREATE ON SCHEMA public TO app;
CREATE ROLE signed_helper NOLOGIN NOSUPERUSER;
GRANT signed_helper TO app;
-- Functions with a SET clause of the tenant, created while a superuser may
-- (as if before require_signed was turned on): one owned by dnr_owner and
-- SECURITY DEFINER, one that runs as its caller.
CREATE FUNCTION owner_set_clause() RETURNS uuid LANGUAGE sql SECURITY DEFINER
SET dnr.tenant_id = '22222222-2222-2222-2222-222222222222' AS $$ SELECT dnr.current_tenant() $$;
ALTER FUNCTION owner_set_clause() OWNER TO dnr_owner;
CREATE FUNCTION caller_set_clause() RETURNS uuid LANGUAGE sql
SET dnr.tenant_id = '22222222-2222-2222-2222-222222222222' AS $$ SELECT dnr.current_tenant() $$;

\c - dnr_owner
CREATE TABLE notes (id int PRIMARY KEY, tenant_id uuid NOT NULL, body text NOT NULL);
INSERT INTO notes VALUES (1, :'tenant_a', 'a1'), (2, :'tenant_a', 'a2'), (3, :'tenant_b', 'b1');
SELECT dnr.enable_tenant_isolation('notes');
GRANT SELECT ON notes TO app;
-- SECURITY DEFINER functions of a role that is not a superuser: they run
-- as dnr_owner, which is refused as app is.
CREATE FUNCTION owner_set_tenant(t uuid) RETURNS void LANGUAGE sql SECURITY DEFINER
AS $$ SELECT dnr.set_tenant(t) $$;
CREATE FUNCTION owner_set_config(t uuid) RETURNS text LANGUAGE sql SECURITY DEFINER
AS $$ SELECT set_config('dnr.tenant_id', t::text, true) $$;
-- the owner's own session is locked too: it cannot store a SET clause now
CREATE FUNCTION owner_new_set_clause() RETURNS uuid LANGUAGE sql
SET dnr.tenant_id = '22222222-2222-2222-2222-222222222222' AS $$ SELECT dnr.current_tenant() $$;
-- tenant schemas, for dnr.use_tenant
SELECT dnr.create_tenant(:'tenant_a', 'a') AS schema_a, dnr.create_tenant(:'tenant_b', 'b') AS schema_b;

-- A new session of the application: the settings are locked before any
-- DNR function is called.
\c - app
SET dnr.tenant_id = :'tenant_b';
SELECT current_setting('dnr.tenant_id') AS tenant_setting, dnr.current_tenant();
SELECT name, setting, context FROM pg_settings
 WHERE name IN ('dnr.tenant_id', 'dnr.user_id', 'dnr.roles', 'dnr.require_signed') ORDER BY name;

-- In a transaction with tenant A's token, every other way to change the
-- context is refused.
BEGIN;
SELECT dnr.set_context_signed(:'valid_a');
SAVEPOINT s;
-- the unsigned setters (SQLSTATE 42501, insufficient_privilege)
\set VERBOSITY sqlstate
SELECT dnr.set_context(:'tenant_b');
ROLLBACK TO s;
SET dnr.tenant_id = :'tenant_b';
ROLLBACK TO s;
\set VERBOSITY default
SELECT dnr.set_context(:'tenant_b');
ROLLBACK TO s;
SELECT dnr.set_context(:'tenant_b', :'user_b', '{admin}', local => false);
ROLLBACK TO s;
SELECT dnr.set_tenant(:'tenant_b');
ROLLBACK TO s;
SELECT dnr.set_user(:'user_b');
ROLLBACK TO s;
SELECT dnr.set_roles('{admin}');
ROLLBACK TO s;
SELECT dnr.clear_context();
ROLLBACK TO s;
-- SET, SET LOCAL, SET SESSION, RESET, SET ... TO DEFAULT, set_config
SET dnr.tenant_id = :'tenant_b';
ROLLBACK TO s;
SET LOCAL dnr.tenant_id = :'tenant_b';
ROLLBACK TO s;
SET SESSION dnr.user_id = :'user_b';
ROLLBACK TO s;
SET dnr.roles = 'admin';
ROLLBACK TO s;
SELECT set_config('dnr.tenant_id', :'tenant_b', true);
ROLLBACK TO s;
SELECT set_config('dnr.roles', 'admin', false);
ROLLBACK TO s;
SELECT set_config('dnr.tenant_id', NULL, true);
ROLLBACK TO s;
RESET dnr.tenant_id;
ROLLBACK TO s;
RESET dnr.roles;
ROLLBACK TO s;
SET dnr.user_id TO DEFAULT;
ROLLBACK TO s;
-- require_signed itself
SET dnr.require_signed = off;
ROLLBACK TO s;
SELECT set_config('dnr.require_signed', 'off', true);
ROLLBACK TO s;
RESET dnr.require_signed;
ROLLBACK TO s;
-- stored defaults for the next sessions
ALTER ROLE app SET dnr.tenant_id = :'tenant_b';
ROLLBACK TO s;
ALTER ROLE app IN DATABASE :"DBNAME" SET dnr.roles = 'admin';
ROLLBACK TO s;
ALTER ROLE app SET dnr.require_signed = off;
ROLLBACK TO s;
-- functions: a SET clause, a body that calls set_config, SECURITY DEFINER
-- functions of other roles
CREATE FUNCTION app_set_clause() RETURNS uuid LANGUAGE sql
SET dnr.tenant_id = '22222222-2222-2222-2222-222222222222' AS $$ SELECT dnr.current_tenant() $$;
ROLLBACK TO s;
CREATE FUNCTION app_set_config() RETURNS text LANGUAGE sql
AS $$ SELECT set_config('dnr.tenant_id', '22222222-2222-2222-2222-222222222222', true) $$;
SELECT app_set_config();
ROLLBACK TO s;
SELECT owner_set_tenant(:'tenant_b');
ROLLBACK TO s;
SELECT owner_set_config(:'tenant_b');
ROLLBACK TO s;
SELECT owner_set_clause();
ROLLBACK TO s;
SELECT caller_set_clause();
ROLLBACK TO s;
-- other roles
SET ROLE signed_helper;
SELECT dnr.set_tenant(:'tenant_b');
ROLLBACK TO s;
SET LOCAL ROLE signed_helper;
SET LOCAL dnr.tenant_id = :'tenant_b';
ROLLBACK TO s;
SET ROLE postgres;
ROLLBACK TO s;
SET SESSION AUTHORIZATION postgres;
ROLLBACK TO s;
-- schema-per-tenant: use_tenant chooses the token's tenant's schema, and
-- no other tenant
SELECT dnr.use_tenant(:'tenant_a');
SHOW search_path;
SELECT dnr.use_tenant(:'tenant_b');
ROLLBACK TO s;
-- RESET ALL resets other settings, not the context or require_signed
SET LOCAL work_mem = '1234kB';
RESET ALL;
SHOW work_mem;
SHOW dnr.require_signed;
-- still tenant A, user a, staff
SELECT dnr.current_tenant(), dnr.current_user_id(), dnr.current_roles(), count(*) AS rows FROM notes;
SELECT * FROM notes ORDER BY id;
COMMIT;
-- DISCARD ALL (a pooler's reset) does not turn require_signed off either
DISCARD ALL;
SHOW dnr.require_signed;
SELECT dnr.set_tenant(:'tenant_b');
-- and outside the transaction no context is left
SELECT current_setting('dnr.tenant_id') AS tenant_setting;

-- Parallel workers copy the leader's context (PostgreSQL restores it in
-- them through the same checks): the readers in a worker see tenant A, and
-- a parallel scan sees tenant A's rows.
BEGIN;
SELECT dnr.set_context_signed(:'valid_a');
SET LOCAL force_parallel_mode = on;
EXPLAIN (COSTS OFF, VERBOSE) SELECT dnr.current_tenant(), dnr.current_user_id(), dnr.current_roles();
SELECT dnr.current_tenant(), dnr.current_user_id(), dnr.current_roles();
SET LOCAL force_parallel_mode = off;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT count(*) FROM notes;
SELECT count(*) FROM notes;
COMMIT;

-- A tenant in the connection's startup options (PGOPTIONS) is refused
-- when the library defines the setting, with a warning.
\set conninfo 'dbname=' :test_db ' user=app options=-cdnr.tenant_id=' :tenant_b
\c :conninfo
SELECT current_setting('dnr.tenant_id') AS tenant_setting, dnr.current_tenant();
-- (a new connection without those options)
\c -reuse-previous=off :test_db app
SELECT current_setting('dnr.tenant_id') AS tenant_setting;

-- A stored default that is already there (stored while a superuser could)
-- is not applied to new sessions either.
\c - postgres
ALTER ROLE app IN DATABASE :"test_db" SET dnr.tenant_id = '22222222-2222-2222-2222-222222222222';
\c - app
SELECT current_setting('dnr.tenant_id') AS tenant_setting, dnr.current_tenant();
\c - postgres
ALTER ROLE app IN DATABASE :"test_db" RESET dnr.tenant_id;

-- Superusers are not restricted...
BEGIN;
SELECT dnr.set_context(:'tenant_b', :'user_b', '{admin}');
SET LOCAL dnr.roles = 'admin,auditor';
SELECT dnr.current_tenant(), dnr.current_user_id(), dnr.current_roles();
ROLLBACK;
-- ...unless they act as another role: SET ROLE app is app.
BEGIN;
SET LOCAL ROLE app;
SELECT dnr.set_tenant(:'tenant_b');
ROLLBACK;
BEGIN;
SET LOCAL ROLE app;
SET LOCAL dnr.tenant_id = :'tenant_b';
ROLLBACK;
-- require_signed off (a superuser's choice for the session): the context
-- settings are ordinary settings again.
SET dnr.require_signed = off;
SELECT name, context FROM pg_settings WHERE name IN ('dnr.tenant_id', 'dnr.user_id', 'dnr.roles') ORDER BY name;
SET ROLE app;
BEGIN;
SELECT dnr.set_tenant(:'tenant_b');
SET LOCAL dnr.roles = 'admin';
SELECT dnr.current_tenant(), dnr.current_roles();
ROLLBACK;
RESET ROLE;
RESET dnr.require_signed;
SELECT name, context FROM pg_settings WHERE name IN ('dnr.tenant_id', 'dnr.user_id', 'dnr.roles') ORDER BY name;

-- Without session_preload_libraries (or shared_preload_libraries) the
-- library is loaded by a session's first DNR function. Until then the
-- settings are placeholders, which anyone may set, and which a policy
-- that reads current_setting (target postgres-plain) would trust: that is
-- why require_signed needs the library preloaded. When the library loads,
-- a value set before is dropped, with a warning.
CREATE DATABASE signed_no_preload TEMPLATE dnr_template OWNER dnr_owner;
ALTER DATABASE signed_no_preload SET dnr.require_signed = on;
\c signed_no_preload app
SHOW dnr.require_signed;
SET dnr.tenant_id = '22222222-2222-2222-2222-222222222222';
SELECT current_setting('dnr.tenant_id') AS placeholder_before_load;
SELECT dnr.current_tenant() AS tenant_after_load, current_setting('dnr.tenant_id') AS setting_after_load;
SET dnr.tenant_id = '22222222-2222-2222-2222-222222222222';
-- A superuser's require_signed = on for the session survives the
-- application's RESET ALL (as every DNR setting does), also where it is
-- off by default.
\c signed_no_preload postgres
ALTER DATABASE signed_no_preload RESET dnr.require_signed;
\c signed_no_preload postgres
SELECT dnr.current_tenant();
SHOW dnr.require_signed;
SET dnr.require_signed = on;
SET ROLE app;
RESET ALL;
SHOW dnr.require_signed;
SELECT dnr.set_tenant('22222222-2222-2222-2222-222222222222');
\c :test_db postgres
DROP DATABASE signed_no_preload;
REVOKE signed_helper FROM app;
DROP ROLE signed_helper;
