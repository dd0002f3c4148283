//! The reference evaluator: three-valued logic, default deny, forbid, fence.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use dnr_core::value::parse_uuid;
use dnr_core::{Operation, PolicySet, Row, TenantContext, Value};

const TENANT_A: &str = "aaaaaaaa-0000-4000-8000-000000000000";
const TENANT_B: &str = "bbbbbbbb-0000-4000-8000-000000000000";
const ALICE: &str = "00000000-0000-4000-8000-0000000a11ce";
const BOB: &str = "00000000-0000-4000-8000-000000000b0b";

const POLICY: &str = "
entity Task:
  id: uuid pk
  owner_id: uuid
  status: enum[todo,done]
  access:
    create: authenticated
    read: owner_id = current_user or role(admin)
    update: owner_id = current_user
    delete: not (owner_id = current_user) and role(admin)
    delete: owner_id = current_user and status != 'done'
  forbid:
    delete: role(guest)

entity Plan:
  tenant: none
  name: text
  access:
    read: true
";

fn policy() -> PolicySet {
    dnr_core::parse(POLICY).unwrap()
}

fn ctx(tenant: Option<&str>, user: Option<&str>, roles: &[&str]) -> TenantContext {
    TenantContext::parse(tenant, user, roles).unwrap()
}

fn uuid(text: &str) -> Value {
    Value::Uuid(parse_uuid(text).unwrap())
}

fn task(tenant: &str, owner: Option<&str>, status: &str) -> Row {
    Row::new()
        .with("tenant_id", uuid(tenant))
        .with("owner_id", owner.map_or(Value::Null, uuid))
        .with("status", Value::Text(status.into()))
}

fn allowed(op: Operation, ctx: &TenantContext, row: &Row) -> bool {
    policy().decide("Task", op, ctx, row).unwrap().allowed
}

#[test]
fn owner_reads_own_row_in_own_tenant() {
    let alice = ctx(Some(TENANT_A), Some(ALICE), &[]);
    assert!(allowed(
        Operation::Read,
        &alice,
        &task(TENANT_A, Some(ALICE), "todo")
    ));
    assert!(!allowed(
        Operation::Read,
        &alice,
        &task(TENANT_A, Some(BOB), "todo")
    ));
}

#[test]
fn fence_hides_other_tenants_rows_even_from_admins_and_owners() {
    let admin = ctx(Some(TENANT_B), Some(ALICE), &["admin"]);
    let decision = policy()
        .decide(
            "Task",
            Operation::Read,
            &admin,
            &task(TENANT_A, Some(ALICE), "todo"),
        )
        .unwrap();
    assert!(!decision.allowed);
    assert!(
        decision.reason.contains("tenant fence"),
        "{}",
        decision.reason
    );
}

#[test]
fn unset_tenant_denies_everything_tenant_scoped() {
    let no_tenant = ctx(None, Some(ALICE), &["admin"]);
    let row = task(TENANT_A, Some(ALICE), "todo");
    for op in Operation::ALL {
        let decision = policy().decide("Task", op, &no_tenant, &row).unwrap();
        assert!(!decision.allowed, "{op:?} allowed without a tenant");
        assert!(
            decision.reason.contains("no tenant in context"),
            "{}",
            decision.reason
        );
    }
}

#[test]
fn unscoped_entity_ignores_the_fence() {
    let plan = Row::new().with("name", Value::Text("pro".into()));
    let decision = policy()
        .decide("Plan", Operation::Read, &TenantContext::default(), &plan)
        .unwrap();
    assert!(decision.allowed, "{}", decision.reason);
}

#[test]
fn null_owner_denies_even_under_not() {
    // `not (owner_id = current_user)` with a NULL owner is NULL, not TRUE.
    let admin = ctx(Some(TENANT_A), Some(ALICE), &["admin"]);
    let orphan = task(TENANT_A, None, "todo");
    assert!(
        allowed(Operation::Read, &admin, &orphan),
        "admins read orphans"
    );
    let decision = policy()
        .decide("Task", Operation::Delete, &admin, &orphan)
        .unwrap();
    assert!(
        !decision.allowed,
        "NULL under `not` must deny: {}",
        decision.reason
    );
    // With an owner who is someone else, the same rule holds.
    assert!(allowed(
        Operation::Delete,
        &admin,
        &task(TENANT_A, Some(BOB), "todo")
    ));
}

#[test]
fn unset_user_makes_owner_rules_unknown() {
    let anonymous = ctx(Some(TENANT_A), None, &[]);
    assert!(!allowed(
        Operation::Read,
        &anonymous,
        &task(TENANT_A, Some(ALICE), "todo")
    ));
    assert!(!allowed(
        Operation::Create,
        &anonymous,
        &task(TENANT_A, Some(ALICE), "todo")
    ));
}

#[test]
fn forbid_overrides_permit() {
    let guest_owner = ctx(Some(TENANT_A), Some(ALICE), &["guest"]);
    let row = task(TENANT_A, Some(ALICE), "todo");
    let decision = policy()
        .decide("Task", Operation::Delete, &guest_owner, &row)
        .unwrap();
    assert!(!decision.allowed);
    assert!(
        decision.reason.contains("forbid delete: role(guest)"),
        "{}",
        decision.reason
    );
    let owner = ctx(Some(TENANT_A), Some(ALICE), &[]);
    assert!(allowed(Operation::Delete, &owner, &row));
}

#[test]
fn default_deny_without_rule() {
    let set = dnr_core::parse("entity Note:\n  body: text\n  access:\n    read: true\n").unwrap();
    let c = ctx(Some(TENANT_A), Some(ALICE), &["admin"]);
    let row = Row::new().with("tenant_id", uuid(TENANT_A));
    let decision = set.decide("Note", Operation::Delete, &c, &row).unwrap();
    assert!(!decision.allowed);
    assert!(
        decision.reason.contains("default deny"),
        "{}",
        decision.reason
    );
    assert!(
        set.decide("Note", Operation::Read, &c, &row)
            .unwrap()
            .allowed
    );
}

#[test]
fn create_fills_missing_tenant_and_refuses_a_different_one() {
    let alice = ctx(Some(TENANT_A), Some(ALICE), &[]);
    let without_tenant = Row::new().with("owner_id", uuid(ALICE));
    assert!(allowed(Operation::Create, &alice, &without_tenant));
    assert!(!allowed(
        Operation::Create,
        &alice,
        &task(TENANT_B, Some(ALICE), "todo")
    ));
}

#[test]
fn update_cannot_move_a_row_to_another_tenant() {
    let alice = ctx(Some(TENANT_A), Some(ALICE), &[]);
    let old = task(TENANT_A, Some(ALICE), "todo");
    let moved = task(TENANT_B, Some(ALICE), "todo");
    let decision = policy()
        .decide_update("Task", &alice, &old, &moved)
        .unwrap();
    assert!(!decision.allowed);
    assert!(
        decision.reason.contains("tenant fence"),
        "{}",
        decision.reason
    );
    assert!(
        policy()
            .decide_update("Task", &alice, &old, &old)
            .unwrap()
            .allowed
    );
}

#[test]
fn update_cannot_give_a_row_away() {
    // The new row must still satisfy the update rule (and be readable).
    let alice = ctx(Some(TENANT_A), Some(ALICE), &[]);
    let old = task(TENANT_A, Some(ALICE), "todo");
    let given = task(TENANT_A, Some(BOB), "todo");
    assert!(
        !policy()
            .decide_update("Task", &alice, &old, &given)
            .unwrap()
            .allowed
    );
}

#[test]
fn text_compares_in_binary_order() {
    let set = dnr_core::parse(
        "entity Doc:\n  tenant: none\n  title: text\n  access:\n    read: title < 'a'\n",
    )
    .unwrap();
    let c = TenantContext::default();
    let read = |title: &str| {
        set.decide(
            "Doc",
            Operation::Read,
            &c,
            &Row::new().with("title", Value::Text(title.into())),
        )
        .unwrap()
        .allowed
    };
    assert!(read("Z"), "uppercase sorts before lowercase in C collation");
    assert!(!read("b"));
    assert!(!read("ä"), "non-ASCII sorts after ASCII bytewise");
}

#[test]
fn in_list_with_null_operand_is_unknown() {
    let set = dnr_core::parse(
        "entity Doc:\n  tenant: none\n  n: int\n  access:\n    read: n not in [1, 2]\n    delete: n in [1, 2]\n",
    )
    .unwrap();
    let c = TenantContext::default();
    let null_row = Row::new().with("n", Value::Null);
    assert!(
        !set.decide("Doc", Operation::Read, &c, &null_row)
            .unwrap()
            .allowed
    );
    assert!(
        set.decide(
            "Doc",
            Operation::Read,
            &c,
            &Row::new().with("n", Value::Int(3))
        )
        .unwrap()
        .allowed
    );
    assert!(
        !set.decide(
            "Doc",
            Operation::Read,
            &c,
            &Row::new().with("n", Value::Int(2))
        )
        .unwrap()
        .allowed
    );
}

#[test]
fn uuids_compare_by_value_in_any_spelling() {
    let alice = ctx(Some(TENANT_A), Some(ALICE), &[]);
    let shouting = Row::from_json(
        policy().entity("Task").unwrap(),
        &serde_json::json!({"tenant_id": TENANT_A.to_uppercase(), "owner_id": ALICE.replace('-', "")}),
    )
    .unwrap();
    assert!(allowed(Operation::Read, &alice, &shouting));
}

#[test]
fn invalid_uuid_in_a_record_is_an_error() {
    let error = Row::from_json(
        policy().entity("Task").unwrap(),
        &serde_json::json!({"owner_id": "alice"}),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "field `owner_id`: `alice` is not a valid uuid"
    );
}

#[test]
fn invalid_context_ids_are_errors_not_unset() {
    let error = TenantContext::parse(Some("x'; drop table tasks; --"), None, &[]).unwrap_err();
    assert!(error.to_string().contains("invalid tenant id"), "{error}");
    assert!(TenantContext::parse(None, Some("123"), &[]).is_err());
    assert!(TenantContext::parse(None, None, &["admin,root"]).is_err());
}

#[test]
fn unknown_entity_is_an_error() {
    let error = policy()
        .decide(
            "Nope",
            Operation::Read,
            &TenantContext::default(),
            &Row::new(),
        )
        .unwrap_err();
    assert_eq!(error.to_string(), "unknown entity `Nope`");
}

#[test]
fn create_fills_declared_defaults_before_checking() {
    let set = dnr_core::parse(
        "entity Doc:\n  id: int pk\n  status: enum[draft,live] = 'draft'\n  access:\n    read: true\n    create: status = 'draft'\n",
    )
    .unwrap();
    let c = ctx(Some(TENANT_A), Some(ALICE), &[]);
    let create = |row: Row| {
        set.decide("Doc", Operation::Create, &c, &row)
            .unwrap()
            .allowed
    };
    assert!(
        create(Row::new().with("id", Value::Int(1))),
        "missing status takes the default"
    );
    assert!(
        create(
            Row::new()
                .with("id", Value::Int(1))
                .with("status", Value::Null)
        ),
        "NULL too"
    );
    assert!(!create(
        Row::new()
            .with("id", Value::Int(1))
            .with("status", Value::Text("live".into()))
    ));
}

mod exists {
    use super::*;
    use dnr_core::RelatedRows;

    const TEAMS: &str = "
entity Project:
  id: uuid pk
  access:
    read: exists Membership where project_id = this.id and user_id = current_user
    update: exists Membership where project_id = this.id and user_id = current_user and role = 'editor'
    delete: not exists Membership where project_id = this.id and role = 'owner'

entity Membership:
  id: uuid pk
  project_id: uuid
  user_id: uuid
  role: enum[viewer,editor,owner]
  access:
    read: user_id = current_user or role(admin)

entity Note:
  id: uuid pk
  author_id: uuid
  access:
    read: exists Membership where user_id = this.author_id and exists Membership where user_id = current_user and project_id = this.id
";
    const P1: &str = "10000000-0000-4000-8000-000000000001";

    fn membership(tenant: &str, project: Option<&str>, user: &str, role: &str) -> Row {
        Row::new()
            .with("tenant_id", uuid(tenant))
            .with("project_id", project.map_or(Value::Null, uuid))
            .with("user_id", uuid(user))
            .with("role", Value::Text(role.into()))
    }

    fn decide(op: Operation, ctx: &TenantContext, row: &Row, members: Vec<Row>) -> bool {
        let set = dnr_core::parse(TEAMS).unwrap();
        let mut related = RelatedRows::new();
        related.insert("Membership", members);
        set.decide_with("Project", op, ctx, row, &related)
            .unwrap()
            .allowed
    }

    fn project(tenant: &str) -> Row {
        Row::new()
            .with("tenant_id", uuid(tenant))
            .with("id", uuid(P1))
    }

    #[test]
    fn a_member_reads_a_non_member_does_not() {
        let alice = ctx(Some(TENANT_A), Some(ALICE), &[]);
        let bob = ctx(Some(TENANT_A), Some(BOB), &[]);
        let rows = || vec![membership(TENANT_A, Some(P1), ALICE, "viewer")];
        assert!(decide(Operation::Read, &alice, &project(TENANT_A), rows()));
        assert!(!decide(Operation::Read, &bob, &project(TENANT_A), rows()));
        // Without related rows nothing exists.
        assert!(!decide(Operation::Read, &alice, &project(TENANT_A), vec![]));
    }

    #[test]
    fn the_related_fence_applies_inside_exists() {
        // Alice's membership row lives in tenant B: in tenant A it is not
        // readable, so it does not make tenant A's project readable.
        let alice = ctx(Some(TENANT_A), Some(ALICE), &[]);
        let rows = vec![membership(TENANT_B, Some(P1), ALICE, "editor")];
        assert!(!decide(Operation::Read, &alice, &project(TENANT_A), rows));
    }

    #[test]
    fn the_related_read_rule_applies_inside_exists() {
        // Bob's editor membership exists, but Bob's context cannot read
        // Alice's row, and Alice's row is the editor one.
        let bob = ctx(Some(TENANT_A), Some(BOB), &[]);
        let rows = || {
            vec![
                membership(TENANT_A, Some(P1), BOB, "viewer"),
                membership(TENANT_A, Some(P1), ALICE, "editor"),
            ]
        };
        assert!(decide(Operation::Read, &bob, &project(TENANT_A), rows()));
        assert!(!decide(Operation::Update, &bob, &project(TENANT_A), rows()));
    }

    #[test]
    fn null_join_values_deny_and_not_exists_is_two_valued() {
        let alice = ctx(Some(TENANT_A), Some(ALICE), &[]);
        let rows = || vec![membership(TENANT_A, None, ALICE, "owner")];
        assert!(!decide(Operation::Read, &alice, &project(TENANT_A), rows()));
        // The owner row's NULL project never matches, so `not exists` holds
        // (exists is never NULL) — but delete also needs the row readable.
        let with_read = || {
            let mut members = rows();
            members.push(membership(TENANT_A, Some(P1), ALICE, "viewer"));
            members
        };
        assert!(decide(
            Operation::Delete,
            &alice,
            &project(TENANT_A),
            with_read()
        ));
        let mut owned = with_read();
        owned.push(membership(TENANT_A, Some(P1), ALICE, "owner"));
        let set = dnr_core::parse(TEAMS).unwrap();
        let mut related = RelatedRows::new();
        related.insert("Membership", owned);
        let decision = set
            .decide_with(
                "Project",
                Operation::Delete,
                &alice,
                &project(TENANT_A),
                &related,
            )
            .unwrap();
        assert!(!decision.allowed);
        assert!(
            decision.reason.contains(
                "a readable `Membership` row satisfies `project_id = this.id and role = 'owner'`"
            ),
            "{}",
            decision.reason
        );
    }

    #[test]
    fn nested_exists_this_is_the_outermost_row() {
        let set = dnr_core::parse(TEAMS).unwrap();
        let admin = ctx(Some(TENANT_A), Some(ALICE), &["admin"]);
        let note = Row::new()
            .with("tenant_id", uuid(TENANT_A))
            .with("id", uuid(P1))
            .with("author_id", uuid(BOB));
        let mut related = RelatedRows::new();
        related.insert(
            "Membership",
            vec![
                membership(TENANT_A, None, BOB, "viewer"),
                membership(TENANT_A, Some(P1), ALICE, "viewer"),
            ],
        );
        assert!(
            set.decide_with("Note", Operation::Read, &admin, &note, &related)
                .unwrap()
                .allowed
        );
        // The inner `this.id` is the note's id, not the outer membership's.
        let other = note.clone().with("id", uuid(TENANT_B));
        assert!(
            !set.decide_with("Note", Operation::Read, &admin, &other, &related)
                .unwrap()
                .allowed
        );
        assert_eq!(set.related_entities("Note").len(), 1);
    }
}

/// Every host reads a check request the same way, with one wording.
#[test]
fn check_requests_are_read_once_for_every_host() {
    let set = dnr_core::parse(
        "entity Task:\n  table: tasks\n  id: int pk\n  owner_id: uuid\n  access:\n    read: true\n",
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let record = serde_json::json!({ "id": 1 });
    let request = set.request("tasks", "list", &record);
    assert!(
        matches!(request, Ok(ref r) if r.entity.name == "Task" && r.op == dnr_core::Operation::Read)
    );
    let unknown = |entity: &str, op: &str, record: serde_json::Value| {
        set.request(entity, op, &record)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        unknown("Nope", "read", record.clone()),
        "unknown entity `Nope`: the policies declare `Task`"
    );
    assert_eq!(
        unknown("Task", "smash", record.clone()),
        "unknown operation `smash`: expected create, read (or list), update or delete"
    );
    assert_eq!(
        unknown("Task", "read", serde_json::json!({ "owner_id": "bob" })),
        "invalid record for `Task`: field `owner_id`: `bob` is not a valid uuid"
    );
}
