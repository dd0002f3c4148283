-- dnr_migrate: schema changes on enforced tables, all or nothing, with
-- enforcement rebuilt over the new columns.
.load ./target/release/libdnr
.bail off
.headers on
.nullvalue NULL
SELECT dnr_apply(readfile('tests/sqlite/tasks.dnr'));
SELECT dnr_set_context('aaaaaaaa-0000-4000-8000-000000000001', '00000000-0000-4000-8000-00000000a11c', NULL, 0);
INSERT INTO tasks (id, owner_id, title) VALUES (1, '00000000-0000-4000-8000-00000000a11c', 'a1');
SELECT dnr_set_context('bbbbbbbb-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000b0b', NULL, 0);
INSERT INTO tasks (id, owner_id, title) VALUES (2, '00000000-0000-4000-8000-000000000b0b', 'b2');
-- SQLite alone cannot alter the enforced name (a view).
ALTER TABLE tasks ADD COLUMN due TEXT;
-- Through dnr_migrate: add a column with a default, index it, rename it.
SELECT dnr_migrate('ALTER TABLE tasks ADD COLUMN due TEXT DEFAULT ''soon'';
CREATE INDEX tasks_due ON tasks (due);');
SELECT id, title, due FROM tasks;
UPDATE tasks SET due = 'friday' WHERE id = 2;
SELECT changes() AS "changes() through the view (a known limitation)";
SELECT id, title, due FROM tasks;
-- The index is on the storage table, where queries use it.
SELECT name, tbl_name FROM sqlite_master WHERE name = 'tasks_due';
SELECT dnr_migrate('ALTER TABLE tasks RENAME COLUMN due TO due_on');
SELECT id, due_on FROM tasks;
-- Enforcement holds after the migration: tenant A still sees only its row,
-- and cannot write into tenant B's.
SELECT dnr_set_context('aaaaaaaa-0000-4000-8000-000000000001', '00000000-0000-4000-8000-00000000a11c', NULL, 0);
SELECT id, title, due_on FROM tasks;
UPDATE tasks SET due_on = 'never' WHERE id = 2;
INSERT INTO tasks (id, tenant_id, owner_id, title) VALUES (3, 'bbbbbbbb-0000-4000-8000-000000000002', '00000000-0000-4000-8000-00000000a11c', 'forged');
SELECT dnr_migrate('DROP INDEX tasks_due; ALTER TABLE tasks DROP COLUMN due_on');
SELECT * FROM tasks;
-- Refused, naming the construct; nothing changes.
SELECT dnr_migrate('ALTER TABLE tasks DROP COLUMN owner_id');
SELECT dnr_migrate('ALTER TABLE tasks RENAME COLUMN tenant_id TO org');
SELECT dnr_migrate('ALTER TABLE tasks RENAME TO todo');
SELECT dnr_migrate('DROP TABLE tasks');
SELECT dnr_migrate('UPDATE tasks SET title = ''x''');
SELECT dnr_migrate('SELECT * FROM _dnr_tasks');
SELECT dnr_migrate('CREATE VIEW everything AS SELECT * FROM _dnr_tasks');
SELECT dnr_migrate('PRAGMA writable_schema = 1');
SELECT dnr_migrate('CREATE TABLE copy AS SELECT * FROM tasks');
SELECT dnr_migrate('CREATE TRIGGER t AFTER INSERT ON tasks BEGIN SELECT 1; END');
SELECT dnr_migrate('ALTER TABLE "Tasks" /* a comment */ DROP "Owner_Id"');
SELECT dnr_migrate('ALTER TABLE main.[tasks] RENAME TO todo');
SELECT dnr_migrate('-- nothing but a comment');
SELECT dnr_migrate('ALTER TABLE tasks ADD COLUMN');
-- A failing statement in the middle rolls back the earlier ones.
SELECT dnr_migrate('ALTER TABLE tasks ADD COLUMN a INT; ALTER TABLE tasks ADD COLUMN a INT');
SELECT name FROM pragma_table_info('_dnr_tasks') ORDER BY cid;
-- Tables DNR does not enforce migrate as usual.
SELECT dnr_migrate('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); ALTER TABLE notes ADD COLUMN at TEXT');
SELECT name FROM pragma_table_info('notes') ORDER BY cid;
-- A locked connection refuses it.
SELECT dnr_lock();
SELECT dnr_migrate('ALTER TABLE tasks ADD COLUMN late INT');
