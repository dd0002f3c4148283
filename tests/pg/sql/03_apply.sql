-- dnr.apply(): a policy file enforced as RLS, checked as the application
-- role. Tenant A = aaaaaaaa-..., B = bbbbbbbb-...; users alice (…a11ce),
-- bob (…b0b), carol (…ca401).
\c - dnr_owner
SELECT dnr.apply($policy$
tenancy:
  mode: row_level
  column: tenant_id

entity Task:
  table: tasks
  id: int pk
  owner_id: uuid
  title: str(200) required
  status: enum[todo,doing,done] = 'todo'
  access:
    create: authenticated
    read: owner_id = current_user or role(admin)
    update: owner_id = current_user
    delete: owner_id = current_user and status != 'done'
  forbid:
    delete: role(guest)

entity Plan:
  table: plans
  tenant: none
  id: int pk
  name: text required
  access:
    read: true
$policy$);

-- The declared tables exist, with the tenant column, RLS enabled and forced.
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       pg_get_userbyid(c.relowner) AS owner
  FROM pg_class c WHERE c.oid IN ('tasks'::regclass, 'plans'::regclass) ORDER BY 1;
SELECT attname, format_type(atttypid, atttypmod), attnotnull
  FROM pg_attribute WHERE attrelid = 'tasks'::regclass AND attnum > 0 ORDER BY attnum;
SELECT table_name, policy_name, kind, command, managed_by FROM dnr.policies ORDER BY 1, 2;
\c - postgres
SELECT tbl, managed_by FROM dnr.managed_tables ORDER BY tbl::text;
SELECT count(*) AS applied_sources FROM dnr.applied;
\c - dnr_owner
GRANT SELECT, INSERT, UPDATE, DELETE ON tasks, plans TO app;

-- Seed data as the superuser (bypasses RLS).
\c - postgres
INSERT INTO tasks (id, tenant_id, owner_id, title, status) VALUES
    (1, 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000a11ce', 'alice todo', 'todo'),
    (2, 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000a11ce', 'alice done', 'done'),
    (3, 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-000000000b0b', 'bob todo', 'todo'),
    (4, 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', NULL, 'nobody''s', 'todo'),
    (5, 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', '00000000-0000-0000-0000-0000000a11ce', 'alice in B', 'todo');
INSERT INTO plans VALUES (1, 'free'), (2, 'pro');

\c - app
-- No context at all: nothing, and tenant-less shared data is still readable.
SELECT * FROM tasks;
SELECT * FROM plans ORDER BY id;

-- alice in tenant A: her own rows only (not bob's, not the NULL owner's, not B's).
BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000a11ce');
SELECT id, title, status FROM tasks ORDER BY id;
COMMIT;

-- bob in tenant A.
BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-000000000b0b');
SELECT id, title FROM tasks ORDER BY id;
COMMIT;

-- carol, admin in tenant A: every row of A, including the NULL owner's; never B's.
BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000ca401', '{admin}');
SELECT id, title FROM tasks ORDER BY id;
COMMIT;

-- anonymous in tenant A: owner_id = NULL user is not true: nothing.
BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
SELECT id FROM tasks;
INSERT INTO tasks (id, title) VALUES (20, 'anonymous create');
ROLLBACK;

-- alice in tenant B sees her B row only.
BEGIN;
SELECT dnr.set_context('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', '00000000-0000-0000-0000-0000000a11ce');
SELECT id, title FROM tasks ORDER BY id;
COMMIT;

-- Writes as alice in tenant A.
BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000a11ce');
-- update: her own rows only; bob's row is invisible, so untouched
UPDATE tasks SET title = title || '!' RETURNING id, title;
UPDATE tasks SET title = 'taken' WHERE id = 3 RETURNING id;
-- delete: her own row unless done
DELETE FROM tasks WHERE id IN (1, 2, 3, 4, 5) RETURNING id;
-- create: authenticated, tenant filled from the context, status defaults
INSERT INTO tasks (id, owner_id, title) VALUES (10, '00000000-0000-0000-0000-0000000a11ce', 'new')
    RETURNING id, tenant_id, owner_id, title, status;
SAVEPOINT s;
-- cannot give a row away: the new row must satisfy the update rule
UPDATE tasks SET owner_id = '00000000-0000-0000-0000-000000000b0b' WHERE id = 10;
ROLLBACK TO s;
-- cannot move a row to another tenant
UPDATE tasks SET tenant_id = 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb' WHERE id = 10;
ROLLBACK TO s;
-- cannot create a row for another tenant
INSERT INTO tasks (id, tenant_id, owner_id, title) VALUES (11, 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', '00000000-0000-0000-0000-0000000a11ce', 'to B');
ROLLBACK TO s;
-- the enum is a CHECK constraint
INSERT INTO tasks (id, owner_id, title, status) VALUES (12, '00000000-0000-0000-0000-0000000a11ce', 'x', 'bogus');
ROLLBACK TO s;
-- shared reference data has no create rule: default deny
INSERT INTO plans VALUES (3, 'enterprise');
ROLLBACK TO s;
COMMIT;

-- forbid wins: alice with the guest role cannot delete even her own todo.
BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000a11ce', '{guest}');
DELETE FROM tasks RETURNING id;
SELECT id FROM tasks ORDER BY id;
ROLLBACK;

-- the admin can read bob's row but the update rule is owner-only: nothing changes.
BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000ca401', '{admin}');
UPDATE tasks SET title = 'admin edit' WHERE id = 3 RETURNING id;
ROLLBACK;

-- Applying the same file again is safe and changes nothing.
\c - postgres
SELECT source AS last_source FROM dnr.applied ORDER BY id DESC LIMIT 1 \gset
\c - dnr_owner
SELECT dnr.apply(:'last_source');
SELECT table_name, policy_name, kind, command FROM dnr.policies ORDER BY 1, 2;
SELECT indexrelid::regclass AS index FROM pg_index WHERE indrelid = 'tasks'::regclass ORDER BY 1;
\c - postgres
SELECT count(*) AS applied_sources FROM dnr.applied;
\c - dnr_owner

-- A policy the owner writes by hand survives later applies.
CREATE POLICY hand_written_no_titles_starting_with_x ON tasks AS RESTRICTIVE FOR INSERT
    WITH CHECK (title NOT LIKE 'x%');

-- A new version of the file: Task loses its update and delete rules, Plan is gone.
-- Stale DNR policies disappear; tables that left the file stay fenced
-- (RLS stays enabled, no DNR policy: fail closed).
SELECT dnr.apply($policy$
entity Task:
  table: tasks
  access:
    read: owner_id = current_user
    create: owner_id = current_user
$policy$);
SELECT table_name, policy_name, kind, command, managed_by FROM dnr.policies ORDER BY 1, 2;
SELECT polname FROM pg_policy WHERE polrelid = 'tasks'::regclass ORDER BY 1;
SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'plans'::regclass;
\c - postgres
SELECT tbl, managed_by FROM dnr.managed_tables ORDER BY tbl::text;
\c - dnr_owner

\c - app
BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000a11ce');
SELECT id, title FROM tasks ORDER BY id;
DELETE FROM tasks RETURNING id;
SELECT * FROM plans;
INSERT INTO tasks (id, owner_id, title) VALUES (13, '00000000-0000-0000-0000-0000000a11ce', 'xylophone');
ROLLBACK;

-- The whole apply is transactional: rolled back, it leaves no trace.
\c - dnr_owner
BEGIN;
SELECT dnr.apply($policy$
entity Widget:
  table: widgets
  id: int pk
  access:
    read: true
$policy$);
SELECT to_regclass('widgets') IS NOT NULL AS widgets_exists_inside;
ROLLBACK;
SELECT to_regclass('widgets') AS widgets_after_rollback;
\c - postgres
SELECT count(*) AS applied_sources FROM dnr.applied;
\c - dnr_owner

-- compile() is a dry run: it returns the SQL and changes nothing.
SELECT position('CREATE TABLE IF NOT EXISTS "widgets"' IN sql) > 0 AS creates_table,
       position('CREATE POLICY dnr_fence ON "widgets" AS RESTRICTIVE' IN sql) > 0 AS fences,
       position('FORCE ROW LEVEL SECURITY' IN sql) > 0 AS forces_rls
  FROM dnr.compile($policy$
entity Widget:
  table: widgets
  id: int pk
  access:
    read: true
$policy$) AS sql;
SELECT to_regclass('widgets') AS widgets_after_compile;

-- The application role cannot apply policies: it does not own the tables
-- (PostgreSQL refuses the DDL, which runs with its privileges). Nothing is
-- recorded.
\c - app
SELECT dnr.apply($policy$
entity Task:
  table: tasks
  access:
    read: true
$policy$);
\c - postgres
SELECT count(*) AS applied_sources FROM dnr.applied;
