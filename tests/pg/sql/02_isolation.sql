-- dnr.enable_tenant_isolation(): the tenant fence on a table without a
-- policy file. Tenant A = aaaaaaaa-..., tenant B = bbbbbbbb-...
-- The owner creates the table; the application role `app` uses it.
\c - dnr_owner
CREATE TABLE notes (
    id int PRIMARY KEY,
    tenant_id uuid NOT NULL,
    body text NOT NULL
);
INSERT INTO notes VALUES
    (1, 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', 'a1'),
    (2, 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', 'a2'),
    (3, 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', 'b1'),
    (4, 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', 'b2');
SELECT dnr.enable_tenant_isolation('notes');
-- idempotent: a second call replaces the same policies, adds no second index
SELECT dnr.enable_tenant_isolation('notes', 'tenant_id');
GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO app;
SELECT table_name, policy_name, kind, command, using_expr, check_expr, rls_enabled, rls_forced, managed_by
  FROM dnr.policies ORDER BY table_name, policy_name;
SELECT indexrelid::regclass AS index, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'notes'::regclass ORDER BY 1;
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'notes'::regclass;

-- RLS is forced: the owner is fenced too and sees nothing without a tenant.
SELECT count(*) AS owner_without_context FROM notes;

-- A permissive policy the owner writes cannot open the fence: it is restrictive.
CREATE POLICY owner_wide_open ON notes USING (true) WITH CHECK (true);

\c - app
-- No context: no rows, no writes.
SELECT * FROM notes;
UPDATE notes SET body = 'x' RETURNING *;
DELETE FROM notes RETURNING *;
INSERT INTO notes (id, body) VALUES (10, 'no tenant');
INSERT INTO notes VALUES (10, 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', 'claims a tenant');

-- Tenant A sees and changes only its own rows.
BEGIN;
SELECT dnr.set_tenant('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
SELECT * FROM notes ORDER BY id;
SELECT * FROM notes WHERE id = 3;
UPDATE notes SET body = body || ' (edited by A)' RETURNING *;
UPDATE notes SET body = 'hijacked' WHERE id = 3 RETURNING *;
DELETE FROM notes WHERE id IN (3, 4) RETURNING *;
-- a missing tenant column is filled from the context
INSERT INTO notes (id, body) VALUES (5, 'a3') RETURNING *;
COMMIT;

-- Tenant A cannot insert a row for tenant B.
BEGIN;
SELECT dnr.set_tenant('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
INSERT INTO notes VALUES (6, 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', 'planted in B');
ROLLBACK;

-- Tenant A cannot move its row to tenant B.
BEGIN;
SELECT dnr.set_tenant('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
UPDATE notes SET tenant_id = 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb' WHERE id = 1;
ROLLBACK;

-- INSERT ... ON CONFLICT DO UPDATE cannot touch tenant B's row 3.
BEGIN;
SELECT dnr.set_tenant('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
INSERT INTO notes (id, body) VALUES (3, 'upsert over B')
    ON CONFLICT (id) DO UPDATE SET body = excluded.body RETURNING *;
ROLLBACK;
BEGIN;
SELECT dnr.set_tenant('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
INSERT INTO notes VALUES (3, 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', 'upsert as B')
    ON CONFLICT (id) DO UPDATE SET body = excluded.body RETURNING *;
ROLLBACK;
-- ON CONFLICT on its own row works.
BEGIN;
SELECT dnr.set_tenant('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
INSERT INTO notes (id, body) VALUES (1, 'a1 upserted')
    ON CONFLICT (id) DO UPDATE SET body = excluded.body RETURNING *;
COMMIT;

-- The context ends with the transaction: nothing is visible afterwards.
SELECT count(*) AS after_commit FROM notes;

-- Tenant B sees its rows, untouched by A.
BEGIN;
SELECT dnr.set_tenant('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb');
SELECT * FROM notes ORDER BY id;
-- switching tenant inside a transaction takes effect at the next statement
SELECT dnr.set_tenant('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
SELECT id FROM notes ORDER BY id;
COMMIT;

-- COPY TO sees only the tenant's rows; COPY FROM is refused under RLS.
BEGIN;
SELECT dnr.set_tenant('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb');
COPY notes TO STDOUT;
COPY (SELECT id, body FROM notes ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER);
\copy notes FROM PROGRAM 'true'
ROLLBACK;

-- The application cannot switch the fence off.
ALTER TABLE notes DISABLE ROW LEVEL SECURITY;
ALTER TABLE notes NO FORCE ROW LEVEL SECURITY;
DROP POLICY dnr_fence ON notes;
SELECT dnr.enable_tenant_isolation('notes');
BEGIN;
SELECT dnr.set_tenant('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb');
SET LOCAL row_security = off;
SELECT * FROM notes;
ROLLBACK;

-- Views: with security_invoker they run as the caller under the fence; an
-- owner's ordinary view is fenced too, because RLS is forced on the owner.
\c - dnr_owner
CREATE VIEW notes_invoker WITH (security_invoker = true) AS SELECT id, tenant_id, body FROM notes;
CREATE VIEW notes_definer AS SELECT id, tenant_id, body FROM notes;
GRANT SELECT ON notes_invoker, notes_definer TO app;
\c - app
SELECT * FROM notes_invoker;
SELECT * FROM notes_definer;
BEGIN;
SELECT dnr.set_tenant('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb');
SELECT * FROM notes_invoker ORDER BY id;
SELECT * FROM notes_definer ORDER BY id;
SELECT count(*) AS joined FROM notes_invoker i JOIN notes n USING (id);
COMMIT;

-- Argument checks.
\c - dnr_owner
CREATE TABLE wrong_type (id int, tenant_id text);
SELECT dnr.enable_tenant_isolation('wrong_type');
SELECT dnr.enable_tenant_isolation('wrong_type', 'no_such_column');
SELECT dnr.enable_tenant_isolation('no_such_table');
SELECT dnr.enable_tenant_isolation(NULL);

-- What actually happened to the data (as the superuser, who bypasses RLS).
\c - postgres
SELECT * FROM notes ORDER BY id;
