//! The statement rewriter: how a DNR connection (the npm `Database`, the
//! Rust [`crate::Connection`], `dnr_exec`) runs a write on an enforced
//! table as a write on its storage table.
//!
//! SQLite cannot upsert a view, does not count the rows an INSTEAD OF
//! trigger writes and answers RETURNING from the values given, not those
//! stored. So `INSERT`, `UPDATE` and `DELETE` naming an enforced table are
//! rewritten, on sqlparser's syntax tree, to write its storage table: only
//! the written target is renamed (`UPDATE tasks` → `UPDATE
//! main."_dnr_tasks" AS "tasks"`); every other reference to an enforced
//! name stays the filtered view. The tenant is filled and uuids normalized
//! in the tree, an inserted row carries its checks (`dnr_checked`, compiled
//! as for the view's insert trigger), the rows the context may touch are
//! the first term of an UPDATE's or DELETE's WHERE, and the storage
//! table's BEFORE triggers check every row updated or deleted.
//!
//! What runs is printed from the tree, never spliced from the user's text;
//! [`crate::front`] then has SQLite read the printed text back before it
//! runs with the lock's permission to reach storage.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use dnr_core::compile::quote::{ident, literal};
use dnr_core::compile::sqlite::{
    allowed_rows, checked_value, insert_refusal, next_key, numbered_column, storage_table,
    SqliteTable,
};
use dnr_core::{Operation, PolicySet};
use sqlparser::ast::{
    AssignmentTarget, ConflictTarget, Expr, FromTable, Ident, Insert, ObjectName, ObjectNamePart,
    OnConflict, OnConflictAction, OnInsert, Query, SetExpr, SqliteOnConflict, Statement,
    TableAlias, TableFactor, TableObject, TableWithJoins, UnaryOperator, Value, VisitMut,
    VisitorMut,
};

use sqlparser::tokenizer::Location;

use crate::read::{self, parse_own, parse_own_expr, Piece};
use crate::{Error, WriteMode};

/// What an enforced table looks like to the rewriter.
#[derive(Debug, Clone)]
pub(crate) struct TableInfo {
    /// The applied policies, and the index of this table's entity in them.
    pub policy: Arc<PolicySet>,
    pub entity: usize,
    pub storage: String,
    /// Storage columns, in order (the view's columns).
    pub columns: Vec<String>,
    /// Lowercase names of the uuid columns, which DNR stores canonical.
    pub uuid_columns: BTreeSet<String>,
    /// The tenant column, for a tenant-scoped table.
    pub tenant: Option<String>,
    /// DEFAULT expressions by lowercase column name: an insert's NULL
    /// takes them, as through the view and in PostgreSQL.
    pub defaults: BTreeMap<String, String>,
    /// A unique constraint of the table resolves conflicts by REPLACE.
    pub replaces: bool,
    /// The storage table as the compiler reads it (columns, unique keys):
    /// an INSERT's checks are compiled against it.
    pub schema: SqliteTable,
}

/// How the host runs one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// As written, without any access to storage: it writes no enforced
    /// table.
    AsIs(String),
    /// As written, without any access to storage, because sqlparser cannot
    /// read it (`why`): SQLite's views and the lock's virtual tables
    /// enforce the policies on it, as on any SQL.
    Unread { sql: String, why: String },
    /// A write on an enforced table, rewritten onto its storage.
    Write(Arc<Rewritten>),
    /// A schema change on an enforced table: run it through `migrate`.
    Migrate(String),
}

/// A write rewritten onto storage: the printed statement, the write mode
/// its rows need, and what SQLite must read in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub sql: String,
    pub(crate) mode: WriteMode,
    pub(crate) access: StorageAccess,
    /// The parameters SQLite must find in `sql`, by index from 1: their
    /// names as written (anonymous `?` numbered as SQLite numbers them).
    pub(crate) parameters: Vec<Option<String>>,
}

/// The storage tables a rewritten statement touches, lowercase: the one it
/// writes, and those its `exists` conditions read (DNR's own conditions: the
/// statement itself can name no `_dnr_` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StorageAccess {
    pub target: String,
    pub reads: Vec<String>,
}

/// Names DNR substitutes the user's expressions for in its own SQL (the
/// user's SQL can hold no `_dnr_` name: see [`read::gate`]).
const ARG: &str = "_dnr_arg_";

/// The CTE a rewritten INSERT evaluates its rows in (the user's query).
pub(crate) const ROWS_CTE: &str = "_dnr_rows";

/// The CTE that numbers those rows, for a table that numbers its key
/// (`next_key`), and the column that holds the number (from 0).
const NUMBERED_CTE: &str = "_dnr_numbered";
const ROW_NUMBER: &str = "_dnr_n";

fn refuse(why: impl std::fmt::Display) -> Error {
    Error::new(format!("dnr: cannot rewrite this statement: {why}"))
}

/// Plans one statement.
pub(crate) fn plan(piece: &Piece<'_>, tables: &BTreeMap<String, TableInfo>) -> Result<Plan, Error> {
    let as_is = || Ok(Plan::AsIs(piece.text.to_string()));
    let statement = match &piece.statement {
        Ok(statement) => statement,
        Err(why) => {
            return Ok(Plan::Unread {
                sql: piece.text.to_string(),
                why: why.clone(),
            })
        }
    };
    let enforced = |name: &ObjectName| target_name(name).is_some_and(|n| tables.contains_key(&n));
    match statement {
        Statement::AlterTable { name, .. } if enforced(name) => {
            return Ok(Plan::Migrate(piece.text.to_string()))
        }
        Statement::CreateIndex(index) if enforced(&index.table_name) => {
            return Ok(Plan::Migrate(piece.text.to_string()))
        }
        Statement::Drop {
            object_type: sqlparser::ast::ObjectType::Index,
            ..
        } => return Ok(Plan::Migrate(piece.text.to_string())),
        _ => {}
    }
    let (with, write) = match statement {
        Statement::Query(query) => match &*query.body {
            SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) => {
                if query.order_by.is_some() || query.limit_clause.is_some() {
                    return Err(refuse("ORDER BY or LIMIT after a write"));
                }
                (query.with.clone(), s)
            }
            _ => return as_is(),
        },
        other => (None, other),
    };
    let Some(name) = written_table(write) else {
        return as_is();
    };
    let Some(table) = tables.get(&name) else {
        return as_is();
    };
    read::gate(piece).map_err(refuse)?;
    let writer = Writer { table };
    let (statement, mode) = match write {
        Statement::Insert(insert) => writer.insert(with, insert)?,
        Statement::Update { .. } => writer.update(with, write)?,
        Statement::Delete(_) => writer.delete(with, write)?,
        _ => return as_is(),
    };
    let mut statement = statement;
    if let ControlFlow::Break(error) = statement.visit(&mut SpellQuotes) {
        return Err(error);
    }
    let parameters = number_parameters(&mut statement)?;
    let sql = statement.to_string();
    // The printed text must read back as the same tree.
    match read::statements(&sql)?.as_slice() {
        [again] if again.statement.as_ref().ok() == Some(&statement) => {}
        _ => return Err(refuse("its printed form reads differently")),
    }
    let entity = &table.policy.entities[table.entity];
    let reads = table
        .policy
        .related_entities(&entity.name)
        .iter()
        .map(|related| storage_table(&related.table).to_ascii_lowercase())
        .collect();
    Ok(Plan::Write(Arc::new(Rewritten {
        sql,
        mode,
        access: StorageAccess {
            target: table.storage.to_ascii_lowercase(),
            reads,
        },
        parameters,
    })))
}

/// The lowercase table name of `name` when it names a table of the main
/// database (`t` or `main.t`); attached and `temp` tables have no policies
/// here (`temp.` is a locked connection's stand-in).
fn target_name(name: &ObjectName) -> Option<String> {
    let part = |p: &ObjectNamePart| match p {
        ObjectNamePart::Identifier(ident) => Some(ident.value.clone()),
        ObjectNamePart::Function(_) => None,
    };
    match name.0.as_slice() {
        [table] => part(table).map(|t| t.to_ascii_lowercase()),
        [schema, table] if part(schema)?.eq_ignore_ascii_case("main") => {
            part(table).map(|t| t.to_ascii_lowercase())
        }
        _ => None,
    }
}

/// The table a write statement writes, lowercase.
fn written_table(statement: &Statement) -> Option<String> {
    match statement {
        Statement::Insert(Insert {
            table: TableObject::TableName(name),
            ..
        }) => target_name(name),
        Statement::Update { table, .. } => match &table.relation {
            TableFactor::Table { name, .. } => target_name(name),
            _ => None,
        },
        Statement::Delete(delete) => match &delete.from {
            FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from) => {
                match from.as_slice() {
                    [TableWithJoins {
                        relation: TableFactor::Table { name, .. },
                        ..
                    }] => target_name(name),
                    _ => None,
                }
            }
        },
        _ => None,
    }
}

/// The name a statement knows its target by (its alias, or its own name).
fn written_as(name: &ObjectName, alias: Option<&TableAlias>) -> String {
    match alias {
        Some(alias) => alias.name.value.clone(),
        None => match name.0.last() {
            Some(ObjectNamePart::Identifier(ident)) => ident.value.clone(),
            _ => String::new(),
        },
    }
}

/// Replaces DNR's `_dnr_arg_N` names with the given expressions.
struct Substitute<'a> {
    args: &'a [Expr],
}

impl VisitorMut for Substitute<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Identifier(name) = expr {
            if let Some(arg) = name
                .value
                .strip_prefix(ARG)
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| self.args.get(n))
            {
                *expr = grouped(arg.clone());
            }
        }
        ControlFlow::Continue(())
    }
}

/// `expr` as one operand wherever it is put: parenthesized unless it is a
/// literal or a parameter.
fn grouped(expr: Expr) -> Expr {
    if is_atom(&expr) || matches!(expr, Expr::Nested(_)) {
        expr
    } else {
        Expr::Nested(Box::new(expr))
    }
}

/// DNR's SQL `template` (an expression) with `_dnr_arg_N` standing for
/// `args[N]`.
fn expr_with(template: &str, args: &[Expr]) -> Result<Expr, Error> {
    let mut expr = parse_own_expr(template)?;
    let _ = expr.visit(&mut Substitute { args });
    Ok(expr)
}

fn arg(n: usize) -> String {
    format!("{ARG}{n}")
}

/// Whether `expr` is a value an INSERT may repeat in its checks: the same
/// each time it is evaluated (a parameter, a literal), so that the row
/// checked is the row stored.
fn is_atom(expr: &Expr) -> bool {
    match expr {
        Expr::Value(value) => matches!(
            value.value,
            Value::Number(..)
                | Value::SingleQuotedString(_)
                | Value::Placeholder(_)
                | Value::Null
                | Value::Boolean(_)
        ),
        Expr::UnaryOp {
            op: UnaryOperator::Minus | UnaryOperator::Plus,
            expr,
        } => matches!(
            expr.as_ref(),
            Expr::Value(v) if matches!(v.value, Value::Number(..))
        ),
        _ => false,
    }
}

struct Writer<'a> {
    table: &'a TableInfo,
}

impl Writer<'_> {
    fn storage_name(&self) -> ObjectName {
        ObjectName(vec![
            ObjectNamePart::Identifier(Ident::new("main")),
            ObjectNamePart::Identifier(Ident::with_quote('"', &self.table.storage)),
        ])
    }

    /// The target's rows the context may `op`, over `qualifier`.
    fn allowed(&self, op: Operation, qualifier: &str) -> Result<Expr, Error> {
        let entity = &self.table.policy.entities[self.table.entity];
        parse_own_expr(&allowed_rows(
            &self.table.policy,
            entity,
            op,
            &ident(qualifier),
        ))
    }

    fn is_uuid(&self, column: &str) -> bool {
        self.table
            .uuid_columns
            .contains(&column.to_ascii_lowercase())
    }

    fn is_tenant(&self, column: &str) -> bool {
        self.table
            .tenant
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(column))
    }

    fn mode(&self, or: Option<SqliteOnConflict>, upsert: bool) -> WriteMode {
        let cannot_replace = match or {
            Some(SqliteOnConflict::Replace) => false,
            Some(SqliteOnConflict::Ignore) => true,
            // ABORT and the like: unless a unique constraint of the table
            // itself resolves conflicts by REPLACE.
            _ => !self.table.replaces,
        };
        WriteMode {
            cannot_replace,
            upsert,
        }
    }

    /// A SET list with the values of uuid (and tenant) columns normalized.
    fn assignments(&self, assignments: &mut [sqlparser::ast::Assignment]) -> Result<(), Error> {
        let last = |name: &ObjectName| match name.0.last() {
            Some(ObjectNamePart::Identifier(ident)) => ident.value.clone(),
            _ => String::new(),
        };
        for assignment in assignments {
            match &assignment.target {
                AssignmentTarget::ColumnName(name) => {
                    let column = last(name);
                    if self.is_uuid(&column) || self.is_tenant(&column) {
                        let value = assignment.value.clone();
                        assignment.value = expr_with(&format!("dnr_uuid({})", arg(0)), &[value])?;
                    }
                }
                AssignmentTarget::Tuple(names) => {
                    if names.iter().any(|n| {
                        let column = last(n);
                        self.is_uuid(&column) || self.is_tenant(&column)
                    }) {
                        return Err(refuse(format!(
                            "assign uuid columns of an enforced table one at a time (`column = value`), not `{}`",
                            assignment.target
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// `allowed AND (selection)`: the rows the context may `op` first, so
    /// that SQLite (which evaluates the terms it does not search an index
    /// with in order) never evaluates the statement's own condition on a
    /// row the context may not touch (no error or side effect of it can
    /// tell anything about one).
    fn fenced(
        &self,
        op: Operation,
        qualifier: &str,
        selection: Option<Expr>,
    ) -> Result<Expr, Error> {
        let allowed = self.allowed(op, qualifier)?;
        Ok(match selection {
            Some(condition) => Expr::BinaryOp {
                left: Box::new(allowed),
                op: sqlparser::ast::BinaryOperator::And,
                right: Box::new(Expr::Nested(Box::new(condition))),
            },
            None => allowed,
        })
    }

    fn with_body(with: Option<sqlparser::ast::With>, body: Statement) -> Statement {
        match with {
            None => body,
            Some(with) => {
                let body = match body {
                    Statement::Insert(_) => SetExpr::Insert(body),
                    Statement::Update { .. } => SetExpr::Update(body),
                    _ => SetExpr::Delete(body),
                };
                Statement::Query(Box::new(Query {
                    with: Some(with),
                    body: Box::new(body),
                    order_by: None,
                    limit_clause: None,
                    fetch: None,
                    locks: Vec::new(),
                    for_clause: None,
                    settings: None,
                    format_clause: None,
                    pipe_operators: Vec::new(),
                }))
            }
        }
    }

    fn update(
        &self,
        with: Option<sqlparser::ast::With>,
        statement: &Statement,
    ) -> Result<(Statement, WriteMode), Error> {
        let mut statement = statement.clone();
        let Statement::Update {
            table,
            assignments,
            selection,
            or,
            limit,
            ..
        } = &mut statement
        else {
            return Err(refuse("not an UPDATE"));
        };
        if limit.is_some() || !table.joins.is_empty() {
            return Err(refuse("UPDATE with LIMIT or joins"));
        }
        let TableFactor::Table { name, alias, .. } = &mut table.relation else {
            return Err(refuse("not an UPDATE of a table"));
        };
        let qualifier = written_as(name, alias.as_ref());
        *name = self.storage_name();
        *alias = Some(TableAlias {
            name: Ident::with_quote('"', &qualifier),
            columns: Vec::new(),
        });
        self.assignments(assignments)?;
        *selection = Some(self.fenced(Operation::Update, &qualifier, selection.take())?);
        let mode = self.mode(*or, false);
        Ok((Self::with_body(with, statement), mode))
    }

    fn delete(
        &self,
        with: Option<sqlparser::ast::With>,
        statement: &Statement,
    ) -> Result<(Statement, WriteMode), Error> {
        let mut statement = statement.clone();
        let Statement::Delete(delete) = &mut statement else {
            return Err(refuse("not a DELETE"));
        };
        if !delete.tables.is_empty() || delete.using.is_some() {
            return Err(refuse("DELETE of several tables or with USING"));
        }
        let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &mut delete.from;
        let [TableWithJoins { relation, joins }] = from.as_mut_slice() else {
            return Err(refuse("DELETE of several tables"));
        };
        if !joins.is_empty() {
            return Err(refuse("DELETE with joins"));
        }
        let TableFactor::Table { name, alias, .. } = relation else {
            return Err(refuse("not a DELETE from a table"));
        };
        let qualifier = written_as(name, alias.as_ref());
        *name = self.storage_name();
        *alias = Some(TableAlias {
            name: Ident::with_quote('"', &qualifier),
            columns: Vec::new(),
        });
        delete.selection =
            Some(self.fenced(Operation::Delete, &qualifier, delete.selection.take())?);
        Ok((Self::with_body(with, statement), WriteMode::default()))
    }

    /// The value stored for `column` from the expression given for it, if
    /// any (DNR's SQL text, with `given` standing for that expression): the
    /// tenant filled from the context, uuids normalized, NULL given the
    /// column's default (as through the view and in PostgreSQL).
    fn stored(&self, column: &str, given: Option<&str>) -> String {
        let default = self.table.defaults.get(&column.to_ascii_lowercase());
        match given {
            Some(expr) if self.is_tenant(column) => {
                format!("coalesce(dnr_uuid({expr}), dnr_tenant())")
            }
            Some(expr) => {
                let value = if self.is_uuid(column) {
                    format!("dnr_uuid({expr})")
                } else {
                    expr.to_string()
                };
                match default {
                    Some(default) => format!("coalesce({value}, {default})"),
                    None => value,
                }
            }
            None if self.is_tenant(column) => "dnr_tenant()".into(),
            None => default.cloned().unwrap_or_else(|| "NULL".into()),
        }
    }

    /// The column DNR numbers when an insert leaves it out
    /// ([`numbered_column`]).
    fn numbered(&self) -> Option<&str> {
        let entity = &self.table.policy.entities[self.table.entity];
        numbered_column(&self.table.policy, entity, &self.table.schema)
    }

    /// The value stored for `column` of a row whose `columns` are given by
    /// `exprs`: [`Self::stored`], and for the numbered column its key when
    /// none is given (the `offset`th row of the statement, SQL text).
    fn row_value(
        &self,
        column: &str,
        columns: &[String],
        exprs: &[String],
        offset: Option<&str>,
    ) -> String {
        let given = |name: &str| {
            columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(name))
                .and_then(|i| exprs.get(i))
                .map(String::as_str)
        };
        let stored = self.stored(column, given(column));
        match (self.numbered(), self.table.tenant.as_deref()) {
            (Some(numbered), Some(tenant)) if numbered.eq_ignore_ascii_case(column) => {
                let next = self.next_key(numbered, tenant, columns, exprs, offset);
                match given(column) {
                    Some(_) => format!("coalesce({stored}, {next})"),
                    None => next,
                }
            }
            _ => stored,
        }
    }

    fn next_key(
        &self,
        numbered: &str,
        tenant: &str,
        columns: &[String],
        exprs: &[String],
        offset: Option<&str>,
    ) -> String {
        let given = columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(tenant))
            .and_then(|i| exprs.get(i))
            .map(String::as_str);
        next_key(
            &self.table.storage,
            numbered,
            tenant,
            &self.stored(tenant, given),
            offset,
        )
    }

    /// The checks of one inserted row whose `columns` are given by `exprs`
    /// (DNR's SQL text; the others take their defaults), as DNR compiles
    /// them for the view's insert trigger.
    fn refusal(
        &self,
        columns: &[String],
        exprs: &[String],
        offset: Option<&str>,
    ) -> Result<String, Error> {
        let new = |name: &str| self.row_value(name, columns, exprs, offset);
        let entity = &self.table.policy.entities[self.table.entity];
        insert_refusal(&self.table.policy, entity, Some(&self.table.schema), &new)
            .map_err(|e| Error::new(format!("dnr: {e}")))
    }

    /// The columns an INSERT of `columns` writes in storage: those, the
    /// tenant when not given, and the numbered column when not given and
    /// then `rowid` (the numbered row's rowid is its key, see `next_key`).
    fn target_columns(&self, columns: &[String]) -> Vec<String> {
        let mut target: Vec<String> = columns.to_vec();
        let missing = |name: &str| !columns.iter().any(|c| c.eq_ignore_ascii_case(name));
        if let Some(tenant) = self.table.tenant.as_deref().filter(|t| missing(t)) {
            target.push(tenant.to_string());
        }
        if let Some(numbered) = self.numbered() {
            if missing(numbered) {
                target.push(numbered.to_string());
            }
            target.push("rowid".into());
        }
        target
    }

    /// One row's stored values for [`Self::target_columns`], the last
    /// carrying the row's checks: DNR's SQL text over `exprs`.
    fn checked_row(
        &self,
        columns: &[String],
        exprs: &[String],
        offset: Option<&str>,
    ) -> Result<Vec<String>, Error> {
        let mut values: Vec<String> = Vec::new();
        for target in self.target_columns(columns) {
            values.push(match self.numbered() {
                Some(numbered) if target == "rowid" => {
                    let key = self.row_value(numbered, columns, exprs, offset);
                    let given = columns
                        .iter()
                        .position(|c| c.eq_ignore_ascii_case(numbered))
                        .and_then(|i| exprs.get(i));
                    match given {
                        Some(expr) => format!(
                            "CASE WHEN {} IS NULL THEN {key} END",
                            self.stored(numbered, Some(expr))
                        ),
                        None => key,
                    }
                }
                _ => self.row_value(&target, columns, exprs, offset),
            });
        }
        let refusal = self.refusal(columns, exprs, offset)?;
        if let Some(last) = values.last_mut() {
            *last = checked_value(last, &refusal);
        }
        Ok(values)
    }

    /// The conflict target `ON CONFLICT (id)` of a table whose keys are
    /// per tenant (`PRIMARY KEY (tenant_id, id)`) as SQLite needs it,
    /// `(tenant_id, id)`: ORMs name the key they declared (Drizzle's
    /// `onConflictDoUpdate({ target: id })`). Left as written when a key
    /// of the table has exactly its columns (a table-wide key of an
    /// earlier apply, or the user's), or when no per-tenant key does.
    fn conflict_target(&self, target: Option<ConflictTarget>) -> Option<ConflictTarget> {
        let Some(ConflictTarget::Columns(columns)) = target else {
            return target;
        };
        let lower = |names: &mut dyn Iterator<Item = &str>| -> BTreeSet<String> {
            names.map(str::to_ascii_lowercase).collect()
        };
        let named = lower(&mut columns.iter().map(|c| c.value.as_str()));
        let keys: Vec<BTreeSet<String>> = self
            .table
            .schema
            .unique_keys
            .iter()
            .map(|key| lower(&mut key.iter().map(String::as_str)))
            .collect();
        let widened = match self.table.tenant.as_deref() {
            Some(tenant) if !named.contains(&tenant.to_ascii_lowercase()) => {
                let mut widened = named.clone();
                widened.insert(tenant.to_ascii_lowercase());
                (!keys.contains(&named) && keys.contains(&widened)).then_some(tenant)
            }
            _ => None,
        };
        Some(ConflictTarget::Columns(match widened {
            Some(tenant) => std::iter::once(Ident::with_quote('"', tenant))
                .chain(columns)
                .collect(),
            None => columns,
        }))
    }

    /// The upsert clause with each DO UPDATE's assignments normalized and
    /// the conflicting row required to be one the context may update
    /// before anything of the clause is evaluated on it (its WHERE and SET
    /// would otherwise be an oracle on another tenant's row): an error, as
    /// PostgreSQL raises for it.
    fn upsert(
        &self,
        on: Option<OnInsert>,
        qualifier: &str,
    ) -> Result<(Option<OnInsert>, bool), Error> {
        match on {
            None => Ok((None, false)),
            Some(OnInsert::OnConflict(OnConflict {
                conflict_target,
                action: OnConflictAction::DoUpdate(mut update),
            })) => {
                let conflict_target = self.conflict_target(conflict_target);
                self.assignments(&mut update.assignments)?;
                let entity = &self.table.policy.entities[self.table.entity];
                let message = literal(&format!(
                    "dnr: update on `{}` refused (ON CONFLICT DO UPDATE): the conflicting row is not one this context may update",
                    entity.name
                ));
                let allowed = allowed_rows(
                    &self.table.policy,
                    entity,
                    Operation::Update,
                    &ident(qualifier),
                );
                let check = parse_own_expr(&format!("dnr_conflict({allowed}, {message})"))?;
                update.selection = Some(match update.selection.take() {
                    Some(condition) => Expr::BinaryOp {
                        left: Box::new(check),
                        op: sqlparser::ast::BinaryOperator::And,
                        right: Box::new(Expr::Nested(Box::new(condition))),
                    },
                    None => check,
                });
                Ok((
                    Some(OnInsert::OnConflict(OnConflict {
                        conflict_target,
                        action: OnConflictAction::DoUpdate(update),
                    })),
                    true,
                ))
            }
            Some(OnInsert::OnConflict(OnConflict {
                conflict_target,
                action,
            })) => Ok((
                Some(OnInsert::OnConflict(OnConflict {
                    conflict_target: self.conflict_target(conflict_target),
                    action,
                })),
                false,
            )),
            Some(_) => Err(refuse("ON DUPLICATE KEY is MySQL's")),
        }
    }

    /// An INSERT onto storage. Its rows carry their checks
    /// (`dnr_checked`): one VALUES row of parameters and literals in place,
    /// any other rows (several, expressions, a query) after a MATERIALIZED
    /// CTE has evaluated each once, so that the row checked is the row
    /// stored.
    fn insert(
        &self,
        with: Option<sqlparser::ast::With>,
        insert: &Insert,
    ) -> Result<(Statement, WriteMode), Error> {
        if insert.ignore
            || insert.overwrite
            || insert.has_table_keyword
            || insert.priority.is_some()
            || insert.insert_alias.is_some()
            || insert.settings.is_some()
            || insert.format_clause.is_some()
            || insert.partitioned.is_some()
            || !insert.after_columns.is_empty()
            || !insert.assignments.is_empty()
        {
            return Err(refuse("an INSERT form SQLite does not have"));
        }
        let columns: Vec<String> = if insert.columns.is_empty() {
            self.table.columns.clone()
        } else {
            insert.columns.iter().map(|c| c.value.clone()).collect()
        };
        let target_columns: Vec<String> = self
            .target_columns(&columns)
            .iter()
            .map(|c| if c == "rowid" { c.clone() } else { ident(c) })
            .collect();
        let storage = format!("main.{}", ident(&self.table.storage));

        // Storage under the name the statement uses, so that its upsert
        // clause and RETURNING still resolve qualified column names.
        let written = match &insert.table {
            TableObject::TableName(name) => match &insert.table_alias {
                Some(alias) => alias.value.clone(),
                None => written_as(name, None),
            },
            TableObject::TableFunction(_) => return Err(refuse("an INSERT into a function")),
        };
        let (on, upsert) = self.upsert(insert.on.clone(), &written)?;
        let finish = |statement: &mut Statement| -> Result<(), Error> {
            let target = match statement {
                Statement::Insert(target) => target,
                Statement::Query(query) => match query.body.as_mut() {
                    SetExpr::Insert(Statement::Insert(target)) => target,
                    _ => return Err(refuse("internal: no INSERT in the skeleton")),
                },
                _ => return Err(refuse("internal: no INSERT in the skeleton")),
            };
            target.or = insert.or;
            target.replace_into = insert.replace_into;
            target.table_alias = Some(Ident::with_quote('"', &written));
            target.on = on.clone();
            target.returning = insert.returning.clone();
            Ok(())
        };
        let mode = self.mode(
            if insert.replace_into {
                Some(SqliteOnConflict::Replace)
            } else {
                insert.or
            },
            upsert,
        );
        let Some(source) = &insert.source else {
            // DEFAULT VALUES: every column takes its default, the tenant
            // its context; the row's checks ride on the tenant (or the
            // first column).
            let filled: Vec<String> = self
                .target_columns(&[])
                .iter()
                .map(|c| if c == "rowid" { c.clone() } else { ident(c) })
                .collect();
            let mut statement = if filled.is_empty() {
                let first = self.table.columns.first().cloned().unwrap_or_default();
                let value =
                    checked_value(&self.stored(&first, None), &self.refusal(&[], &[], None)?);
                parse_own(&format!(
                    "INSERT INTO {storage} ({}) VALUES ({value})",
                    ident(&first)
                ))?
            } else {
                parse_own(&format!(
                    "INSERT INTO {storage} ({}) VALUES ({})",
                    filled.join(", "),
                    self.checked_row(&[], &[], None)?.join(", ")
                ))?
            };
            finish(&mut statement)?;
            return Ok((Self::with_body(with, statement), mode));
        };
        let plain = source.with.is_none()
            && source.order_by.is_none()
            && source.limit_clause.is_none()
            && source.fetch.is_none();
        if let SetExpr::Values(values) = source.body.as_ref() {
            if let Some(row) = values.rows.iter().find(|row| row.len() != columns.len()) {
                return Err(Error::new(format!(
                    "{} values for {} columns",
                    row.len(),
                    columns.len()
                )));
            }
            // One row of parameters and literals carries its checks in
            // place: SQLite then writes it without a statement journal.
            // Several rows are a query to SQLite anyway; they take the CTE
            // below, with one check for all.
            if let (true, [row]) = (plain, values.rows.as_slice()) {
                if row.iter().all(is_atom) {
                    let exprs: Vec<String> = (0..row.len()).map(arg).collect();
                    let checked = self.checked_row(&columns, &exprs, None)?;
                    let mut statement = parse_own(&format!(
                        "INSERT INTO {storage} ({}) VALUES ({})",
                        target_columns.join(", "),
                        checked.join(", ")
                    ))?;
                    let _ = statement.visit(&mut Substitute { args: row });
                    finish(&mut statement)?;
                    return Ok((Self::with_body(with, statement), mode));
                }
            }
        }
        // A query, or VALUES of several rows or with expressions: its rows
        // pass through a CTE named with the target columns, then are
        // filled and checked.
        let names: Vec<String> = columns.iter().map(|c| ident(c)).collect();
        // Qualified: the checks' own subqueries have columns of that name.
        let rows_cte = ident(ROWS_CTE);
        let rows: Vec<String> = names.iter().map(|n| format!("{rows_cte}.{n}")).collect();
        // Rows the table numbers are numbered apart (`next_key`): from a
        // second CTE that counts them.
        let numbered = self.numbered().is_some();
        let offset = format!("{rows_cte}.{}", ident(ROW_NUMBER));
        let checked = self.checked_row(&columns, &rows, numbered.then_some(offset.as_str()))?;
        let source_rows = if numbered {
            format!(
                ", {} AS MATERIALIZED (SELECT *, row_number() OVER () - 1 AS {} FROM {rows_cte})",
                ident(NUMBERED_CTE),
                ident(ROW_NUMBER)
            )
        } else {
            String::new()
        };
        let from = if numbered {
            format!("{} AS {rows_cte}", ident(NUMBERED_CTE))
        } else {
            rows_cte.clone()
        };
        let mut statement = parse_own(&format!(
            "WITH {rows_cte}({}) AS MATERIALIZED (SELECT 1){source_rows} INSERT INTO {storage} ({}) SELECT {} FROM {from} WHERE true",
            names.join(", "),
            target_columns.join(", "),
            checked.join(", ")
        ))?;
        let Statement::Query(query) = &mut statement else {
            return Err(refuse("internal: no WITH in the skeleton"));
        };
        let Some(own) = query.with.as_mut() else {
            return Err(refuse("internal: no WITH in the skeleton"));
        };
        if let Some(cte) = own.cte_tables.first_mut() {
            cte.query = source.clone();
        }
        if let Some(user) = with {
            // `WITH a AS (...) INSERT` → `WITH a AS (...), rows AS (...) INSERT`
            let mut ctes = user.cte_tables;
            ctes.append(&mut own.cte_tables);
            own.cte_tables = ctes;
            own.recursive = user.recursive;
        }
        finish(&mut statement)?;
        Ok((statement, mode))
    }
}

/// Writes each string literal holding a `'` as literals without one joined
/// by `char(39)`: sqlparser prints two quotes in a row, or a quote after a
/// backslash, as they are (taking them for escapes already made), which
/// SQLite would read as one quote, or as the end of the string.
struct SpellQuotes;

impl VisitorMut for SpellQuotes {
    type Break = Error;

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<Error> {
        let Expr::Value(value) = expr else {
            return ControlFlow::Continue(());
        };
        let Value::SingleQuotedString(text) = &value.value else {
            return ControlFlow::Continue(());
        };
        if !text.contains('\'') {
            return ControlFlow::Continue(());
        }
        let parts: Vec<Expr> = text
            .split('\'')
            .map(|part| Expr::value(Value::SingleQuotedString(part.to_string())))
            .collect();
        let template: Vec<String> = (0..parts.len()).map(arg).collect();
        match expr_with(&template.join(" || char(39) || "), &parts) {
            Ok(spelled) => {
                *expr = Expr::Nested(Box::new(spelled));
                ControlFlow::Continue(())
            }
            Err(error) => ControlFlow::Break(error),
        }
    }
}

/// Numbers every anonymous `?` as SQLite numbers it (one more than the
/// largest number so far, `?NNN` and named parameters included), and
/// returns the parameters SQLite must find, by index. A value the checks
/// repeat is the same parameter wherever it is repeated: parameters are
/// told apart by where the user wrote them.
fn number_parameters(statement: &mut Statement) -> Result<Vec<Option<String>>, Error> {
    let mut found = Vec::new();
    let _ = statement.visit(&mut Placeholders {
        found: &mut found,
        renamed: None,
    });
    let mut written: Vec<(Location, String)> = found.clone();
    written.sort_by_key(|(at, _)| (at.line, at.column));
    written.dedup_by_key(|(at, _)| (at.line, at.column));
    let mut names: Vec<Option<String>> = Vec::new();
    let mut renamed: BTreeMap<(u64, u64), String> = BTreeMap::new();
    for (at, text) in written {
        if text == "?" {
            let name = format!("?{}", names.len() + 1);
            names.push(Some(name.clone()));
            renamed.insert((at.line, at.column), name);
        } else if let Some(digits) = text.strip_prefix('?') {
            let number: usize = digits
                .parse()
                .ok()
                .filter(|n| (1..=32766).contains(n))
                .ok_or_else(|| refuse(format!("the parameter `{text}` is out of range")))?;
            if number > names.len() {
                names.resize(number, None);
            }
            if names[number - 1].is_none() {
                names[number - 1] = Some(text);
            }
        } else if !names.iter().any(|n| n.as_deref() == Some(text.as_str())) {
            names.push(Some(text));
        }
    }
    let _ = statement.visit(&mut Placeholders {
        found: &mut Vec::new(),
        renamed: Some(&renamed),
    });
    Ok(names)
}

/// Finds the placeholders of a tree with where they were written, or
/// renames the anonymous ones.
struct Placeholders<'a> {
    found: &'a mut Vec<(Location, String)>,
    renamed: Option<&'a BTreeMap<(u64, u64), String>>,
}

impl VisitorMut for Placeholders<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Value(value) = expr {
            if let Value::Placeholder(text) = &mut value.value {
                let at = value.span.start;
                match self.renamed {
                    Some(renamed) => {
                        if let Some(name) = renamed.get(&(at.line, at.column)) {
                            *text = name.clone();
                        }
                    }
                    None => self.found.push((at, text.clone())),
                }
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const POLICY: &str = "tenancy:\n  mode: row_level\n  column: tenant_id\n\nentity Task:\n  table: tasks\n  id: int pk\n  owner_id: uuid\n  title: str = 'untitled'\n  access:\n    read: true\n    create: true\n    update: owner_id = current_user\n    delete: role(admin)\n";

    fn tables() -> BTreeMap<String, TableInfo> {
        let policy = Arc::new(dnr_core::parse(POLICY).unwrap_or_else(|_| PolicySet {
            tenancy: Default::default(),
            entities: Vec::new(),
        }));
        let tasks = TableInfo {
            policy,
            entity: 0,
            storage: "_dnr_tasks".into(),
            columns: vec![
                "tenant_id".into(),
                "id".into(),
                "owner_id".into(),
                "title".into(),
            ],
            uuid_columns: ["owner_id".to_string()].into_iter().collect(),
            tenant: Some("tenant_id".into()),
            defaults: [("title".to_string(), "('untitled')".to_string())]
                .into_iter()
                .collect(),
            replaces: false,
            schema: SqliteTable {
                columns: ["tenant_id", "id", "owner_id", "title"]
                    .iter()
                    .map(|name| dnr_core::compile::sqlite::SqliteColumn {
                        name: name.to_string(),
                        primary_key: *name == "id",
                        default: (*name == "title").then(|| "('untitled')".to_string()),
                        declared_type: if *name == "id" { "INTEGER" } else { "TEXT" }.into(),
                    })
                    .collect(),
                enforced: true,
                unique_keys: vec![vec!["id".into()]],
            },
        };
        [("tasks".to_string(), tasks)].into_iter().collect()
    }

    fn plans(sql: &str) -> Result<Vec<Plan>, Error> {
        read::statements(sql)?
            .iter()
            .map(|piece| plan(piece, &tables()))
            .collect()
    }

    fn rewritten(sql: &str) -> String {
        match plans(sql).as_deref() {
            Ok([Plan::Write(w)]) => w.sql.clone(),
            other => format!("not rewritten: {other:?}"),
        }
    }

    fn parameters(sql: &str) -> Vec<Option<String>> {
        match plans(sql).as_deref() {
            Ok([Plan::Write(w)]) => w.parameters.clone(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn inserts_fill_the_tenant_normalize_uuids_and_carry_their_checks() {
        insta::assert_snapshot!(
            "insert_one_row",
            rewritten("INSERT INTO tasks (id, owner_id) VALUES (-2.5e3, ?) RETURNING :o, ?;")
        );
        insta::assert_snapshot!(
            "insert_all_columns",
            rewritten("insert or ignore into main.TASKS values ('t', 1, 'o', 'x')")
        );
        insta::assert_snapshot!(
            "insert_rows_cte",
            rewritten("INSERT INTO tasks (id, owner_id) VALUES (1, ?), (2, lower(?))")
        );
        insta::assert_snapshot!(
            "insert_with_upsert",
            rewritten("WITH s AS (SELECT 1 AS i) INSERT INTO tasks AS t (id) SELECT i FROM s ON CONFLICT (id) DO UPDATE SET owner_id = excluded.owner_id WHERE t.title <> 'x' RETURNING t.id")
        );
        insta::assert_snapshot!(
            "insert_default_values",
            rewritten("INSERT INTO tasks DEFAULT VALUES")
        );
    }

    #[test]
    fn updates_and_deletes_are_fenced_and_only_the_target_is_storage() {
        insta::assert_snapshot!(
            "update",
            rewritten("UPDATE OR REPLACE tasks t SET owner_id = ?, title = (SELECT title FROM tasks WHERE id = 2) WHERE t.id = 1 OR t.id = 2 RETURNING id")
        );
        insta::assert_snapshot!("delete", rewritten("DELETE FROM tasks"));
        // Drizzle qualifies the conflict target with the table.
        insta::assert_snapshot!(
            "upsert_qualified_target",
            rewritten("insert into \"tasks\" (\"id\", \"title\") values (?, ?) on conflict (\"tasks\".\"id\") do update set \"title\" = ? returning \"id\"")
        );
        insta::assert_snapshot!(
            "update_from",
            rewritten("UPDATE tasks SET title = x.t FROM (SELECT 't' AS t) AS x")
        );
    }

    #[test]
    fn parameters_are_numbered_as_sqlite_numbers_them() {
        let names = |list: &[&str]| -> Vec<Option<String>> {
            list.iter()
                .map(|n| (!n.is_empty()).then(|| n.to_string()))
                .collect()
        };
        assert_eq!(
            parameters(
                "INSERT INTO tasks (id, owner_id) VALUES (?, :a) RETURNING ?, ?7, ?, :a, @b"
            ),
            names(&["?1", ":a", "?3", "", "", "", "?7", "?8", "@b"])
        );
        assert!(rewritten("UPDATE tasks SET title = ? WHERE id = ?").contains("?1 WHERE"));
    }

    #[test]
    fn modes_follow_the_conflict_clause() {
        let mode = |sql: &str| match plans(sql).as_deref() {
            Ok([Plan::Write(w)]) => Some(w.mode),
            _ => None,
        };
        let replacing = |sql: &str| mode(sql).map(|m| !m.cannot_replace);
        assert_eq!(
            replacing("INSERT OR REPLACE INTO tasks (id) VALUES (1)"),
            Some(true)
        );
        assert_eq!(replacing("REPLACE INTO tasks (id) VALUES (1)"), Some(true));
        assert_eq!(replacing("UPDATE OR REPLACE tasks SET id = 2"), Some(true));
        assert_eq!(replacing("INSERT INTO tasks (id) VALUES (1)"), Some(false));
        assert_eq!(
            replacing("INSERT OR IGNORE INTO tasks (id) VALUES (1)"),
            Some(false)
        );
        let upsert = |sql: &str| mode(sql).is_some_and(|m| m.upsert);
        assert!(upsert(
            "INSERT INTO tasks (id) VALUES (1) ON CONFLICT DO UPDATE SET id = 2"
        ));
        assert!(!upsert(
            "INSERT INTO tasks (id) VALUES (1) ON CONFLICT DO NOTHING"
        ));
    }

    #[test]
    fn other_statements_run_as_written_or_migrate_and_storage_names_are_refused() {
        for sql in [
            "SELECT * FROM tasks",
            "INSERT INTO other VALUES (1)",
            "INSERT INTO temp.tasks VALUES (1)",
            "UPDATE notes SET a = 1",
            "WITH x AS (SELECT 1) SELECT * FROM x",
        ] {
            assert!(
                matches!(plans(sql).as_deref(), Ok([Plan::AsIs(_)])),
                "{sql}"
            );
        }
        // What sqlparser cannot read runs as written, without storage.
        for sql in [
            "PRAGMA table_info(tasks)",
            "UPDATE tasks SET title = 'x' WHERE 0) OR (title = 'g'",
            "UPDATE tasks SET title = $a(x' ') RETURNING (SELECT 1)",
        ] {
            assert!(
                matches!(plans(sql).as_deref(), Ok([Plan::Unread { .. }])),
                "{sql}"
            );
        }
        for sql in [
            "ALTER TABLE tasks ADD COLUMN due TEXT",
            "CREATE UNIQUE INDEX IF NOT EXISTS i ON main.tasks (title)",
            "DROP INDEX i",
        ] {
            assert!(
                matches!(plans(sql).as_deref(), Ok([Plan::Migrate(_)])),
                "{sql}"
            );
        }
        for sql in [
            "DELETE FROM tasks WHERE id IN (SELECT id FROM _DNR_tasks)",
            "UPDATE tasks SET title = 1 RETURNING (SELECT group_concat(title) FROM \"_dnr_tasks\")",
            "UPDATE tasks SET title = 1 RETURNING (SELECT group_concat(title) FROM '_dnr_tasks')",
            "UPDATE tasks SET title = 1 RETURNING (SELECT group_concat(title) FROM [_dnr_tasks])",
            "UPDATE tasks SET (owner_id, title) = (?, ?)",
            "INSERT INTO tasks (id, title) VALUES (1)",
            "UPDATE tasks SET title = $a::b(x) RETURNING (SELECT 1)",
        ] {
            assert!(plans(sql).is_err(), "{sql}");
        }
        assert_eq!(
            plans("DELETE FROM tasks; DELETE FROM tasks").map(|p| p.len()),
            Ok(2)
        );
        assert_eq!(plans("DELETE FROM tasks;;").map(|p| p.len()), Ok(1));
    }

    #[test]
    fn big_statements_are_planned() {
        let rows = vec!["(?, ?)"; 10_000].join(", ");
        let many = format!("INSERT INTO tasks (id, title) VALUES {rows}");
        assert!(matches!(plans(&many).as_deref(), Ok([Plan::Write(_)])));
        let long = format!(
            "DELETE FROM tasks WHERE title = '{}'",
            "x".repeat(2_000_000)
        );
        assert!(matches!(plans(&long).as_deref(), Ok([Plan::Write(_)])));
        // Nesting past sqlparser's depth limit is refused, not a crash.
        let deep = format!(
            "UPDATE tasks SET title = {}1{} WHERE id = ?",
            "(".repeat(10_000),
            ")".repeat(10_000)
        );
        assert!(matches!(plans(&deep).as_deref(), Ok([Plan::Unread { .. }])));
        assert!(
            plans("INSERT INTO tasks (id, title) VALUES (?99999999999999999999999, ?)").is_err()
        );
    }

    /// Words and punctuation the rewriter reacts to, in any order.
    fn fragment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "INSERT",
            "INTO",
            "OR",
            "REPLACE",
            "IGNORE",
            "UPDATE",
            "DELETE",
            "FROM",
            "tasks",
            "main",
            ".",
            "AS",
            "t",
            "SET",
            "WHERE",
            "RETURNING",
            "ON",
            "CONFLICT",
            "DO",
            "NOTHING",
            "VALUES",
            "DEFAULT",
            "SELECT",
            "WITH",
            "(",
            ")",
            ",",
            "=",
            "?",
            "1",
            "'x'",
            "owner_id",
            "tenant_id",
            "id",
            "*",
            ";",
            "excluded",
            "\"tasks\"",
            "ORDER",
            "BY",
            "LIMIT",
            "INDEXED",
            "NOT",
            "$a",
            ":b",
            "x'00'",
            "--",
            "/*",
            "*/",
            "[tasks]",
        ])
    }

    /// INSERTs of every conflict mode with 1–3 VALUES rows of parameters,
    /// literals and expressions, and how many rows they give.
    fn insert_statement() -> impl Strategy<Value = (String, usize)> {
        let verb = prop::sample::select(vec![
            "INSERT",
            "INSERT OR REPLACE",
            "REPLACE",
            "INSERT OR IGNORE",
        ]);
        let target = prop::sample::select(vec!["tasks", "main.tasks", "\"TASKS\""]);
        let value = prop::sample::select(vec![
            "?",
            "?2",
            ":a",
            "1",
            "-2.5",
            "'x'",
            "NULL",
            "lower(?)",
            "random()",
            "(SELECT 1)",
            "'x' || ?",
        ]);
        let rows = prop::collection::vec(prop::collection::vec(value, 2), 1..4);
        let tail = prop::sample::select(vec![
            "",
            " RETURNING *",
            " ON CONFLICT (id) DO NOTHING",
            " ON CONFLICT (id) DO UPDATE SET title = excluded.title",
        ]);
        (verb, target, rows, tail).prop_map(|(verb, target, rows, tail)| {
            let values: Vec<String> = rows.iter().map(|r| format!("({})", r.join(", "))).collect();
            (
                format!(
                    "{verb} INTO {target} (id, title) VALUES {}{tail}",
                    values.join(", ")
                ),
                rows.len(),
            )
        })
    }

    /// 2,000 cases in the test suite; `just fuzz` runs many more.
    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(2000)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        /// No panic on any shape; a rewritten write always names storage
        /// as its target only once, an UPDATE or DELETE always carries the
        /// fence, and an INSERT's rows their checks.
        #[test]
        fn any_statement_is_planned_without_panic(parts in prop::collection::vec(fragment(), 0..24)) {
            let sql = parts.join(" ");
            if let Ok(plans) = plans(&sql) {
                for plan in plans {
                    if let Plan::Write(w) = plan {
                        prop_assert!(w.sql.contains("main.\"_dnr_tasks\""), "{}", w.sql);
                        if w.sql.contains("UPDATE main.") || w.sql.contains("DELETE FROM main.") {
                            prop_assert!(w.sql.contains(".\"tenant_id\" = dnr_tenant()"), "{}", w.sql);
                        }
                        if w.sql.contains("INTO main.\"_dnr_tasks\"") {
                            prop_assert!(w.sql.contains("dnr_checked("), "{}", w.sql);
                        }
                    }
                }
            }
        }

        /// Every row an INSERT writes carries its checks: one VALUES row in
        /// place, several (or expressions) in the SELECT over the
        /// MATERIALIZED rows; either way the checks are written once.
        #[test]
        fn every_inserted_row_carries_its_checks((sql, rows) in insert_statement()) {
            let planned = plans(&sql);
            let Ok([Plan::Write(w)]) = planned.as_deref() else {
                return Err(TestCaseError::fail(format!("not rewritten: {sql}")));
            };
            let checks = w.sql.matches("dnr_checked(").count();
            let fences = w.sql.matches("refused by the tenant fence").count();
            prop_assert_eq!((checks, fences), (1, 1), "{} => {}", sql, w.sql);
            prop_assert!(rows == 1 || w.sql.contains("AS MATERIALIZED ("), "{} => {}", sql, w.sql);
        }

        #[test]
        fn garbage_is_planned_without_panic(sql in "\\PC{0,200}") {
            let _ = plans(&sql);
        }
    }
}
