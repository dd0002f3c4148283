//! `dnr_migrate(sql)`: schema changes on enforced tables.
//!
//! An enforced table's name is a view over its storage table, and SQLite
//! cannot alter a view (`Cannot add a column to a view`). A migration is
//! split into statements by sqlparser's tokenizer with SQLite's lexical
//! rules (`read.rs`), each statement is classified by its leading words and
//! passes the rewriter's lexical gate (no form SQLite reads otherwise, no
//! name of DNR's own); then, in one SAVEPOINT, DNR hands the
//! enforced tables back (each storage table takes its own name again, rows
//! and indexes with it), runs the migration exactly as written against real
//! tables, and applies the recorded policies again, so the views and
//! triggers are rebuilt over the new columns. Any failure rolls all of it
//! back; SQLite itself reports syntax errors when the statements run.
//!
//! Only schema changes are accepted: while the tables are handed back
//! nothing enforces them, so a statement that reads or writes rows here
//! (`UPDATE`, `CREATE TABLE ... AS SELECT`) would see every tenant's rows.
//! Data changes run as ordinary statements, under the policies.
//!

use std::collections::BTreeSet;

use dnr_core::ast::Entity;
use dnr_core::check::tenant_column;
use dnr_core::PolicySet;

use sqlparser::tokenizer::Token;

use crate::raw::Db;
use crate::read::{self, Piece};
use crate::{authorizer, policy, Error, Internal, State};

/// Runs a migration. The caller is trusted: the SQL function refuses on a
/// locked connection, the Rust API (a host such as the npm package) may
/// migrate one.
pub(crate) fn migrate(db: Db, state: &State, sql: &str) -> Result<String, Error> {
    let cannot_read = |e: Error| {
        Error::new(format!(
            "dnr: dnr_migrate cannot read the migration: {}",
            e.message().trim_start_matches("dnr: ")
        ))
    };
    let pieces = read::statements(sql).map_err(cannot_read)?;
    let statements: Vec<Words<'_>> = pieces.iter().map(words).collect();
    if statements.is_empty() {
        return Err(Error::new("dnr: dnr_migrate: the migration is empty"));
    }
    let recorded = policy::recorded(db, state)?;
    let set = recorded.as_ref().map(|(_, set)| &**set);
    for (piece, statement) in pieces.iter().zip(&statements) {
        // A storage table named anywhere, subqueries and view bodies
        // included, or a form SQLite reads otherwise than DNR.
        read::gate(piece).map_err(|refusal| {
            let hint = match refusal {
                read::Refusal::OwnName(_) => "migrations use the enforced names",
                read::Refusal::ReadApart { .. } => "write it as SQLite reads it plainly",
            };
            Error::new(format!("dnr: dnr_migrate: {refusal}; {hint}"))
        })?;
        check_statement(statement, set)
            .map_err(|message| Error::new(format!("dnr: dnr_migrate: {message}")))?;
    }

    db.exec("SAVEPOINT dnr_migrate")?;
    let outcome = (|| {
        let Some((source, set)) = &recorded else {
            return run(db, &pieces).map(|()| "no policies applied".to_string());
        };
        let bare = PolicySet {
            tenancy: set.tenancy.clone(),
            entities: Vec::new(),
        };
        policy::apply(db, state, &bare.to_string())?;
        // The host's own statements, checked above: a locked connection's
        // authorizer lets them through.
        let internal = Internal::enter(state);
        run(db, &pieces)?;
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

/// Runs each statement as SQLite reads it, one at a time: a statement
/// SQLite would read as more than one is refused, not cut short.
fn run(db: Db, pieces: &[Piece<'_>]) -> Result<(), Error> {
    pieces.iter().try_for_each(|piece| {
        db.exec_one(piece.text)
            .map_err(|e| Error::new(format!("dnr: migration failed, nothing changed: {e}")))
    })
}

/// One statement's tokens, without whitespace and comments.
type Words<'t> = Vec<&'t Token>;

fn words<'t>(piece: &'t Piece<'_>) -> Words<'t> {
    piece
        .tokens
        .iter()
        .map(|lexeme| &lexeme.token.token)
        .filter(|token| !matches!(token, Token::Whitespace(_)))
        .collect()
}

fn word_of(token: &Token) -> Option<String> {
    match token {
        Token::Word(word) => Some(word.value.to_ascii_lowercase()),
        _ => None,
    }
}

/// The word at `index`, lowercase, if that token is a word.
fn word(words: &Words, index: usize) -> Option<String> {
    words.get(index).and_then(|token| word_of(token))
}

fn is_word(words: &Words, index: usize, expected: &str) -> bool {
    word(words, index).as_deref() == Some(expected)
}

/// A possibly schema-qualified name starting at `index`: its last part and
/// the index after it.
fn name_at(words: &Words, index: usize) -> Option<(String, usize)> {
    let first = word(words, index)?;
    if matches!(words.get(index + 1), Some(Token::Period)) {
        return Some((word(words, index + 2)?, index + 3));
    }
    Some((first, index + 1))
}

/// The statement's first two words (`UPDATE tasks`), to name it in an
/// error: the first as a keyword, the second as written.
fn title(words: &Words) -> String {
    let text = |token: &Token| match token {
        Token::Word(word) => word.value.clone(),
        other => other.to_string(),
    };
    match words.as_slice() {
        [] => String::new(),
        [first] => text(first).to_uppercase(),
        [first, second, ..] => format!("{} {}", text(first).to_uppercase(), text(second)),
    }
}

/// Refuses what the migration cannot do safely, naming the construct.
fn check_statement(words: &Words, set: Option<&PolicySet>) -> Result<(), String> {
    let enforced = |name: &str| {
        set.and_then(|set| {
            set.entities
                .iter()
                .find(|entity| entity.table.eq_ignore_ascii_case(name))
        })
    };
    let title = title(words);
    let unsupported = || {
        Err(format!(
            "`{title}` is not supported; dnr_migrate runs ALTER TABLE, CREATE/DROP INDEX, CREATE/DROP TABLE and CREATE/DROP VIEW"
        ))
    };
    let data = || {
        Err(format!(
            "`{title}` reads or writes rows; dnr_migrate runs schema changes only (run data changes as ordinary statements, under the policies)"
        ))
    };
    match word(words, 0).as_deref() {
        Some("alter") if is_word(words, 1, "table") => {
            let Some((table, next)) = name_at(words, 2) else {
                return unsupported();
            };
            let Some(entity) = enforced(&table) else {
                return Ok(());
            };
            let used = set
                .map(|set| policy_columns(set, entity))
                .unwrap_or_default();
            let column_at = |index: usize| {
                if is_word(words, index, "column") {
                    word(words, index + 1)
                } else {
                    word(words, index)
                }
            };
            match word(words, next).as_deref() {
                Some("add") => Ok(()),
                Some("drop") => match column_at(next + 1) {
                    Some(column) => refuse_policy_column(&used, &column, entity, "drop"),
                    None => unsupported(),
                },
                Some("rename") if is_word(words, next + 1, "to") => Err(format!(
                    "cannot rename enforced table `{}`: its name is in the policy (entity `{}`); rename it there and apply",
                    entity.table, entity.name
                )),
                Some("rename") => match column_at(next + 1) {
                    Some(column) => refuse_policy_column(&used, &column, entity, "rename"),
                    None => unsupported(),
                },
                _ => Err(format!(
                    "this `ALTER TABLE` on enforced table `{}` is not supported; add, drop or rename a column",
                    entity.table
                )),
            }
        }
        Some("create") => {
            let mut kind = 1;
            while matches!(
                word(words, kind).as_deref(),
                Some("unique" | "temp" | "temporary")
            ) {
                kind += 1;
            }
            match word(words, kind).as_deref() {
                Some("index" | "view") => Ok(()),
                Some("table") => {
                    if words
                        .iter()
                        .any(|t| word_of(t).as_deref() == Some("select"))
                    {
                        return data();
                    }
                    let mut at = kind + 1;
                    if is_word(words, at, "if") {
                        at += 3;
                    }
                    match name_at(words, at).and_then(|(name, _)| enforced(&name)) {
                        Some(entity) => {
                            Err(format!("table `{}` exists and is enforced", entity.table))
                        }
                        None => Ok(()),
                    }
                }
                _ => unsupported(),
            }
        }
        Some("drop") => match word(words, 1).as_deref() {
            Some("index" | "view") => Ok(()),
            Some("table") => {
                let at = if is_word(words, 2, "if") { 4 } else { 2 };
                match name_at(words, at).and_then(|(name, _)| enforced(&name)) {
                    Some(entity) => Err(format!(
                        "cannot drop enforced table `{}`: remove entity `{}` from the policy and apply first",
                        entity.table, entity.name
                    )),
                    None => Ok(()),
                }
            }
            _ => unsupported(),
        },
        Some("insert" | "replace" | "update" | "delete" | "select" | "with" | "values") => data(),
        _ => unsupported(),
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
