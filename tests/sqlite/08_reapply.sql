-- Applying twice keeps every row; enforcing an existing table keeps its
-- rows; a broken policy file changes nothing; removing an entity hands the
-- table back.
.open target/sqlite-tests/reapply.db
.load ./target/release/libdnr
.bail off
.headers off
.nullvalue NULL
.print '# an existing plain table with rows (and a view and an index of the user)'
CREATE TABLE notes (id INTEGER PRIMARY KEY, tenant_id TEXT, author TEXT, body TEXT DEFAULT 'empty', UNIQUE (author, body));
CREATE INDEX notes_body ON notes (body);
INSERT INTO notes VALUES (1, 'aaaaaaaa-0000-0000-0000-000000000001', 'ann', 'first'), (2, 'bbbbbbbb-0000-0000-0000-000000000002', 'ben', 'second');
CREATE VIEW note_count AS SELECT count(*) AS n FROM notes;
SELECT * FROM note_count;
.print '# enforce it (columns come from the table, not the file)'
SELECT dnr_apply('entity Note:
  table: notes
  access:
    read: true
    write: true
    delete: true');
SELECT * FROM note_count;
SELECT dnr_set_tenant('aaaaaaaa-0000-0000-0000-000000000001', 0);
SELECT * FROM notes;
SELECT * FROM note_count;
INSERT INTO notes (id, author) VALUES (3, 'ann');
SELECT id, body FROM notes ORDER BY id;
.print '# the unique key (author, body) of the existing table is guarded'
SELECT dnr_set_tenant('bbbbbbbb-0000-0000-0000-000000000002', 0);
INSERT OR REPLACE INTO notes (id, author, body) VALUES (4, 'ann', 'first');
SELECT dnr_clear_context();
SELECT count(*) FROM _dnr_notes;
.print '# apply again, and again with a different rule: every row stays'
SELECT dnr_apply('entity Note:
  table: notes
  access:
    read: true
    write: true
    delete: true');
SELECT dnr_apply('entity Note:
  table: notes
  access:
    read: author = ''ann''
    write: true');
SELECT tenant_id, id, author, body FROM _dnr_notes ORDER BY id;
SELECT dnr_set_tenant('aaaaaaaa-0000-0000-0000-000000000001', 0);
SELECT id, author FROM notes ORDER BY id;
.print '# a broken policy file changes nothing, and says where it is broken'
SELECT dnr_clear_context();
CREATE TEMP TABLE before AS SELECT type, name, sql FROM sqlite_master;
SELECT dnr_apply('entity Note:
  table: notes
  access:
    read: autor = ''ann''
    wrte: true');
SELECT dnr_apply('entity Note:
  table: notes
  access:
    read: missing_column = 1');
SELECT dnr_apply('entity Note:
  table: notes
  tenant: owner_tenant
  access:
    read: true');
SELECT dnr_apply('entity Note:
  table: notes
  access:
    read: true

entity Bad:
  table: note_count
  access:
    read: true');
SELECT count(*) FROM (SELECT type, name, sql FROM sqlite_master EXCEPT SELECT * FROM temp.before);
SELECT count(*) FROM (SELECT * FROM temp.before EXCEPT SELECT type, name, sql FROM sqlite_master);
SELECT value LIKE '%author = ''ann''%' FROM _dnr_meta WHERE key = 'source';
SELECT count(*) FROM _dnr_notes;
.print '# dnr_compile is a dry run against this database'
SELECT dnr_compile('entity Note:
  table: notes
  access:
    read: true') LIKE '%DROP VIEW IF EXISTS "notes"%CREATE VIEW "notes"%';
SELECT count(*) FROM (SELECT type, name, sql FROM sqlite_master EXCEPT SELECT * FROM temp.before);
.print '# a file without the entity hands the table back, rows and all'
SELECT dnr_apply('entity Other:
  table: others
  id: int pk
  access:
    read: true');
SELECT type FROM sqlite_master WHERE name = 'notes';
SELECT count(*) FROM notes;
SELECT * FROM note_count;
SELECT name FROM sqlite_master WHERE name LIKE '\_dnr\_%' ESCAPE '\' ORDER BY name;
