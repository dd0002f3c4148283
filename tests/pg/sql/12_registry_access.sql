-- DNR's registries (tenants, applied sources, managed tables) are not
-- readable by application roles; the owner and roles granted SELECT read
-- them; the functions application roles use still work. Errors raised
-- inside DNR carry no Rust backtrace although the server runs with
-- RUST_BACKTRACE=1 (scripts/pg-lib.sh).
\c - dnr_owner
SELECT dnr.apply($policy$
entity Task:
  table: tasks
  id: int pk
  owner_id: uuid
  access:
    read: owner_id = current_user
$policy$);
SELECT dnr.create_tenant('11111111-1111-1111-1111-111111111111', 'Acme');
SELECT dnr.create_tenant('22222222-2222-2222-2222-222222222222', 'Globex');
-- the owner, granted nothing on them, lists its tenants and sees its
-- tables' policies; the registries themselves stay closed to it
SELECT id, name, schema_name FROM dnr.list_tenants() ORDER BY id;
SELECT id FROM dnr.tenants;
SELECT count(*) AS applied FROM dnr.applied;
SELECT tbl FROM dnr.managed_tables;
SELECT table_name, policy_name FROM dnr.policies ORDER BY 1, 2;
GRANT SELECT ON tasks TO app;
GRANT USAGE ON SCHEMA tenant_11111111111111111111111111111111 TO app;

\c - app
-- the application reads none of them: dnr.policies shows the policies of
-- the tables a role owns, and dnr.list_tenants the tenants whose schema it
-- owns
SELECT * FROM dnr.tenants;
SELECT * FROM dnr.applied;
SELECT * FROM dnr.managed_tables;
SELECT * FROM dnr.migrations;
SELECT * FROM dnr.policies;
SELECT * FROM dnr.list_tenants();
-- nor can it reach the registry operations directly
SELECT dnr._registry_run('list_tenants', '{}');
SELECT dnr._reg_list_tenants('dnr_owner'::regrole, '{}');
SELECT dnr._caller();
-- use_tenant's lookup (SECURITY DEFINER) tells only what use_tenant tells:
-- whether an id is a tenant
SELECT dnr._tenant_schema('11111111-1111-1111-1111-111111111111') IS NOT NULL AS acme_exists;
SELECT dnr._tenant_schema('33333333-3333-3333-3333-333333333333') IS NULL AS unknown_is_null;
-- but what it is meant to use works: check (the newest applied source) ...
BEGIN;
SELECT dnr.set_context('11111111-1111-1111-1111-111111111111', '00000000-0000-0000-0000-0000000a11ce');
SELECT dnr.check('Task', 'read', '{"id": 1, "tenant_id": "11111111-1111-1111-1111-111111111111", "owner_id": "00000000-0000-0000-0000-0000000a11ce"}'),
       dnr.check_reason('Task', 'read', '{"id": 1, "tenant_id": "11111111-1111-1111-1111-111111111111", "owner_id": "00000000-0000-0000-0000-000000000b0b"}');
COMMIT;
-- ... and use_tenant
BEGIN;
SELECT dnr.use_tenant('11111111-1111-1111-1111-111111111111');
SHOW search_path;
SELECT dnr.current_tenant();
COMMIT;
SELECT dnr.use_tenant('33333333-3333-3333-3333-333333333333');
-- it cannot manage tenants
SELECT dnr.create_tenant('33333333-3333-3333-3333-333333333333', 'Initech');
SELECT dnr.drop_tenant('11111111-1111-1111-1111-111111111111');

-- An error from inside dnr.apply (a permission error in its SPI calls) has
-- no backtrace in its DETAIL (psql shows a DETAIL when there is one); nor
-- has a policy error, whose DETAIL is the caret rendering.
SELECT dnr.apply($policy$
entity Task:
  table: tasks
  access:
    read: true
$policy$);
SELECT dnr.compile($policy$
entity Task:
  access:
    read: (true
$policy$);
-- The same as PL/pgSQL sees them, also for an error pgrx raises from a Rust
-- panic (a record nested deeper than its JSON reader allows).
DO $$
DECLARE
    v_call text;
    v_message text;
    v_detail text;
BEGIN
    FOREACH v_call IN ARRAY ARRAY[
        $q$SELECT dnr.apply(E'entity Task:\n  table: tasks\n  access:\n    read: true\n')$q$,
        $q$SELECT dnr.check('Task', 'read', ('{"id": ' || repeat('[', 200) || repeat(']', 200) || '}')::jsonb)$q$]
    LOOP
        BEGIN
            EXECUTE v_call;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
            RAISE NOTICE 'message: %; detail: %', v_message, COALESCE(NULLIF(v_detail, ''), '<none>');
        END;
    END LOOP;
END
$$;

-- The functions that run with the extension owner's rights, each with a
-- pinned search_path.
SELECT p.oid::regprocedure AS function, p.proconfig
  FROM pg_proc p WHERE p.pronamespace = 'dnr'::regnamespace AND p.prosecdef ORDER BY 1::text;

-- A role granted SELECT reads them (e.g. for support or audits).
\c - postgres
CREATE ROLE dnr_auditor;
GRANT SELECT ON dnr.tenants, dnr.applied, dnr.managed_tables, dnr.policies TO dnr_auditor;
SET ROLE dnr_auditor;
SELECT id, name FROM dnr.tenants ORDER BY id;
SELECT count(*) AS applied FROM dnr.applied;
SELECT count(*) AS managed FROM dnr.managed_tables;
SELECT count(*) AS policies FROM dnr.policies;
-- reading is all it may do
DELETE FROM dnr.tenants;
RESET ROLE;
DROP OWNED BY dnr_auditor;
DROP ROLE dnr_auditor;
