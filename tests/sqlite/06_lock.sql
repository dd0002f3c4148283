-- dnr_lock(): a trusted host prepares the connection (policies, context),
-- locks it, and hands it to untrusted SQL. Nothing may reach a storage table
-- except through DNR's enforcement, and nothing may change the context.
.open target/sqlite-tests/lock.db
.load ./target/release/libdnr
.bail off
.headers off
.nullvalue NULL
SELECT dnr_apply(readfile('tests/sqlite/tasks.dnr'));
SELECT dnr_set_context('bbbbbbbb-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000b0b', 'admin', 0);
INSERT INTO tasks (id, owner_id, title, code) VALUES (10, '00000000-0000-0000-0000-000000000b0b', 'secret of B', 'B-10');
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
INSERT INTO tasks (id, owner_id, title, code) VALUES (1, '00000000-0000-0000-0000-00000000a11c', 'a1', 'A-1');
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
SELECT dnr_lock();
.print '# enforced access still works, as alice in tenant A'
SELECT id, title FROM tasks ORDER BY id;
INSERT INTO tasks (id, owner_id, title) VALUES (2, '00000000-0000-0000-0000-00000000a11c', 'a2');
UPDATE tasks SET title = 'a2 renamed' WHERE id = 2;
DELETE FROM tasks WHERE id = 2;
INSERT INTO tasks (id, owner_id, title) VALUES (10, '00000000-0000-0000-0000-00000000a11c', 'collide with B');
INSERT OR REPLACE INTO tasks (id, owner_id, title) VALUES (10, '00000000-0000-0000-0000-00000000a11c', 'replace B');
SELECT t.id, count(*) OVER () FROM tasks t LEFT JOIN projects p ON p.id = t.project_id ORDER BY t.id;
SELECT dnr_check('Task', 'read', '{"tenant_id":"aaaaaaaa-0000-0000-0000-000000000001","owner_id":"00000000-0000-0000-0000-00000000a11c"}');
SELECT dnr_tenant(), dnr_user();
.print '# the context cannot change'
SELECT dnr_set_tenant('bbbbbbbb-0000-0000-0000-000000000002', 0);
SELECT dnr_set_context('bbbbbbbb-0000-0000-0000-000000000002', NULL, 'admin', 0);
SELECT dnr_set_user(NULL, 0);
SELECT dnr_set_roles('admin', 0);
SELECT dnr_clear_context();
SELECT count(*) FROM notes WHERE dnr_set_tenant('bbbbbbbb-0000-0000-0000-000000000002', 0) IS NULL;
SELECT dnr_apply('entity Task:
  table: tasks
  access:
    read: true');
SELECT dnr_tenant(), dnr_user(), dnr_has_role('admin');
.print '# direct reads of storage and metadata'
SELECT * FROM _dnr_tasks;
SELECT count(*) FROM _dnr_tasks;
SELECT title FROM main."_DNR_TASKS";
SELECT * FROM _dnr_meta;
SELECT id FROM tasks WHERE id IN (SELECT id FROM _dnr_tasks);
.print '# a CTE or subquery named like DNR objects is not a way in'
WITH tasks AS (SELECT * FROM _dnr_tasks) SELECT id, title FROM tasks;
WITH "_dnr_tasks_insert" AS (SELECT * FROM _dnr_tasks) SELECT id, title FROM "_dnr_tasks_insert";
WITH x AS (SELECT * FROM _dnr_tasks) SELECT id, title FROM x AS tasks;
.print '# direct writes'
INSERT INTO _dnr_tasks (tenant_id, id, title) VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 99, 'direct');
UPDATE _dnr_tasks SET title = 'x';
DELETE FROM _dnr_tasks;
REPLACE INTO _dnr_tasks (tenant_id, id, title) VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 10, 'direct replace');
INSERT INTO _dnr_meta VALUES ('source', 'x');
DELETE FROM _dnr_meta;
.print '# DDL on enforced objects'
DROP VIEW tasks;
DROP VIEW main.tasks;
DROP TRIGGER _dnr_tasks_insert;
DROP TABLE _dnr_tasks;
DROP TABLE tasks;
DROP INDEX "_dnr_tasks_tenant_id_idx";
ALTER TABLE _dnr_tasks RENAME TO stolen;
ALTER TABLE _dnr_tasks ADD COLUMN leak TEXT;
ALTER TABLE tasks RENAME TO stolen;
CREATE INDEX peek_idx ON _dnr_tasks (title);
CREATE TABLE _dnr_later (x);
.print '# new views and triggers cannot read storage or hijack names'
CREATE TEMP VIEW tasks AS SELECT * FROM main._dnr_tasks;
CREATE VIEW _dnr_peek AS SELECT * FROM _dnr_tasks;
CREATE VIEW peek AS SELECT * FROM _dnr_tasks;
SELECT * FROM peek;
CREATE TEMP VIEW tpeek AS SELECT * FROM main._dnr_tasks;
SELECT * FROM tpeek;
CREATE TRIGGER spy AFTER INSERT ON _dnr_tasks BEGIN INSERT INTO notes (body) VALUES (NEW.title); END;
CREATE TEMP TRIGGER tspy AFTER UPDATE ON main._dnr_tasks BEGIN INSERT INTO notes (body) VALUES (NEW.title); END;
CREATE TRIGGER spy2 INSTEAD OF INSERT ON tasks BEGIN INSERT INTO notes (body) VALUES (NEW.title); END;
CREATE TRIGGER spy3 AFTER INSERT ON notes BEGIN INSERT INTO notes (body) SELECT title FROM _dnr_tasks; END;
INSERT INTO notes (body) VALUES ('trigger fires');
SELECT count(*) FROM notes;
.print '# the database cannot be reached another way'
ATTACH 'target/sqlite-tests/lock.db' AS other;
SELECT * FROM other._dnr_tasks;
ATTACH ':memory:' AS scratch;
SELECT load_extension('./target/release/libdnr');
PRAGMA writable_schema = ON;
PRAGMA writable_schema;
PRAGMA schema_version = 1;
PRAGMA legacy_alter_table = ON;
PRAGMA trusted_schema = ON;
VACUUM INTO 'target/sqlite-tests/copy.db';
SELECT count(*) FROM sqlite_dbpage;
SELECT name FROM dbstat LIMIT 1;
ANALYZE;
ANALYZE _dnr_tasks;
.print '# still alice in tenant A, and the rows of B are intact'
SELECT id, title FROM tasks ORDER BY id;
SELECT dnr_tenant(), dnr_user(), dnr_has_role('admin');
SELECT dnr_lock();
.print '# loading the extension again keeps the lock'
.load ./target/release/libdnr
SELECT dnr_set_tenant('bbbbbbbb-0000-0000-0000-000000000002', 0);
SELECT * FROM _dnr_tasks;
.print '# a fresh trusted connection sees the rows of B untouched'
.open target/sqlite-tests/lock.db
.load ./target/release/libdnr
SELECT dnr_set_context('bbbbbbbb-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000b0b', NULL, 0);
SELECT id, title, code FROM tasks ORDER BY id;
SELECT count(*) FROM notes;
SELECT name FROM sqlite_master WHERE name IN ('peek', 'spy', 'spy3', 'stolen') ORDER BY name;
.print '# a table enforced by another connection after the lock is protected too'
.open target/sqlite-tests/lock2.db
.load ./target/release/libdnr
CREATE TABLE keep (x);
CREATE VIEW keep_view AS SELECT * FROM keep;
SELECT dnr_set_tenant('aaaaaaaa-0000-0000-0000-000000000001', 0);
SELECT dnr_lock();
.shell sqlite3 target/sqlite-tests/lock2.db ".load ./target/release/libdnr" "SELECT dnr_apply(readfile('tests/sqlite/tasks.dnr'))"
DROP VIEW tasks;
DROP VIEW main.tasks;
DROP VIEW keep_view;
DROP TRIGGER _dnr_tasks_insert;
SELECT * FROM _dnr_tasks;
SELECT count(*) FROM tasks;
CREATE TEMP VIEW mine AS SELECT 1 AS one;
SELECT * FROM mine;
DROP VIEW mine;
