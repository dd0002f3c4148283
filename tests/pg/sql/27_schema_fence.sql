-- Issue 27, point 2: in tenancy mode schema every tenant table carries a
-- fence (the restrictive policy dnr_fence): the context's tenant must be
-- the tenant whose schema holds the table. A role that serves every
-- tenant (USAGE on every tenant schema, as the grant recipe gives it)
-- reaches nothing of tenant A with tenant B's context: not by a qualified
-- name, not by SET LOCAL search_path, not with B's signed token.
\c - dnr_owner
SELECT dnr.create_tenant('11111111-1111-1111-1111-111111111111', 'A');
SELECT dnr.create_tenant('22222222-2222-2222-2222-222222222222', 'B');
SELECT dnr.apply($policy$
tenancy:
  mode: schema

entity Note:
  table: notes
  id: int pk
  body: text required
  access:
    read: true
    create: true
    update: true
    delete: true
$policy$);
-- the fence in both schemas, once per statement (InitPlans)
SELECT schema_name, table_name, policy_name, kind, using_expr FROM dnr.policies
 WHERE policy_name = 'dnr_fence' ORDER BY 1;
SELECT tenant_id, ok FROM dnr.migrate_tenants($ddl$
  DO $do$ BEGIN EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA %I TO app', pg_catalog.current_schema()); END $do$;
  GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO app
$ddl$);

\c - app
-- each tenant writes its own rows
BEGIN;
SELECT dnr.use_tenant('11111111-1111-1111-1111-111111111111');
INSERT INTO notes VALUES (1, 'secret of A');
SELECT * FROM notes;
COMMIT;
BEGIN;
SELECT dnr.use_tenant('22222222-2222-2222-2222-222222222222');
INSERT INTO notes VALUES (1, 'note of B');
SELECT * FROM notes;
-- B's context, A's schema by a qualified name: nothing
SELECT * FROM tenant_11111111111111111111111111111111.notes;
UPDATE tenant_11111111111111111111111111111111.notes SET body = 'defaced';
DELETE FROM tenant_11111111111111111111111111111111.notes;
SAVEPOINT s;
INSERT INTO tenant_11111111111111111111111111111111.notes VALUES (2, 'planted by B');
ROLLBACK TO SAVEPOINT s;
-- ... nor by search_path
SET LOCAL search_path = tenant_11111111111111111111111111111111;
SELECT * FROM notes;
COMMIT;
-- B's signed context
\i ../fixtures/signed-tokens.psql
BEGIN;
SELECT dnr.set_context_signed(:'valid_b');
SELECT dnr.current_tenant();
SELECT count(*) AS rows_of_a_seen_by_b FROM tenant_11111111111111111111111111111111.notes;
COMMIT;
-- no context: nothing in any schema
SELECT count(*) AS rows_without_context FROM tenant_11111111111111111111111111111111.notes;
-- A's own context still sees A's rows, untouched
BEGIN;
SELECT dnr.set_tenant('11111111-1111-1111-1111-111111111111');
SELECT * FROM tenant_11111111111111111111111111111111.notes;
COMMIT;

-- a tenant created later gets the fence too
\c - dnr_owner
SELECT dnr.create_tenant('cccccccc-cccc-cccc-cccc-cccccccccccc', 'C');
SELECT schema_name, policy_name, kind FROM dnr.policies
 WHERE policy_name = 'dnr_fence' AND schema_name = 'tenant_cccccccccccccccccccccccccccccccc';
-- dnr.relation_tenant: the tenant of a table's schema, NULL elsewhere
SELECT dnr.relation_tenant('tenant_cccccccccccccccccccccccccccccccc.notes'::regclass) AS c,
       dnr.relation_tenant('pg_catalog.pg_class'::regclass) AS elsewhere;
