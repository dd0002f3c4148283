//! Every class of policy error, with the line, column and message a user sees.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

/// Parses `source` and returns `(line, column, message)` of every error.
fn errors(source: &str) -> Vec<(usize, usize, String)> {
    match dnr_core::parse(source) {
        Ok(_) => panic!("expected errors, the policy parsed:\n{source}"),
        Err(errors) => errors
            .diagnostics
            .iter()
            .map(|d| (d.span.line, d.span.column, d.message.clone()))
            .collect(),
    }
}

/// Asserts exactly one error at `line:column` whose message contains `needle`.
fn one_error(source: &str, line: usize, column: usize, needle: &str) {
    let found = errors(source);
    assert_eq!(found.len(), 1, "expected one error, got {found:#?}");
    let (l, c, message) = &found[0];
    assert_eq!((*l, *c), (line, column), "position of `{message}`");
    assert!(
        message.contains(needle),
        "message `{message}` lacks `{needle}`"
    );
}

const HEAD: &str =
    "entity Task:\n  id: uuid pk\n  owner_id: uuid\n  status: enum[todo,done]\n  access:\n";

fn rule(line: &str) -> String {
    format!("{HEAD}    {line}\n")
}

#[test]
fn lexer_unexpected_character() {
    one_error(
        &rule("read: owner_id = current_user ; true"),
        6,
        35,
        "unexpected character `;`",
    );
}

#[test]
fn lexer_unterminated_string() {
    one_error(&rule("read: status = 'todo"), 6, 20, "unterminated string");
}

#[test]
fn lexer_tab_indentation() {
    one_error("entity Task:\n\tid: uuid pk\n", 2, 1, "tab in indentation");
}

#[test]
fn lexer_malformed_number() {
    one_error(&rule("read: 12abc = 1"), 6, 11, "malformed number");
}

#[test]
fn lexer_integer_overflow() {
    one_error(
        &rule("read: 99999999999999999999 = 1"),
        6,
        11,
        "does not fit in 64 bits",
    );
}

#[test]
fn top_level_garbage() {
    one_error(
        "entiti Task:\n",
        1,
        1,
        "expected `entity Name:` or `tenancy:`",
    );
}

#[test]
fn top_level_indented() {
    one_error("  entity Task:\n", 1, 3, "unexpected indentation");
}

#[test]
fn entity_without_colon() {
    one_error(
        "entity Task\n  id: uuid\n",
        1,
        8,
        "expected `:` after the entity name",
    );
}

#[test]
fn unknown_tenancy_mode() {
    one_error(
        "tenancy:\n  mode: sharded\n",
        2,
        9,
        "unknown tenancy mode `sharded`",
    );
}

#[test]
fn unknown_tenancy_key() {
    one_error(
        "tenancy:\n  colum: tenant\n",
        2,
        3,
        "unknown tenancy key `colum`",
    );
}

#[test]
fn duplicate_tenancy_block() {
    one_error(
        "tenancy:\n  mode: none\ntenancy:\n  mode: none\n",
        3,
        1,
        "duplicate `tenancy:` block",
    );
}

#[test]
fn unknown_field_type() {
    one_error(
        "entity Task:\n  id: uuidd pk\n",
        2,
        7,
        "unknown field type `uuidd`",
    );
}

#[test]
fn bad_field_modifier() {
    one_error(
        "entity Task:\n  id: uuid primary\n",
        2,
        12,
        "unexpected `primary` in field `id`",
    );
}

#[test]
fn missing_str_length() {
    one_error("entity Task:\n  title: str(\n", 2, 14, "expected a length");
}

#[test]
fn unknown_rule_key() {
    one_error(&rule("reed: true"), 6, 5, "unknown rule key `reed`");
}

#[test]
fn missing_condition() {
    one_error(&rule("read:"), 6, 5, "expected a condition after `read:`");
}

#[test]
fn dangling_operator() {
    one_error(
        &rule("read: owner_id ="),
        6,
        21,
        "expected a field, `current_user`",
    );
}

#[test]
fn trailing_tokens() {
    one_error(
        &rule("read: true true"),
        6,
        16,
        "unexpected `true` after the condition",
    );
}

#[test]
fn unclosed_parenthesis() {
    one_error(&rule("read: (true or false"), 6, 25, "expected `)`");
}

#[test]
fn is_without_null() {
    one_error(
        &rule("read: owner_id is empty"),
        6,
        23,
        "expected `null` after `is`",
    );
}

#[test]
fn not_without_in() {
    one_error(
        &rule("read: status not ['todo']"),
        6,
        22,
        "expected `in` after `not`",
    );
}

#[test]
fn empty_rule_block() {
    one_error("entity Task:\n  access:\n", 2, 3, "empty rule block");
}

#[test]
fn unknown_field_in_condition() {
    one_error(
        &rule("read: ownr = current_user"),
        6,
        11,
        "unknown field `ownr` in entity `Task`",
    );
}

#[test]
fn invalid_uuid_literal() {
    one_error(
        &rule("read: owner_id = 'abc'"),
        6,
        11,
        "`'abc'` is not a valid uuid for field `owner_id`",
    );
}

#[test]
fn enum_value_not_declared() {
    one_error(
        &rule("read: status = 'gone'"),
        6,
        11,
        "`'gone'` is not a value of field `status`",
    );
}

#[test]
fn comparison_with_null() {
    one_error(&rule("read: owner_id = null"), 6, 5, "use `is null`");
}

#[test]
fn context_compared_with_text_field() {
    let source = "entity Note:\n  body: text\n  access:\n    read: body = current_user\n";
    one_error(
        source,
        4,
        11,
        "`current_user` is a uuid but field `body` is text",
    );
}

#[test]
fn type_mismatch_between_field_and_number() {
    one_error(
        &rule("read: status = 3"),
        6,
        11,
        "`3` does not fit field `status`",
    );
}

#[test]
fn duplicate_field() {
    one_error(
        "entity Task:\n  id: uuid\n  id: int\n",
        3,
        3,
        "duplicate field `id`",
    );
}

#[test]
fn duplicate_entity() {
    one_error(
        "entity Task:\n  id: uuid\nentity Task:\n  id: uuid\n",
        3,
        8,
        "duplicate entity `Task`",
    );
}

#[test]
fn unknown_ref_target() {
    one_error(
        "entity Task:\n  owner_id: ref Person\n",
        2,
        3,
        "refers to unknown entity `Person`",
    );
}

#[test]
fn tenant_column_must_be_uuid() {
    one_error(
        "entity Task:\n  tenant_id: int\n",
        2,
        3,
        "tenant column `tenant_id` of entity `Task` must be a uuid",
    );
}

#[test]
fn bad_default() {
    one_error(
        "entity Task:\n  done: bool = 'yes'\n",
        2,
        3,
        "default of field `done`",
    );
}

#[test]
fn several_errors_are_all_reported() {
    let source = "tenancy:\n  mode: sharded\n\nentity Task:\n  id: uuid pk\n  owner_id: uuid\n  access:\n    read: ownr = current_user\n    reed: true\n";
    let found = errors(source);
    let positions: Vec<(usize, usize)> = found.iter().map(|(l, c, _)| (*l, *c)).collect();
    assert_eq!(positions, vec![(2, 9), (8, 11), (9, 5)], "{found:#?}");
}

#[test]
fn rendered_error_has_caret_under_the_offending_text() {
    let source = rule("read: ownr = current_user");
    let rendered = dnr_core::parse(&source)
        .unwrap_err()
        .render(&source, "tasks.dnr");
    let expected = "error: unknown field `ownr` in entity `Task`\n --> tasks.dnr:6:11\n  |\n6 |     read: ownr = current_user\n  |           ^^^^\n";
    assert_eq!(rendered, expected);
}

#[test]
fn errors_never_panic_on_arbitrary_bytes() {
    // Spot checks of odd input; the property test covers random text.
    for source in [
        "",
        "\n\n",
        "entity",
        "entity :",
        "entity T:\n  access:\n    read: (((((",
        "entity T:\n  x: enum[",
        "'",
        "tenancy:\n  mode:",
    ] {
        let _ = dnr_core::parse(source);
    }
}

/// A policy with a related entity for the `exists` errors: Task (line 1-6)
/// and Member (line 7-), with `rule` lines appended to Task's access block.
fn with_member(task_rule: &str, member_read: &str) -> String {
    format!(
        "entity Task:\n  id: uuid pk\n  owner_id: uuid\n  status: enum[todo,done]\n  access:\n    {task_rule}\nentity Member:\n  id: uuid pk\n  task_id: uuid\n  user_id: uuid\n  seats: int\n  access:\n    {member_read}\n"
    )
}

/// The whole rendered error, caret and all.
fn rendered(source: &str) -> String {
    dnr_core::parse(source)
        .unwrap_err()
        .render(source, "teams.dnr")
}

#[test]
fn exists_unknown_entity() {
    let source = with_member("read: exists Membr where task_id = this.id", "read: true");
    assert_eq!(
        rendered(&source),
        "error: `exists` names unknown entity `Membr`; entities are Task, Member\n --> teams.dnr:6:18\n  |\n6 |     read: exists Membr where task_id = this.id\n  |                  ^^^^^\n"
    );
}

#[test]
fn exists_without_where() {
    let source = with_member("read: exists Member task_id = this.id", "read: true");
    assert_eq!(
        rendered(&source),
        "error: expected `exists <Entity> where <condition>`\n --> teams.dnr:6:18\n  |\n6 |     read: exists Member task_id = this.id\n  |                  ^^^^^^\n"
    );
}

#[test]
fn this_outside_exists() {
    let source = with_member("read: this.owner_id = current_user", "read: true");
    assert_eq!(
        rendered(&source),
        "error: `this.owner_id` names the checked row inside `exists ... where`; outside it write `owner_id`\n --> teams.dnr:6:11\n  |\n6 |     read: this.owner_id = current_user\n  |           ^^^^^^^^^^^^^\n"
    );
}

#[test]
fn this_without_a_field() {
    one_error(
        &with_member("read: exists Member where task_id = this.'x'", "read: true"),
        6,
        46,
        "expected a field after `this.`",
    );
}

#[test]
fn exists_fields_resolve_in_the_related_entity() {
    // `owner_id` is Task's, not Member's: inside `exists` it is unknown.
    one_error(
        &with_member(
            "read: exists Member where owner_id = current_user",
            "read: true",
        ),
        6,
        31,
        "unknown field `owner_id` in entity `Member`",
    );
    // and `this.` names a field of the checked row, which must exist.
    one_error(
        &with_member(
            "read: exists Member where task_id = this.nope",
            "read: true",
        ),
        6,
        41,
        "unknown field `nope` in entity `Task`",
    );
}

#[test]
fn exists_type_mismatch_across_the_join() {
    let source = with_member(
        "read: exists Member where seats = this.owner_id",
        "read: true",
    );
    assert_eq!(
        rendered(&source),
        "error: field `seats` (int) cannot be compared with field `owner_id` (uuid)\n --> teams.dnr:6:31\n  |\n6 |     read: exists Member where seats = this.owner_id\n  |                               ^^^^^\n"
    );
}

#[test]
fn exists_cycle_between_read_rules_shows_both_spans() {
    let source = with_member(
        "read: exists Member where task_id = this.id",
        "read: exists Task where id = this.task_id",
    );
    let rendered = rendered(&source);
    // Both read rules lead back to their own entity: two errors, each with
    // the place the cycle closes.
    assert!(
        rendered.starts_with("error: `exists Member` in a rule of `Task` leads back to `Task` (Task -> Member -> Task): the related rows are those the context may read, so the rule would need `Task`'s own readable rows (PostgreSQL refuses such a policy as infinite recursion)\n --> teams.dnr:6:11\n  |\n6 |     read: exists Member where task_id = this.id\n  |           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\nnote: the cycle closes here\n  --> teams.dnr:13:11\n   |\n13 |     read: exists Task where id = this.task_id\n   |           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"),
        "{rendered}"
    );
    assert!(rendered.contains("error: `exists Task` in a rule of `Member` leads back to `Member` (Member -> Task -> Member)"), "{rendered}");
    // A rule needing its own entity is the shortest cycle.
    one_error(
        &with_member("read: exists Task where id = this.id", "read: true"),
        6,
        11,
        "Task -> Task",
    );
    one_error(
        &with_member("update: exists Task where id = this.id", "read: true"),
        6,
        13,
        "Task -> Task",
    );
}

#[test]
fn exists_leading_back_through_a_read_rule() {
    // Task's update rule reads Member, whose read rule reads Task: deciding
    // about a task would need the readable tasks (PostgreSQL: infinite
    // recursion in policy).
    let source = with_member(
        "update: exists Member where task_id = this.id",
        "read: exists Task where id = this.task_id",
    );
    let found = errors(&source);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].0, found[0].1), (6, 13));
    assert!(
        found[0].2.contains("Task -> Member -> Task"),
        "{}",
        found[0].2
    );
    // Without the way back, the same update rule is fine.
    assert!(dnr_core::parse(&with_member(
        "update: exists Member where task_id = this.id",
        "read: user_id = current_user",
    ))
    .is_ok());
}
