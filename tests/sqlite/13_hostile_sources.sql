-- Hostile policy sources (issue 10) are refused with a position and the
-- shell keeps running: 10,000 nested parentheses, 50,000 chained `not`s and
-- a 100,000-term `or` chain used to overflow the stack (SIGSEGV).
.load ./target/release/libdnr
.bail off
.headers off
.nullvalue NULL
CREATE TEMP TABLE hostile (name TEXT, source TEXT);
INSERT INTO hostile VALUES
  ('parens', 'entity T:
  access:
    read: ' || replace(hex(zeroblob(10000)), '00', '(') || 'true' || replace(hex(zeroblob(10000)), '00', ')') || '
'),
  ('nots', 'entity T:
  access:
    read: ' || replace(hex(zeroblob(50000)), '00', 'not ') || 'true
'),
  ('or chain', 'entity T:
  access:
    read: ' || replace(hex(zeroblob(100000)), '00', 'true or ') || 'true
'),
  ('long names', 'entity Public:
  table: ' || replace(hex(zeroblob(63)), '00', 'a') || '_public
  access:
    read: true

entity Secret:
  table: ' || replace(hex(zeroblob(63)), '00', 'a') || '_secret
  access:
    read: false
');
SELECT name, length(source) FROM hostile;
SELECT dnr_compile(source) FROM hostile WHERE name = 'parens';
SELECT dnr_apply(source) FROM hostile WHERE name = 'parens';
SELECT dnr_compile(source) FROM hostile WHERE name = 'nots';
SELECT dnr_apply(source) FROM hostile WHERE name = 'nots';
SELECT dnr_compile(source) FROM hostile WHERE name = 'or chain';
SELECT dnr_apply(source) FROM hostile WHERE name = 'or chain';
SELECT dnr_apply(source) FROM hostile WHERE name = 'long names';
SELECT 'the shell is still running';
-- Nothing was applied.
SELECT count(*) FROM sqlite_master WHERE name LIKE '%dnr%';
-- dnr_check reads the applied policy: apply a good one, then ask with a
-- hostile entity name and hostile records.
SELECT dnr_apply('entity T:
  n: int
  access:
    read: n = 1
');
SELECT dnr_set_context('aaaaaaaa-0000-4000-8000-000000000000', NULL, NULL, 0);
SELECT dnr_check(replace(hex(zeroblob(100)), '00', '('), 'read', '{}');
SELECT dnr_check('T', 'read', replace(hex(zeroblob(100000)), '00', '[') );
SELECT dnr_check('T', 'read', '{"n": 1, "tenant_id": "aaaaaaaa-0000-4000-8000-000000000000"}');
-- dnr_compile and dnr_check take the blob readfile() returns, as dnr_apply does.
CREATE TABLE u (id INTEGER PRIMARY KEY, tenant_id TEXT);
SELECT length(dnr_compile(CAST('entity U:
  access:
    read: true
' AS BLOB))) > 0;
SELECT dnr_check(CAST('T' AS BLOB), CAST('read' AS BLOB), CAST('{"n": 1, "tenant_id": "aaaaaaaa-0000-4000-8000-000000000000"}' AS BLOB)),
       dnr_check(CAST('T' AS BLOB), CAST('read' AS BLOB), CAST('{"n": 2, "tenant_id": "aaaaaaaa-0000-4000-8000-000000000000"}' AS BLOB));
SELECT dnr_compile(x'ff');
-- dnr_migrate with hostile input: deep nesting (SQLite's own parser
-- refuses it, nothing changes), garbage bytes, NUL, unterminated comment,
-- nothing but semicolons.
SELECT dnr_migrate('CREATE VIEW v AS SELECT ' || replace(hex(zeroblob(100000)), '00', '(') || '1' || replace(hex(zeroblob(100000)), '00', ')'));
SELECT dnr_migrate(randomblob(100000));
SELECT dnr_migrate(x'00414c544552');
SELECT dnr_migrate('ALTER TABLE t ADD COLUMN d INT /* unterminated');
SELECT dnr_migrate(replace(hex(zeroblob(200000)), '00', ';'));
SELECT count(*) FROM sqlite_master WHERE name = 'v';
SELECT 'the shell is still running';
