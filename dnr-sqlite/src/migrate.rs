//! `dnr_migrate(sql)`: schema changes on enforced tables.
//!
//! An enforced table's name is a view over its storage table, and SQLite
//! cannot alter a view (`Cannot add a column to a view`). A migration is
//! parsed with `sqlparser` (SQLite dialect) and checked statement by
//! statement; then, in one SAVEPOINT, DNR hands the enforced tables back
//! (each storage table takes its own name again, rows and indexes with it),
//! runs the migration exactly as written against real tables, and applies
//! the recorded policies again, so the views and triggers are rebuilt over
//! the new columns. Any failure rolls all of it back.
//!
//! Only schema changes are accepted: while the tables are handed back
//! nothing enforces them, so a data statement here would see every tenant's
//! rows. Data changes run as ordinary statements, under the policies.

use std::collections::BTreeSet;

use dnr_core::ast::Entity;
use dnr_core::check::tenant_column;
use dnr_core::PolicySet;
use sqlparser::ast::{AlterTableOperation, ObjectName, ObjectType, Statement};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::raw::Db;
use crate::{authorizer, policy, Error, Internal, State};

/// Names DNR keeps for itself: storage tables, triggers, the meta table.
const RESERVED_PREFIX: &str = "_dnr_";

/// Runs a migration. The caller is trusted: the SQL function refuses on a
/// locked connection, the Rust API (a host such as the npm package) may
/// migrate one.
pub(crate) fn migrate(db: Db, state: &State, sql: &str) -> Result<String, Error> {
    let unparsable = |e: &dyn std::fmt::Display| {
        Error::new(format!("dnr: dnr_migrate cannot parse the migration: {e}"))
    };
    let dialect = SQLiteDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize()
        .map_err(|e| unparsable(&e))?;
    // A storage table named anywhere, subqueries and view bodies included.
    if let Some(name) = tokens.iter().find_map(|token| match token {
        Token::Word(word) if word.value.to_ascii_lowercase().starts_with(RESERVED_PREFIX) => {
            Some(word.value.clone())
        }
        _ => None,
    }) {
        return Err(Error::new(format!(
            "dnr: dnr_migrate: `{name}` is DNR's own; migrations use the enforced names"
        )));
    }
    let titles = statement_titles(&tokens);
    let statements = Parser::new(&dialect)
        .with_tokens(tokens)
        .parse_statements()
        .map_err(|e| unparsable(&e))?;
    if statements.is_empty() {
        return Err(Error::new("dnr: dnr_migrate: the migration is empty"));
    }
    let recorded = policy::recorded(db, state)?;
    let enforced: Vec<&Entity> = recorded
        .as_ref()
        .map(|(_, set)| set.entities.iter().collect())
        .unwrap_or_default();
    for (index, statement) in statements.iter().enumerate() {
        let title = titles.get(index).map_or("this statement", String::as_str);
        let set = recorded.as_ref().map(|(_, set)| &**set);
        check_statement(statement, title, set, &enforced)
            .map_err(|message| Error::new(format!("dnr: dnr_migrate: {message}")))?;
    }

    db.exec("SAVEPOINT dnr_migrate")?;
    let outcome = (|| {
        let Some((source, set)) = &recorded else {
            return run(db, sql).map(|()| "no policies applied".to_string());
        };
        let bare = PolicySet {
            tenancy: set.tenancy.clone(),
            entities: Vec::new(),
        };
        policy::apply(db, state, &bare.to_string())?;
        // The host's own statements, checked above: a locked connection's
        // authorizer lets them through.
        let internal = Internal::enter(state);
        run(db, sql)?;
        drop(internal);
        policy::apply(db, state, source)
            .map_err(|e| Error::new(format!("{e} (after the migration; nothing changed)")))?;
        let count = set.entities.len();
        let noun = if count == 1 { "table" } else { "tables" };
        Ok(format!("enforcement rebuilt on {count} {noun}"))
    })();
    match outcome {
        Ok(summary) => {
            db.exec("RELEASE dnr_migrate")?;
            let count = statements.len();
            let noun = if count == 1 {
                "statement"
            } else {
                "statements"
            };
            Ok(format!("dnr: migrated {count} {noun}; {summary}"))
        }
        Err(error) => {
            let _ = db.exec("ROLLBACK TO dnr_migrate; RELEASE dnr_migrate");
            let _ = authorizer::refresh(db, state);
            Err(error)
        }
    }
}

fn run(db: Db, sql: &str) -> Result<(), Error> {
    db.exec(sql)
        .map_err(|e| Error::new(format!("dnr: migration failed, nothing changed: {e}")))
}

/// The last part of a possibly schema-qualified name, as SQLite matches it.
fn base_name(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|part| part.as_ident())
        .map(|ident| ident.value.to_ascii_lowercase())
        .unwrap_or_default()
}

fn enforced_entity<'a>(enforced: &[&'a Entity], name: &str) -> Option<&'a Entity> {
    enforced
        .iter()
        .copied()
        .find(|entity| entity.table.eq_ignore_ascii_case(name))
}

/// Each statement's first two words (`ALTER TABLE`, `UPDATE tasks`), to
/// name it in an error without printing the syntax tree.
fn statement_titles(tokens: &[Token]) -> Vec<String> {
    let mut titles = Vec::new();
    let mut words: Vec<&str> = Vec::new();
    for token in tokens {
        match token {
            Token::SemiColon => {
                if !words.is_empty() {
                    titles.push(words.join(" "));
                    words.clear();
                }
            }
            Token::Word(word) if words.len() < 2 => words.push(&word.value),
            Token::Whitespace(_) => {}
            _ if words.is_empty() => words.push("?"),
            _ => {}
        }
    }
    if !words.is_empty() {
        titles.push(words.join(" "));
    }
    titles
}

/// Refuses what the migration cannot do safely, naming the construct.
fn check_statement(
    statement: &Statement,
    title: &str,
    set: Option<&PolicySet>,
    enforced: &[&Entity],
) -> Result<(), String> {
    match statement {
        Statement::AlterTable(alter) => {
            let table = base_name(&alter.name);
            let Some(entity) = enforced_entity(enforced, &table) else {
                return Ok(());
            };
            let used = set
                .map(|set| policy_columns(set, entity))
                .unwrap_or_default();
            for operation in &alter.operations {
                match operation {
                    AlterTableOperation::AddColumn { .. } => {}
                    AlterTableOperation::DropColumn { column_names, .. } => {
                        for column in column_names {
                            refuse_policy_column(&used, &column.value, entity, "drop")?;
                        }
                    }
                    AlterTableOperation::RenameColumn {
                        old_column_name, ..
                    } => refuse_policy_column(&used, &old_column_name.value, entity, "rename")?,
                    AlterTableOperation::RenameTable { .. } => {
                        return Err(format!(
                            "cannot rename enforced table `{}`: its name is in the policy (entity `{}`); rename it there and apply",
                            entity.table, entity.name
                        ))
                    }
                    _ => {
                        return Err(format!(
                            "this `{title}` on enforced table `{}` is not supported; add, drop or rename a column",
                            entity.table
                        ))
                    }
                }
            }
            Ok(())
        }
        Statement::CreateIndex(_) | Statement::CreateView(_) => Ok(()),
        Statement::CreateTable(create) => {
            match enforced_entity(enforced, &base_name(&create.name)) {
                Some(entity) => Err(format!("table `{}` exists and is enforced", entity.table)),
                None => Ok(()),
            }
        }
        Statement::Drop {
            object_type, names, ..
        } => {
            if *object_type == ObjectType::Table {
                if let Some(entity) = names
                    .iter()
                    .find_map(|name| enforced_entity(enforced, &base_name(name)))
                {
                    return Err(format!(
                        "cannot drop enforced table `{}`: remove entity `{}` from the policy and apply first",
                        entity.table, entity.name
                    ));
                }
            }
            match object_type {
                ObjectType::Table | ObjectType::Index | ObjectType::View => Ok(()),
                _ => Err(format!("`{title}` is not supported")),
            }
        }
        Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) | Statement::Query(_) => {
            Err(format!(
                "`{title}` is a data statement; dnr_migrate runs schema changes only (run data changes as ordinary statements, under the policies)"
            ))
        }
        _ => Err(format!(
            "`{title}` is not supported; dnr_migrate runs ALTER TABLE, CREATE/DROP INDEX, CREATE/DROP TABLE and CREATE/DROP VIEW"
        )),
    }
}

fn refuse_policy_column(
    used: &BTreeSet<String>,
    column: &str,
    entity: &Entity,
    what: &str,
) -> Result<(), String> {
    if used.contains(&column.to_ascii_lowercase()) {
        return Err(format!(
            "cannot {what} column `{column}` of enforced table `{}`: entity `{}` declares or uses it; change the policy and apply first",
            entity.table, entity.name
        ));
    }
    Ok(())
}

/// Columns the policy needs: declared fields, the tenant column and every
/// field a rule names (lowercase, as SQLite matches them).
fn policy_columns(set: &PolicySet, entity: &Entity) -> BTreeSet<String> {
    let mut columns: BTreeSet<String> = entity
        .fields
        .iter()
        .map(|field| field.name.to_ascii_lowercase())
        .collect();
    if let Some(column) = tenant_column(set, entity) {
        columns.insert(column.to_ascii_lowercase());
    }
    for rule in &entity.rules {
        for field in rule.condition.fields() {
            columns.insert(field.to_ascii_lowercase());
        }
    }
    columns
}

