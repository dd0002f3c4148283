-- On a locked connection the user's TEMP views and triggers over enforced
-- tables work, are enforced, and stay usable with trusted_schema=OFF.
.load ./target/release/libdnr
.bail off
.headers off
.nullvalue NULL
SELECT dnr_apply(readfile('tests/sqlite/tasks.dnr'));
SELECT dnr_set_context('bbbbbbbb-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000b0b', NULL, 0);
INSERT INTO tasks (id, owner_id, title) VALUES (10, '00000000-0000-0000-0000-000000000b0b', 'b10');
PRAGMA trusted_schema = OFF;
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
SELECT dnr_lock();
INSERT INTO tasks (id, owner_id, title) VALUES (1, '00000000-0000-0000-0000-00000000a11c', 'a1');
.print '# a TEMP view over the enforced table sees what the table shows'
CREATE TEMP VIEW mine AS SELECT count(*) AS n, group_concat(title) AS titles FROM tasks;
SELECT * FROM mine;
.print '# a TEMP trigger writes through the enforced table: checked like any write'
CREATE TEMP TABLE inbox (id, owner, tenant);
CREATE TEMP TRIGGER file_it AFTER INSERT ON inbox BEGIN
  INSERT INTO tasks (tenant_id, id, owner_id, title) VALUES (NEW.tenant, NEW.id, NEW.owner, 'via trigger');
END;
INSERT INTO inbox VALUES (2, '00000000-0000-0000-0000-00000000a11c', NULL);
INSERT INTO inbox VALUES (3, '00000000-0000-0000-0000-00000000a11c', 'bbbbbbbb-0000-0000-0000-000000000002');
INSERT INTO inbox VALUES (10, '00000000-0000-0000-0000-00000000a11c', NULL);
SELECT id, title FROM tasks ORDER BY id;
SELECT * FROM mine;
.print '# the TEMP view cannot be pointed at storage instead'
DROP VIEW mine;
CREATE TEMP VIEW mine AS SELECT count(*) AS n, group_concat(title) AS titles FROM main._dnr_tasks;
SELECT * FROM mine;
