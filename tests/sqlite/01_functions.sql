-- The context functions and dnr_uuid: values, NULLs, invalid input.
.load ./target/release/libdnr
.bail off
.headers off
.nullvalue NULL
.print '# empty context'
SELECT dnr_tenant(), dnr_user(), dnr_has_role('admin'), dnr_authenticated();
.print '# set the whole context; roles as a comma list'
SELECT dnr_set_context('AAAAAAAA-0000-0000-0000-000000000001', '{00000000-0000-0000-0000-00000000a11c}', 'admin, staff', 0);
SELECT dnr_tenant(), dnr_user(), dnr_has_role('admin'), dnr_has_role('staff'), dnr_has_role('guest'), dnr_authenticated();
.print '# roles as a JSON array; NULL role never held'
SELECT dnr_set_roles('["auditor","x.y:z-1"]', 0);
SELECT dnr_has_role('auditor'), dnr_has_role('x.y:z-1'), dnr_has_role('admin'), dnr_has_role(NULL);
.print '# the parts change one at a time'
SELECT dnr_set_user(NULL, 0);
SELECT dnr_tenant(), dnr_user(), dnr_authenticated(), dnr_has_role('auditor');
SELECT dnr_set_tenant('bbbbbbbb000000000000000000000002', 0);
SELECT dnr_tenant();
.print '# NULL and empty clear a part'
SELECT dnr_set_context(NULL, '00000000-0000-0000-0000-00000000a11c', NULL, 0);
SELECT dnr_tenant(), dnr_user(), dnr_has_role('auditor');
SELECT dnr_set_tenant('', 0);
SELECT dnr_tenant();
.print '# invalid ids and roles are errors and change nothing'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', 'bob', NULL, 0);
SELECT dnr_tenant(), dnr_user();
SELECT dnr_set_tenant('not-a-uuid', 0);
SELECT dnr_set_tenant(42, 0);
SELECT dnr_set_tenant(' aaaaaaaa-0000-0000-0000-000000000001', 0);
SELECT dnr_set_user('aaaaaaaa-0000-0000-0000-00000000000g', 0);
SELECT dnr_set_roles('admin, drop table x', 0);
SELECT dnr_set_roles('["admin", 1]', 0);
SELECT dnr_set_context();
SELECT dnr_tenant(), dnr_user(), dnr_has_role('auditor');
.print '# clear'
SELECT dnr_clear_context();
SELECT dnr_tenant(), dnr_user(), dnr_has_role('auditor'), dnr_authenticated();
.print '# dnr_uuid normalizes every spelling, refuses the rest'
SELECT dnr_uuid('6A1B0C36-2E7B-4F0B-9C1D-3E0A1B2C3D4E'), dnr_uuid('{6a1b0c36-2e7b-4f0b-9c1d-3e0a1b2c3d4e}'), dnr_uuid('6a1b0c362e7b4f0b9c1d3e0a1b2c3d4e');
SELECT dnr_uuid(NULL);
SELECT dnr_uuid('6a1b0c36-2e7b-4f0b-9c1d-3e0a1b2c3d4');
SELECT dnr_uuid('');
SELECT dnr_uuid(7);
SELECT dnr_uuid(x'00');
.print '# readers are usable in views with trusted_schema=OFF; setters are not'
PRAGMA trusted_schema = OFF;
CREATE VIEW whoami AS SELECT dnr_tenant() AS t, dnr_has_role('admin') AS admin, dnr_uuid('6A1B0C36-2E7B-4F0B-9C1D-3E0A1B2C3D4E') AS u;
SELECT dnr_set_tenant('aaaaaaaa-0000-0000-0000-000000000001', 0);
SELECT * FROM whoami;
CREATE VIEW sneaky AS SELECT dnr_set_tenant('bbbbbbbb-0000-0000-0000-000000000002', 0);
SELECT * FROM sneaky;
SELECT dnr_tenant();
.print '# readers are not constant-folded across context changes'
CREATE TABLE n(i);
INSERT INTO n VALUES (1), (2);
SELECT i, dnr_tenant() FROM n;
SELECT dnr_set_tenant('bbbbbbbb-0000-0000-0000-000000000002', 0);
SELECT i, dnr_tenant() FROM n;
