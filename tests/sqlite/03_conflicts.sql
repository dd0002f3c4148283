-- Writes that collide with another tenant's unique key must not delete,
-- overwrite or reveal that row: INSERT OR REPLACE, REPLACE, upsert, and
-- UPDATE onto a taken key.
.load ./target/release/libdnr
.bail off
.headers off
.nullvalue NULL
-- The table as an application made it, with table-wide keys (DNR creates
-- them per tenant, so that no key of B's collides with A's): through them a
-- collision with another tenant's key must not delete, overwrite or reveal
-- that row.
CREATE TABLE tasks (tenant_id TEXT NOT NULL, id INTEGER, owner_id TEXT, title TEXT NOT NULL, code TEXT UNIQUE, status TEXT CHECK (status = 'todo' OR status = 'doing' OR status = 'done') DEFAULT 'todo', priority INTEGER, project_id INTEGER, PRIMARY KEY (id));
SELECT dnr_apply(readfile('tests/sqlite/tasks.dnr'));
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
INSERT INTO tasks (id, owner_id, title, code) VALUES (1, '00000000-0000-0000-0000-00000000a11c', 'secret of A', 'A-1');
SELECT dnr_set_context('bbbbbbbb-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000b0b', NULL, 0);
INSERT INTO tasks (id, owner_id, title, code) VALUES (10, '00000000-0000-0000-0000-000000000b0b', 'b10', 'B-10');
.print '# B collides with the id of a row of A'
INSERT INTO tasks (id, owner_id, title) VALUES (1, '00000000-0000-0000-0000-000000000b0b', 'plain insert');
INSERT OR REPLACE INTO tasks (id, owner_id, title) VALUES (1, '00000000-0000-0000-0000-000000000b0b', 'insert or replace');
REPLACE INTO tasks (id, owner_id, title) VALUES (1, '00000000-0000-0000-0000-000000000b0b', 'replace');
INSERT OR IGNORE INTO tasks (id, owner_id, title) VALUES (1, '00000000-0000-0000-0000-000000000b0b', 'insert or ignore');
INSERT INTO tasks (id, owner_id, title) VALUES (1, '00000000-0000-0000-0000-000000000b0b', 'upsert') ON CONFLICT (id) DO UPDATE SET title = 'upserted';
INSERT INTO tasks (id, owner_id, title) VALUES (1, '00000000-0000-0000-0000-000000000b0b', 'upsert') ON CONFLICT DO NOTHING;
.print '# B collides with the unique code of a row of A'
INSERT OR REPLACE INTO tasks (id, owner_id, title, code) VALUES (11, '00000000-0000-0000-0000-000000000b0b', 'steal code', 'A-1');
.print '# B moves its own row onto the keys of A'
UPDATE tasks SET id = 1 WHERE id = 10;
UPDATE OR REPLACE tasks SET id = 1 WHERE id = 10;
UPDATE OR REPLACE tasks SET code = 'A-1' WHERE id = 10;
.print '# B replacing its own row works (same tenant, allowed by update)'
INSERT OR REPLACE INTO tasks (id, owner_id, title, code) VALUES (10, '00000000-0000-0000-0000-000000000b0b', 'b10 replaced', 'B-10');
SELECT id, title, code FROM tasks ORDER BY id;
.print '# B sees only its own rows; A still has its row, unchanged'
SELECT count(*) FROM tasks WHERE id = 1;
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
SELECT id, title, code, owner_id FROM tasks ORDER BY id;
.print '# storage: one row per key, none of B on the keys of A'
SELECT tenant_id, id, title, code FROM _dnr_tasks ORDER BY tenant_id, id;
.print '# the same within one tenant: a row the writer may not update is not replaced'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000c0', NULL, 0);
INSERT OR REPLACE INTO tasks (id, owner_id, title, code) VALUES (1, '00000000-0000-0000-0000-0000000000c0', 'carol replaces alice', 'A-1');
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000c0', 'admin', 0);
INSERT OR REPLACE INTO tasks (id, owner_id, title, code) VALUES (1, '00000000-0000-0000-0000-0000000000c0', 'admin replaces alice', 'A-1');
SELECT id, title, owner_id FROM tasks ORDER BY id;
