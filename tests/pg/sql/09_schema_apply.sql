-- dnr.apply() with tenancy mode schema: every tenant's schema gets the
-- tables and policies, a new tenant gets them when it is created,
-- re-applying replaces them in every schema, and a failure in one schema
-- changes nothing anywhere. Users: alice (…a11c), bob (…0b0b).
\c - dnr_owner
SELECT dnr.create_tenant('11111111-1111-1111-1111-111111111111', 'Acme');
SELECT dnr.create_tenant('22222222-2222-2222-2222-222222222222', 'Globex');
SET search_path = public;
SELECT dnr.apply($policy$
tenancy:
  mode: schema

entity Note:
  table: notes
  id: int pk
  owner_id: uuid
  body: text required
  access:
    create: owner_id = current_user
    read: owner_id = current_user or role(admin)
    update: owner_id = current_user
    delete: owner_id = current_user
$policy$);
-- no fence (schemas isolate tenants), the rules in both schemas
SELECT schema_name, table_name, policy_name, command, using_expr FROM dnr.policies ORDER BY 1, 2, 3;
-- nothing was created where the caller's search_path points, and it is back
SELECT to_regclass('public.notes') AS public_notes;
SHOW search_path;
\c - postgres
SELECT c.oid::regclass AS tbl, m.managed_by FROM dnr.managed_tables m JOIN pg_class c ON c.oid = m.tbl ORDER BY 1::text;
\c - dnr_owner

SELECT tenant_id, ok, error FROM dnr.migrate_tenants($ddl$
  DO $do$ BEGIN EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA %I TO app', pg_catalog.current_schema()); END $do$;
  GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO app
$ddl$);

\c - app
BEGIN;
SELECT dnr.use_tenant('11111111-1111-1111-1111-111111111111') AS schema, dnr.set_user('aaaaaaaa-0000-0000-0000-00000000a11c') AS alice;
INSERT INTO notes VALUES (1, 'aaaaaaaa-0000-0000-0000-00000000a11c', 'alice at acme');
COMMIT;
-- bob, in the same tenant: the owner rule hides alice's note and refuses a
-- note in her name
BEGIN;
SELECT dnr.use_tenant('11111111-1111-1111-1111-111111111111') AS schema, dnr.set_user('bbbbbbbb-0000-0000-0000-000000000b0b') AS bob;
SELECT * FROM notes;
UPDATE notes SET body = 'bob was here';
INSERT INTO notes VALUES (2, 'aaaaaaaa-0000-0000-0000-00000000a11c', 'bob writes as alice');
ROLLBACK;
-- alice in the other tenant: its own schema, empty; the same key is free
BEGIN;
SELECT dnr.use_tenant('22222222-2222-2222-2222-222222222222') AS schema, dnr.set_user('aaaaaaaa-0000-0000-0000-00000000a11c') AS alice;
SELECT * FROM notes;
INSERT INTO notes VALUES (1, 'aaaaaaaa-0000-0000-0000-00000000a11c', 'alice at globex');
SELECT * FROM notes;
COMMIT;

-- A tenant created later gets the newest policy's tables and policies.
\c - dnr_owner
SELECT dnr.create_tenant('33333333-3333-3333-3333-333333333333', 'Initech');
SELECT schema_name, table_name, policy_name FROM dnr.policies
 WHERE schema_name = 'tenant_33333333333333333333333333333333' ORDER BY 1, 2, 3;

-- Re-applying an edited file replaces the policies in every schema.
SELECT dnr.apply($policy$
tenancy:
  mode: schema

entity Note:
  table: notes
  id: int pk
  owner_id: uuid
  body: text required
  access:
    create: owner_id = current_user
    read: true
    update: owner_id = current_user
$policy$);
SELECT schema_name, pg_catalog.string_agg(policy_name || ' ' || using_expr, ', ' ORDER BY policy_name) AS policies
  FROM dnr.policies GROUP BY schema_name ORDER BY 1;
\c - app
BEGIN;
SELECT dnr.use_tenant('11111111-1111-1111-1111-111111111111') AS schema, dnr.set_user('bbbbbbbb-0000-0000-0000-000000000b0b') AS bob;
SELECT * FROM notes;
DELETE FROM notes;
SELECT count(*) AS notes_after_delete_without_rule FROM notes;
ROLLBACK;

-- One schema where the new file cannot be applied (its `tags` is a view):
-- the error names the schema, and no schema, policy or record changed.
\c - dnr_owner
CREATE VIEW tenant_22222222222222222222222222222222.tags AS SELECT 1 AS id;
\c - postgres
SELECT count(*) AS applied_before FROM dnr.applied;
\c - dnr_owner
SELECT dnr.apply($policy$
tenancy:
  mode: schema

entity Note:
  table: notes
  id: int pk
  owner_id: uuid
  body: text required
  access:
    read: false

entity Tag:
  table: tags
  id: int pk
  access:
    read: true
$policy$);
\c - postgres
SELECT count(*) AS applied_after FROM dnr.applied;
\c - dnr_owner
SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname = 'tags' ORDER BY 1;
SELECT schema_name, pg_catalog.string_agg(policy_name || ' ' || using_expr, ', ' ORDER BY policy_name) AS policies
  FROM dnr.policies GROUP BY schema_name ORDER BY 1;

-- Dropping a tenant forgets its tables.
SELECT dnr.drop_tenant('33333333-3333-3333-3333-333333333333');
\c - postgres
SELECT c.oid::regclass AS tbl FROM dnr.managed_tables m JOIN pg_class c ON c.oid = m.tbl ORDER BY 1::text;
SELECT count(*) AS managed_rows FROM dnr.managed_tables;
\c - dnr_owner
