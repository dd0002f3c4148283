-- Hostile input through every text argument: each is either refused or
-- treated as data, never run as SQL. `victim` must survive to the end.
\c - dnr_owner
CREATE TABLE victim (id int);
INSERT INTO victim VALUES (1);
GRANT SELECT ON victim TO app;

\c - app
-- Context setters take uuids: a hostile string is an invalid uuid.
SELECT dnr.set_tenant('x''; DROP TABLE victim; --');
SELECT dnr.set_user('00000000-0000-0000-0000-000000000001''; DROP TABLE victim; --');
SELECT dnr.set_context('x''); DROP TABLE victim; --', NULL, '{}');
-- Role names are validated: quotes, commas, spaces, semicolons are refused.
SELECT dnr.set_roles(ARRAY['admin''; DROP TABLE victim; --']);
SELECT dnr.set_roles(ARRAY['admin,superuser']);
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', NULL, ARRAY['"admin"']);
-- has_role compares text; a hostile argument is just a role that is not set.
SELECT dnr.has_role(''' OR true --'), dnr.has_role('admin'' OR ''1''=''1');
-- Tenants: use_tenant/drop_tenant take uuids too.
SELECT dnr.use_tenant('x''; DROP TABLE victim; --');

\c - dnr_owner
-- enable_tenant_isolation takes a regclass: a hostile string is not a table...
SELECT dnr.enable_tenant_isolation('victim; DROP TABLE victim; --');
SELECT dnr.enable_tenant_isolation('victim', 'tenant_id; DROP TABLE victim; --');
-- ...and a table and column that really have hostile names are quoted.
CREATE TABLE "evil""; DROP TABLE victim; --" (
    id int PRIMARY KEY,
    "tenant'); DROP TABLE victim; --" uuid NOT NULL,
    note text
);
GRANT SELECT, INSERT ON "evil""; DROP TABLE victim; --" TO app;
SELECT dnr.enable_tenant_isolation('"evil""; DROP TABLE victim; --"', 'tenant''); DROP TABLE victim; --');
SELECT table_name, policy_name, using_expr FROM dnr.policies ORDER BY 1, 2;
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = '"evil""; DROP TABLE victim; --"'::regclass;

\c - app
BEGIN;
SELECT dnr.set_tenant('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
-- the fill trigger copes with the hostile column name
INSERT INTO "evil""; DROP TABLE victim; --" (id, note) VALUES (1, 'filled');
SELECT * FROM "evil""; DROP TABLE victim; --";
-- and the fence holds
INSERT INTO "evil""; DROP TABLE victim; --" VALUES (2, 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', 'other tenant');
ROLLBACK;

-- A policy file with hostile table, column and literal text.
\c - dnr_owner
SELECT dnr.apply($policy$
entity Evil:
  table: 'evil2"; DROP TABLE victim; --'
  id: int pk
  note: text
  access:
    read: note != 'it''s''; DROP TABLE victim; --'
    create: true
$policy$);
SELECT table_name, policy_name, kind, command FROM dnr.policies WHERE table_name LIKE 'evil2%' ORDER BY 1, 2;
GRANT SELECT, INSERT ON "evil2""; DROP TABLE victim; --" TO app;

\c - app
BEGIN;
SELECT dnr.set_tenant('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
INSERT INTO "evil2""; DROP TABLE victim; --" (id, note) VALUES (1, 'fine');
SELECT id, note FROM "evil2""; DROP TABLE victim; --" ORDER BY id;
-- the hostile literal is compared as data: a row whose note is exactly that
-- text is not readable, so (writes must stay readable) it cannot be created
INSERT INTO "evil2""; DROP TABLE victim; --" (id, note) VALUES (2, 'it''s''; DROP TABLE victim; --');
ROLLBACK;
-- check(): hostile entity and operation names are just unknown names.
SELECT dnr.check('Evil''; DROP TABLE victim; --', 'read', '{}');
SELECT dnr.check('Evil', 'read''; DROP TABLE victim; --', '{}');
BEGIN;
SELECT dnr.set_tenant('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
SELECT dnr.check('Evil', 'read', '{"id": 1, "tenant_id": "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa", "note": "x''; DROP TABLE victim; --"}') AS other_text,
       dnr.check('Evil', 'read', '{"id": 1, "tenant_id": "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa", "note": "it''s''; DROP TABLE victim; --"}') AS the_literal;
COMMIT;

-- victim is still there.
SELECT * FROM victim;
