-- A broken policy file is reported with line and column and changes nothing.
\c - dnr_owner
SELECT dnr.apply($policy$
entity Task:
  table: tasks
  id: int pk
  owner_id: uuid
  access:
    read: owner_id = current_user or role(admin)
$policy$);
SELECT table_name, policy_name FROM dnr.policies ORDER BY 1, 2;
\c - postgres
SELECT count(*) AS applied_sources FROM dnr.applied;
\c - dnr_owner

-- Errors: an unknown operation, a type error and an unknown field.
SELECT dnr.apply($policy$
entity Task:
  table: tasks
  id: int pk
  owner_id: uuid
  access:
    read: true
    destroy: true
    update: owner_id = 'not-a-uuid'
    delete: no_such_field = 1
$policy$);
-- A syntax error in a condition.
SELECT dnr.apply($policy$
entity Task:
  access:
    read: owner_id = = current_user
$policy$);
-- compile() reports the same way.
SELECT dnr.compile($policy$
entity Task:
  access:
    read: (true
$policy$);
-- Nothing changed: same policies, no new source recorded.
SELECT table_name, policy_name FROM dnr.policies ORDER BY 1, 2;
\c - postgres
SELECT count(*) AS applied_sources FROM dnr.applied;
\c - dnr_owner

-- A file that parses but fails while running its SQL (an entity without
-- fields whose table does not exist) rolls back completely: the first
-- entity's table is not created either.
SELECT dnr.apply($policy$
entity Gadget:
  table: gadgets
  id: int pk
  access:
    read: true

entity Ghost:
  table: ghosts
  access:
    read: true
$policy$);
SELECT to_regclass('gadgets') AS gadgets, to_regclass('ghosts') AS ghosts;
SELECT table_name, policy_name FROM dnr.policies ORDER BY 1, 2;
\c - postgres
SELECT count(*) AS applied_sources FROM dnr.applied;
\c - dnr_owner

-- dnr.check needs an applied policy, a known entity and operation.
\c - app
SELECT dnr.check('Nope', 'read', '{}');
SELECT dnr.check('Task', 'smash', '{}');
SELECT dnr.check('Task', 'read', '{"owner_id": "not-a-uuid"}');
