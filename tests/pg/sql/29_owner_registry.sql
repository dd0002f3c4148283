-- Issue 27, points 5 and 6 (registry writes): an owner does not become
-- superuser, and no owner's records break dnr.check for everyone.
-- dnr._registry('record_apply', ...) compiles what it records from the
-- source (an invalid source is an error, the caller's DDL is ignored), and
-- dnr.create_tenant runs only DDL that DNR compiles from the newest policy
-- the caller itself applied: a superuser's create_tenant does not run an
-- owner's policy (a superuser is a member of every role).
\c - dnr_owner
-- the owner (CREATE on the database: it owns it) records a "policy" whose
-- DDL makes it a superuser
SELECT dnr._registry('record_apply', pg_catalog.jsonb_build_object(
  'source', E'tenancy:\n  mode: schema\n\nentity Note:\n  table: notes\n  id: int pk\n',
  'mode', 'schema', 'ddl', 'ALTER ROLE dnr_owner SUPERUSER', 'tables', '[]'::jsonb, 'rels', '[]'::jsonb));
-- ... or one that does not parse
SELECT dnr._registry('record_apply', pg_catalog.jsonb_build_object(
  'source', 'this is not a policy', 'mode', 'schema', 'ddl', 'ALTER ROLE dnr_owner SUPERUSER',
  'tables', '[]'::jsonb, 'rels', '[]'::jsonb));
SELECT dnr._registry('record_apply', pg_catalog.jsonb_build_object('rels', '[]'::jsonb));
\c - postgres
-- what was recorded is DNR's compilation of the source, not the caller's DDL
SELECT applied_by, mode, ddl = dnr.compile(source) AS compiled_by_dnr, ddl LIKE '%SUPERUSER%' AS has_callers_ddl
  FROM dnr.applied ORDER BY id;
-- a superuser creates a tenant: the owner's policy is not run as superuser
SELECT dnr.create_tenant('11111111-1111-1111-1111-111111111111', 'by the superuser');
SELECT rolsuper AS owner_became_superuser FROM pg_roles WHERE rolname = 'dnr_owner';
SELECT to_regclass('tenant_11111111111111111111111111111111.notes') AS notes_in_superusers_tenant;
SELECT dnr.drop_tenant('11111111-1111-1111-1111-111111111111');
\c - dnr_owner
-- the owner's own tenants get its own policy, compiled by DNR
SELECT dnr.create_tenant('22222222-2222-2222-2222-222222222222', 'by the owner');
SELECT to_regclass('tenant_22222222222222222222222222222222.notes') AS notes_in_owners_tenant;
SELECT policy_name FROM dnr.policies ORDER BY 1;
SELECT rolsuper AS owner_became_superuser FROM pg_roles WHERE rolname = 'dnr_owner';

-- dnr.check keeps working for everyone: no invalid source can be recorded
SELECT dnr.apply($policy$
entity Item:
  table: items
  id: int pk
  tenant_id: uuid
  access:
    read: true
$policy$);
\c - app
SELECT dnr.check('Item', 'read', '{"id": 1}');
