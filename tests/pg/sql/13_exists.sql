-- Relationship rules (`exists`), as the application role sees them. The
-- policy is examples/teams.dnr with one change: a document's project is
-- optional (a personal document has none), so that a NULL join value can be
-- stored. (An earlier teams.dnr had Project's delete rule read documents and
-- Share's create rule read documents, whose read rule reads projects and
-- shares: PostgreSQL refused those policies as "infinite recursion detected
-- in policy"; `dnr check` now refuses every `exists` that leads back to its
-- own entity through read rules.)
-- The related rows are those the context may read: the related entity's
-- fence and read rule apply inside `exists`.
--
-- Tenants: A (aaaa…), B (bbbb…). Users: alice (…a11ce), bob (…0b0b),
-- carol (…ca401), dave (…da7e), an admin (…00ad).
--   A: Apollo   — alice editor, bob viewer
--      Borealis — carol viewer
--      Cygnus   — carol with a NULL role
--   B: Draco    — alice editor
--      and an editor membership of dave that names Borealis's id (another
--      tenant's project), and a document of bob that names Cygnus's id
\c - dnr_owner
SELECT dnr.apply($policy$
tenancy:
  mode: row_level
  column: tenant_id

entity Project:
  table: projects
  id: uuid pk
  name: str(200) required
  archived: bool = false
  access:
    create: role(admin)
    read: role(admin) or exists Membership where project_id = this.id and user_id = current_user
    update: exists Membership where project_id = this.id and user_id = current_user and role = 'editor'
    delete: role(admin) and not exists Membership where project_id = this.id and role = 'editor'

entity Membership:
  table: memberships
  id: uuid pk
  project_id: ref Project required
  user_id: uuid required
  role: enum[viewer,editor] = 'viewer'
  access:
    read: user_id = current_user or role(admin)
    write: role(admin)
    delete: role(admin)

entity Document:
  table: documents
  id: uuid pk
  project_id: ref Project
  owner_id: uuid required
  title: str(200)
  access:
    create: owner_id = current_user and exists Project where id = this.project_id
    read: owner_id = current_user or exists Project where id = this.project_id or exists Share where document_id = this.id and user_id = current_user and revoked = false
    update: owner_id = current_user
    delete: owner_id = current_user

entity Share:
  table: shares
  id: uuid pk
  document_id: ref Document required
  project_id: ref Project required
  user_id: uuid required
  shared_by: uuid required
  revoked: bool = false
  access:
    read: user_id = current_user or shared_by = current_user
    create: shared_by = current_user and exists Membership where project_id = this.project_id and user_id = current_user and role = 'editor'
    update: shared_by = current_user
    delete: shared_by = current_user
$policy$);
GRANT SELECT, INSERT, UPDATE, DELETE ON projects, memberships, documents, shares TO app;

-- The policies name the related tables inline.
SELECT policy_name, using_expr FROM dnr.policies WHERE table_name = 'projects' AND policy_name = 'dnr_read';

-- apply created an index on the columns each `exists` matches on (and none
-- where one already leads with them: projects' primary key serves `id`).
SELECT tablename, indexname, indexdef FROM pg_indexes
 WHERE schemaname = 'public' AND indexname LIKE '%dnr_idx' AND indexname NOT LIKE '%tenant_id%'
 ORDER BY 1, 2;

-- Applying again creates no second index.
\c - postgres
SELECT source AS last_source FROM dnr.applied ORDER BY id DESC LIMIT 1 \gset
\c - dnr_owner
SELECT dnr.apply(:'last_source') AS reapplied;
SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'memberships' ORDER BY 1;

\c - postgres
INSERT INTO projects (tenant_id, id, name) VALUES
  ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000000a1', 'Apollo'),
  ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000000a2', 'Borealis'),
  ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000000a3', 'Cygnus'),
  ('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', '00000000-0000-0000-0000-0000000000b1', 'Draco');
INSERT INTO memberships (tenant_id, id, project_id, user_id, role) VALUES
  ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-000000000101', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000a11ce', 'editor'),
  ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-000000000102', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-000000000b0b', 'viewer'),
  ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-000000000103', '00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000ca401', 'viewer'),
  ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-000000000104', '00000000-0000-0000-0000-0000000000a3', '00000000-0000-0000-0000-0000000ca401', 'viewer'),
  ('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', '00000000-0000-0000-0000-000000000201', '00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000a11ce', 'editor'),
  ('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', '00000000-0000-0000-0000-000000000202', '00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-00000000da7e', 'editor');
-- the fill trigger turns an inserted NULL role into the default; an update
-- can still store NULL
UPDATE memberships SET role = NULL WHERE id = '00000000-0000-0000-0000-000000000104';
INSERT INTO documents (tenant_id, id, project_id, owner_id, title) VALUES
  ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000a11ce', 'Apollo spec'),
  ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000000d2', NULL, '00000000-0000-0000-0000-0000000a11ce', 'alice''s notes'),
  ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000000d3', '00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000ca401', 'Borealis plan'),
  ('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', '00000000-0000-0000-0000-0000000000d9', '00000000-0000-0000-0000-0000000000a3', '00000000-0000-0000-0000-000000000b0b', 'B names Cygnus');
INSERT INTO shares (tenant_id, id, document_id, project_id, user_id, shared_by, revoked) VALUES
  ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-000000000301', '00000000-0000-0000-0000-0000000000d3', '00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-000000000b0b', '00000000-0000-0000-0000-0000000ca401', false),
  ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-000000000302', '00000000-0000-0000-0000-0000000000d3', '00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000a11ce', '00000000-0000-0000-0000-0000000ca401', true);
-- copies without RLS, so the application can ask about every row
CREATE TABLE all_projects AS SELECT * FROM projects;
CREATE TABLE all_documents AS SELECT * FROM documents;
GRANT SELECT ON all_projects, all_documents TO app;

\c - app
-- Who sees which project, and which document.
CREATE FUNCTION pg_temp.visible(label text)
RETURNS TABLE (context text, projects text, documents text)
LANGUAGE sql AS $$
    SELECT label,
           (SELECT coalesce(string_agg(name, ', ' ORDER BY name), '-') FROM projects),
           (SELECT coalesce(string_agg(title, ', ' ORDER BY title), '-') FROM documents)
$$;
BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000a11ce');
SELECT * FROM pg_temp.visible('alice in A (editor of Apollo)');
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-000000000b0b');
SELECT * FROM pg_temp.visible('bob in A (viewer of Apollo)');
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000ca401');
SELECT * FROM pg_temp.visible('carol in A (Borealis, Cygnus)');
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-00000000da7e');
SELECT * FROM pg_temp.visible('dave in A (member in B only)');
SELECT dnr.set_context('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', '00000000-0000-0000-0000-00000000da7e');
SELECT * FROM pg_temp.visible('dave in B (membership names Borealis)');
SELECT dnr.set_context('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', '00000000-0000-0000-0000-0000000a11ce');
SELECT * FROM pg_temp.visible('alice in B');
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', NULL);
SELECT * FROM pg_temp.visible('anonymous in A');
SELECT dnr.set_context(NULL, '00000000-0000-0000-0000-0000000a11ce');
SELECT * FROM pg_temp.visible('alice without tenant');
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000000ad', '{admin}');
SELECT * FROM pg_temp.visible('admin in A');
COMMIT;

-- Revoking a membership hides the project from the next statement on (in
-- the same transaction, and for dnr.check too).
BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-000000000b0b');
SELECT name, dnr.check('Project', 'read', to_jsonb(p)) AS check FROM projects p;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000000ad', '{admin}');
WITH revoked AS (
  DELETE FROM memberships WHERE user_id = '00000000-0000-0000-0000-000000000b0b' RETURNING id
) SELECT count(*) AS revoked FROM revoked;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-000000000b0b');
SELECT count(*) AS bob_sees FROM projects;
SELECT dnr.check('Project', 'read', to_jsonb(p)) AS check, dnr.check_reason('Project', 'read', to_jsonb(p)) AS reason
  FROM all_projects p WHERE name = 'Apollo';
-- the shared document stays readable through the share
SELECT title FROM documents ORDER BY title;
ROLLBACK;

-- Editor-only update: bob (viewer) changes nothing, alice (editor) the row;
-- carol's member row has a NULL role, which is not 'editor'.
BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-000000000b0b');
WITH u AS (UPDATE projects SET name = 'Apollo by bob' WHERE name = 'Apollo' RETURNING id) SELECT count(*) AS bob_updated FROM u;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000ca401');
WITH u AS (UPDATE projects SET name = 'Cygnus by carol' WHERE name = 'Cygnus' RETURNING id) SELECT count(*) AS carol_updated FROM u;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000a11ce');
WITH u AS (UPDATE projects SET name = 'Apollo by alice' WHERE name = 'Apollo' RETURNING id) SELECT count(*) AS alice_updated FROM u;
SELECT name FROM projects ORDER BY name;
ROLLBACK;

-- `not exists`: the admin deletes only projects without an editor. Carol's
-- NULL role is not 'editor'; dave's editor membership in tenant B that
-- names Borealis is behind the fence inside `exists`. Alice (no admin)
-- deletes nothing.
BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000a11ce');
WITH d AS (DELETE FROM projects RETURNING name) SELECT count(*) AS alice_deleted FROM d;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000000ad', '{admin}');
SELECT p.name, dnr.check('Project', 'delete', to_jsonb(p)) AS check FROM all_projects p
 WHERE tenant_id = 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa' ORDER BY 1;
WITH d AS (DELETE FROM projects RETURNING name) SELECT string_agg(name, ', ' ORDER BY name) AS admin_deleted FROM d;
SELECT name FROM projects ORDER BY name;
ROLLBACK;

-- dnr.check agrees with PostgreSQL for every project and document, and
-- every operation but create, under each context.
CREATE FUNCTION pg_temp.pg_allows(entity text, op text, id uuid) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF op = 'read' THEN
        IF entity = 'Project' THEN
            RETURN EXISTS (SELECT 1 FROM projects p WHERE p.id = $3);
        END IF;
        RETURN EXISTS (SELECT 1 FROM documents d WHERE d.id = $3);
    END IF;
    BEGIN
        IF entity = 'Project' AND op = 'update' THEN
            UPDATE projects p SET name = p.name WHERE p.id = $3;
        ELSIF entity = 'Project' THEN
            DELETE FROM projects p WHERE p.id = $3;
        ELSIF op = 'update' THEN
            UPDATE documents d SET title = d.title WHERE d.id = $3;
        ELSE
            DELETE FROM documents d WHERE d.id = $3;
        END IF;
        GET DIAGNOSTICS n = ROW_COUNT;
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'roll back', DETAIL = n::text;
    EXCEPTION
        WHEN raise_exception THEN
            GET STACKED DIAGNOSTICS n = PG_EXCEPTION_DETAIL;
            RETURN n > 0;
    END;
END
$$;
CREATE FUNCTION pg_temp.compare(label text)
RETURNS TABLE (context text, checked bigint, allowed bigint, mismatches text)
LANGUAGE sql AS $$
    WITH r AS (
        SELECT 'Project' AS entity, p.id, p.name AS what, to_jsonb(p) AS record FROM all_projects p
        UNION ALL
        SELECT 'Document', d.id, d.title, to_jsonb(d) FROM all_documents d
    ), d AS (
        SELECT r.entity, r.what, o.op, dnr.check(r.entity, o.op, r.record) AS evaluator,
               pg_temp.pg_allows(r.entity, o.op, r.id) AS postgres
          FROM r, unnest(ARRAY['read', 'update', 'delete']) o(op)
    )
    SELECT label, count(*), count(*) FILTER (WHERE d.evaluator),
           coalesce(string_agg(format('%s %s %s: evaluator %s, postgres %s', d.entity, d.what, d.op, d.evaluator, d.postgres), '; ')
                      FILTER (WHERE d.evaluator IS DISTINCT FROM d.postgres), 'none')
      FROM d
$$;
BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000a11ce');
SELECT * FROM pg_temp.compare('alice in A');
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-000000000b0b');
SELECT * FROM pg_temp.compare('bob in A');
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000ca401');
SELECT * FROM pg_temp.compare('carol in A');
SELECT dnr.set_context('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', '00000000-0000-0000-0000-00000000da7e');
SELECT * FROM pg_temp.compare('dave in B');
SELECT dnr.set_context('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', '00000000-0000-0000-0000-0000000a11ce');
SELECT * FROM pg_temp.compare('alice in B');
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', NULL);
SELECT * FROM pg_temp.compare('anonymous in A');
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000000ad', '{admin}');
SELECT * FROM pg_temp.compare('admin in A');
COMMIT;

-- check_reason names the `exists` rule that decided.
BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-000000000b0b');
SELECT p.name, o.op, dnr.check_reason('Project', o.op, to_jsonb(p)) AS reason
  FROM all_projects p, unnest(ARRAY['read', 'update']) o(op)
 WHERE p.name IN ('Apollo', 'Borealis') ORDER BY 1, 2;
SELECT d.title, dnr.check_reason('Document', 'read', to_jsonb(d)) AS reason
  FROM all_documents d WHERE d.title IN ('Borealis plan', 'alice''s notes') ORDER BY 1;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000000ad', '{admin}');
SELECT p.name, dnr.check_reason('Project', 'delete', to_jsonb(p)) AS reason
  FROM all_projects p WHERE p.name IN ('Apollo', 'Borealis') ORDER BY 1;
-- a record that is not stored: the related rows are still the stored ones
SELECT dnr.check_reason('Document', 'create', '{"id": "00000000-0000-0000-0000-0000000000d7", "project_id": "00000000-0000-0000-0000-0000000000b1", "owner_id": "00000000-0000-0000-0000-0000000000ad"}') AS create_in_other_tenants_project;
COMMIT;

-- check reads the related rows as the calling role reads them: without
-- SELECT on memberships, the application gets PostgreSQL's error, as a
-- query of projects would.
\c - dnr_owner
REVOKE SELECT ON memberships FROM app;
\c - app
BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000a11ce');
SELECT count(*) FROM projects;
ROLLBACK;
BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000a11ce');
SELECT dnr.check('Project', 'read', to_jsonb(p)) FROM all_projects p WHERE name = 'Apollo';
ROLLBACK;
\c - dnr_owner
GRANT SELECT ON memberships TO app;

-- An index the application already has that leads with the matched columns
-- serves: apply creates none. One that leads with other columns does not.
DROP INDEX memberships_tenant_id_user_id_project_id_dnr_idx;
CREATE INDEX memberships_by_user ON memberships (user_id, project_id, role);
\c - postgres
SELECT source AS last_source FROM dnr.applied ORDER BY id DESC LIMIT 1 \gset
\c - dnr_owner
SELECT dnr.apply(:'last_source') IS NOT NULL AS reapplied;
SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'memberships' ORDER BY 1;
DROP INDEX memberships_tenant_id_user_id_project_id_dnr_idx;
CREATE INDEX memberships_by_member ON memberships (tenant_id, user_id, project_id, role);
\c - postgres
SELECT source AS last_source FROM dnr.applied ORDER BY id DESC LIMIT 1 \gset
\c - dnr_owner
SELECT dnr.apply(:'last_source') IS NOT NULL AS reapplied;
SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'memberships' ORDER BY 1;

-- A related table that is gone (and with it the policies that name it):
-- check says which, cleanly.
BEGIN;
SET LOCAL client_min_messages = warning;
DROP TABLE shares CASCADE;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000a11ce');
SELECT dnr.check('Document', 'read', '{"id": "00000000-0000-0000-0000-0000000000d1", "owner_id": "00000000-0000-0000-0000-0000000a11ce"}');
ROLLBACK;
