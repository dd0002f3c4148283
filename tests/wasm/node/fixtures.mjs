// Shared policies and ids for the node tests.
export const POLICIES = `
tenancy:
  mode: row_level

entity Task:
  table: tasks
  id: int pk
  owner_id: uuid
  title: str(200)
  status: enum[todo,doing,done]
  access:
    create: authenticated
    read: owner_id = current_user or role(admin)
    update: owner_id = current_user
    delete: owner_id = current_user and status != 'done'
  forbid:
    delete: role(guest)

entity Plan:
  table: plans
  tenant: none
  id: int pk
  name: str
  access:
    read: true
`;

export const ACME = "11111111-1111-4111-8111-111111111111";
export const GLOBEX = "22222222-2222-4222-8222-222222222222";
export const ALICE = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
export const BOB = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";

/** A fresh in-memory database with POLICIES applied. */
export async function openWithPolicies(Database) {
  const db = await Database.open();
  db.applyPolicies(POLICIES);
  return db;
}

export const INSERT = "INSERT INTO tasks (id, owner_id, title, status) VALUES (?, ?, ?, ?)";
