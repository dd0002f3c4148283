-- Issue 27, point 4: in row_level mode a declared table's unique keys are
-- per tenant, the tenant column first. Tenant B can take an id or an e-mail
-- tenant A holds (no duplicate-key error tells B that A has it, and B
-- cannot squat A's values); a duplicate within one tenant is refused.
-- apply moves the table-wide keys of an existing table (as an earlier
-- apply created them) to per-tenant keys, and refuses, changing nothing,
-- when a foreign key references the old key.
-- Tenant A = aaaaaaaa-..., tenant B = bbbbbbbb-...
\c - dnr_owner
SELECT dnr.apply($policy$
tenancy:
  mode: row_level
  column: tenant_id

entity User:
  table: users
  id: int pk
  email: str unique
  name: str
  access:
    read: true
    write: true
$policy$);
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
  WHERE conrelid = 'users'::regclass AND contype IN ('p', 'u') ORDER BY 1;
GRANT SELECT, INSERT, UPDATE, DELETE ON users TO app;

\c - app
BEGIN;
SELECT dnr.set_tenant('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
INSERT INTO users (id, email, name) VALUES (1, 'ceo@acme.example', 'A ceo');
COMMIT;

-- Tenant B: A's id and e-mail are free in B.
BEGIN;
SELECT dnr.set_tenant('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb');
INSERT INTO users (id, email, name) VALUES (1, 'ceo@acme.example', 'B ceo') RETURNING id, email, name;
SELECT id, email, name FROM users;
COMMIT;

-- Within one tenant a key is still unique.
BEGIN;
SELECT dnr.set_tenant('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
INSERT INTO users (id, email, name) VALUES (1, 'other@acme.example', 'same id');
ROLLBACK;
BEGIN;
SELECT dnr.set_tenant('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
INSERT INTO users (id, email, name) VALUES (2, 'ceo@acme.example', 'same e-mail');
ROLLBACK;

-- An upsert names the per-tenant key: PostgreSQL refuses ON CONFLICT (id),
-- which no constraint matches (DNR's SQLite rewriter widens it instead).
BEGIN;
SELECT dnr.set_tenant('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
INSERT INTO users (id, email, name) VALUES (1, 'ceo@acme.example', 'upsert')
  ON CONFLICT (id) DO UPDATE SET name = excluded.name;
ROLLBACK;
BEGIN;
SELECT dnr.set_tenant('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
INSERT INTO users (id, email, name) VALUES (1, 'ceo@acme.example', 'A ceo, upserted')
  ON CONFLICT (tenant_id, id) DO UPDATE SET name = excluded.name RETURNING id, name;
COMMIT;

-- Each tenant's rows as stored (the owner is fenced too: per tenant).
BEGIN;
SELECT dnr.set_tenant('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
SELECT id, email, name FROM users ORDER BY id;
SELECT dnr.set_tenant('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb');
SELECT id, email, name FROM users ORDER BY id;
COMMIT;

-- Upgrade: a table with the table-wide keys an earlier apply created.
\c - dnr_owner
CREATE TABLE accounts (
  tenant_id uuid NOT NULL,
  id bigint,
  email text UNIQUE,
  name text,
  PRIMARY KEY (id)
);
INSERT INTO accounts VALUES
  ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', 1, 'ceo@acme.example', 'A'),
  ('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', 2, 'ceo@globex.example', 'B');
SELECT dnr.apply($policy$
tenancy:
  mode: row_level
  column: tenant_id

entity User:
  table: users
  id: int pk
  email: str unique
  name: str
  access:
    read: true
    write: true

entity Account:
  table: accounts
  id: int pk
  email: str unique
  name: str
  access:
    read: true
    write: true
$policy$);
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
  WHERE conrelid = 'accounts'::regclass AND contype IN ('p', 'u') ORDER BY 1;
-- applied again: nothing left to move
SELECT dnr.apply((SELECT source FROM dnr.applied_policy()));
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
  WHERE conrelid = 'accounts'::regclass AND contype IN ('p', 'u') ORDER BY 1;
GRANT SELECT, INSERT, UPDATE, DELETE ON accounts TO app;

\c - app
BEGIN;
SELECT dnr.set_tenant('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb');
INSERT INTO accounts (id, email, name) VALUES (1, 'ceo@acme.example', 'B takes A''s id and e-mail');
SELECT id, email, name FROM accounts ORDER BY id;
COMMIT;

-- A foreign key of the owner's references the old key: apply refuses,
-- naming it, and changes nothing (the key, RLS, the policies).
\c - dnr_owner
CREATE TABLE orgs (tenant_id uuid NOT NULL, id bigint PRIMARY KEY, name text);
CREATE TABLE members (org_id bigint REFERENCES orgs (id), name text);
SELECT dnr.apply((SELECT source FROM dnr.applied_policy()) || $policy$
entity Org:
  table: orgs
  id: int pk
  name: str
  access:
    read: true
$policy$);
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
  WHERE conrelid = 'orgs'::regclass AND contype IN ('p', 'u') ORDER BY 1;
SELECT relname, relrowsecurity FROM pg_class WHERE oid = 'orgs'::regclass;
SELECT count(*) AS org_policies FROM pg_policies WHERE tablename = 'orgs';
-- with the foreign key dropped, apply moves the key
ALTER TABLE members DROP CONSTRAINT members_org_id_fkey;
SELECT dnr.apply((SELECT source FROM dnr.applied_policy()) || $policy$
entity Org:
  table: orgs
  id: int pk
  name: str
  access:
    read: true
$policy$);
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
  WHERE conrelid = 'orgs'::regclass AND contype IN ('p', 'u') ORDER BY 1;
