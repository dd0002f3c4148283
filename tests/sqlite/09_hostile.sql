-- Hostile table, column and literal names in a policy file are quoted,
-- never executed; roles cannot smuggle SQL either.
.load ./target/release/libdnr
.bail off
.headers off
.nullvalue NULL
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
-- An existing table whose column names are hostile: dnr reads them from the
-- database and must quote them everywhere.
CREATE TABLE "odd ""table" (id INTEGER PRIMARY KEY, tenant_id TEXT, "x"", y); DROP TABLE users; --" TEXT DEFAULT 'd''efault');
INSERT INTO users VALUES (1, 'still here');
SELECT dnr_apply('entity Evil:
  table: ''evil"; DROP TABLE users; --''
  id: int pk
  note: text
  access:
    read: note != ''it''''s''''; DROP TABLE users; --''
    create: true

entity OddCols:
  table: ''odd "table''
  access:
    read: true
    create: true
    update: true

entity Odd:
  table: ''a]b`c"d''''e''
  id: int pk
  access:
    read: true
    create: true');
SELECT name FROM users;
SELECT dnr_set_tenant('aaaaaaaa-0000-0000-0000-000000000001', 0);
INSERT INTO "evil""; DROP TABLE users; --" (id, note) VALUES (1, 'fine');
INSERT INTO "evil""; DROP TABLE users; --" (id, note) VALUES (2, 'it''s''; DROP TABLE users; --');
SELECT id, note FROM "evil""; DROP TABLE users; --" ORDER BY id;
INSERT INTO "a]b`c""d'e" (id) VALUES (7);
SELECT id, tenant_id FROM "a]b`c""d'e";
INSERT INTO "odd ""table" (id, "x"", y); DROP TABLE users; --") VALUES (1, 'v');
INSERT INTO "odd ""table" (id) VALUES (2);
SELECT * FROM "odd ""table" ORDER BY id;
SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name;
SELECT name FROM users;
.print '# roles are plain words'
SELECT dnr_set_roles('admin''); DROP TABLE users; --', 0);
SELECT dnr_has_role('admin''); DROP TABLE users; --');
.print '# the same names after dnr_lock(), through the locked tables'
SELECT dnr_lock();
SELECT id, note FROM "evil""; DROP TABLE users; --" ORDER BY id;
INSERT INTO "evil""; DROP TABLE users; --" (id, note) VALUES (3, 'locked');
SELECT id FROM "a]b`c""d'e";
SELECT * FROM "odd ""table" ORDER BY id;
UPDATE "odd ""table" SET "x"", y); DROP TABLE users; --" = 'w' WHERE id = 1;
SELECT * FROM "odd ""table" ORDER BY id;
SELECT count(*) FROM "evil""; DROP TABLE users; --";
SELECT name FROM users;
