//! The statement rewriter: how a DNR connection (the npm `Database`, the
//! Rust [`crate::Connection`]) runs a write on an enforced table as a write
//! on a table.
//!
//! SQLite cannot upsert a view, does not count the rows an INSTEAD OF
//! trigger writes and answers RETURNING from the values given, not those
//! stored. So `INSERT`, `UPDATE` and `DELETE` naming an enforced table are
//! rewritten to name its storage table: the tenant is filled and uuids
//! normalized in the statement itself, an inserted row carries its checks
//! (`dnr_checked`, compiled as for the view's insert trigger), the fence
//! joins an UPDATE's or DELETE's WHERE clause (so the tenant index is
//! used), and the storage table's BEFORE triggers check every row updated
//! or deleted. Counts, upserts, RETURNING and `last_insert_rowid()` are
//! then SQLite's own.
//!
//! Everything else runs as written (reads go through the filtered views).
//! The rewritten statement is DNR's own: the host prepares and runs it
//! with the lock's permission, so a statement that names DNR's storage is
//! refused here rather than rewritten.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use dnr_core::compile::quote::{ident, literal};
use dnr_core::compile::sqlite::{
    allowed_rows, checked_value, insert_refusal, storage_table, SqliteTable,
};
use dnr_core::{Operation, PolicySet};

use crate::tokens::{tokenize_spans, Token};
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
    /// As written: it writes no enforced table.
    AsIs,
    /// A write on an enforced table, rewritten onto its storage.
    Write(Arc<Rewritten>),
    /// A schema change on an enforced table: run it through `migrate`.
    Migrate,
}

/// A write rewritten onto storage, and the write mode its rows need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub sql: String,
    pub(crate) mode: WriteMode,
    pub(crate) access: StorageAccess,
}

/// The storage tables a rewritten statement touches, lowercase: the one it
/// writes, and those its `exists` conditions read (DNR's own conditions: the
/// statement itself can name no `_dnr_` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StorageAccess {
    pub target: String,
    pub reads: Vec<String>,
}

type Spans = Vec<(usize, usize, Token)>;

/// A VALUES row: its items' token ranges.
type Row = Vec<(usize, usize)>;

/// Plans one statement (a trailing semicolon allowed).
pub(crate) fn plan(sql: &str, tables: &BTreeMap<String, TableInfo>) -> Result<Plan, Error> {
    let mut tokens = tokenize_spans(sql)?;
    while matches!(tokens.last(), Some((_, _, Token::Semicolon))) {
        tokens.pop();
    }
    let reader = Reader {
        sql,
        tokens: &tokens,
    };
    let start = reader.main_keyword();
    let Some(keyword) = reader.word(start) else {
        return Ok(Plan::AsIs);
    };
    match keyword.as_str() {
        "insert" | "replace" | "update" | "delete" => {}
        "alter" | "create" | "drop" => {
            return Ok(if reader.schema_change(tables) {
                Plan::Migrate
            } else {
                Plan::AsIs
            })
        }
        _ => return Ok(Plan::AsIs),
    }
    if tokens.iter().any(|(_, _, t)| matches!(t, Token::Semicolon)) {
        // SQLite would prepare the first statement only, unrewritten.
        return Err(Error::new(
            "dnr: a write takes one statement at a time; run the others separately",
        ));
    }
    let target = match reader.target(start, &keyword) {
        Some(target) => target,
        None => return Ok(Plan::AsIs),
    };
    let Some(table) = tables.get(&target.name.to_ascii_lowercase()) else {
        return Ok(Plan::AsIs);
    };
    if let Some(name) = tokens
        .iter()
        .filter_map(|(_, _, t)| t.word())
        .find(|w| w.starts_with("_dnr_"))
    {
        return Err(Error::new(format!(
            "dnr: `{name}` is DNR's own; a write on an enforced table cannot name it"
        )));
    }
    if matches!(keyword.as_str(), "insert" | "replace") {
        // An INSERT's checks repeat its values: `?` must keep its number.
        if let Some(numbered) = number_parameters(sql, &tokens) {
            return plan(&numbered, tables);
        }
    }
    let statement = Statement {
        reader,
        table,
        target,
    };
    let (sql, mode) = match keyword.as_str() {
        "update" => statement.update()?,
        "delete" => statement.delete(),
        _ => statement.insert(&keyword)?,
    };
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
    })))
}

/// `sql` with every anonymous `?` numbered as SQLite numbers it (one more
/// than the largest number given so far, `?NNN` and named parameters
/// included), or None when it has none.
fn number_parameters(sql: &str, tokens: &Spans) -> Option<String> {
    let adjacent = |i: usize| tokens.get(i + 1).filter(|next| next.0 == tokens[i].1);
    let mut largest = 0u64;
    let mut names = BTreeSet::new();
    let mut numbered = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i].2 {
            Token::Other('?') => {
                let mut digits = String::new();
                let mut j = i;
                while let Some((_, _, Token::Other(d))) = adjacent(j) {
                    if !d.is_ascii_digit() {
                        break;
                    }
                    digits.push(*d);
                    j += 1;
                }
                if digits.is_empty() {
                    // Saturating: past ?32766 SQLite refuses the number.
                    largest = largest.saturating_add(1);
                    numbered.push((tokens[i].0, tokens[i].1, largest));
                } else {
                    largest = largest.max(digits.parse().unwrap_or(u64::MAX));
                }
                i = j;
            }
            Token::Other(prefix @ (':' | '@' | '$')) => {
                if let Some((
                    _,
                    _,
                    Token::Word {
                        value,
                        quoted: false,
                    },
                )) = adjacent(i)
                {
                    if names.insert(format!("{prefix}{value}")) {
                        largest = largest.saturating_add(1);
                    }
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if numbered.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(sql.len() + 4 * numbered.len());
    let mut copied = 0;
    for (start, end, number) in numbered {
        out.push_str(&sql[copied..start]);
        out.push_str(&format!("?{number}"));
        copied = end;
    }
    out.push_str(&sql[copied..]);
    Some(out)
}

/// Whether `text` is a value an INSERT may repeat in its checks: the same
/// each time it is evaluated (a parameter, a literal), so that the row
/// checked is the row stored.
fn is_atom(text: &str, tokens: &[(usize, usize, Token)]) -> bool {
    match tokens {
        [(_, _, Token::Str(_))] => true,
        [(
            _,
            _,
            Token::Word {
                value,
                quoted: false,
            },
        )] => matches!(
            value.to_ascii_lowercase().as_str(),
            "null" | "true" | "false"
        ),
        _ => {
            let body = text.strip_prefix(['+', '-']).unwrap_or(text);
            let parameter = text.strip_prefix(['?', ':', '@', '$']).is_some_and(|rest| {
                rest.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
            });
            parameter || is_number(body)
        }
    }
}

/// A numeric literal: digits with an optional fraction and exponent, or
/// `0x` and hex digits.
fn is_number(text: &str) -> bool {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty())
        }
        None => !mantissa.is_empty() && digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

struct Reader<'a> {
    sql: &'a str,
    tokens: &'a Spans,
}

/// The table a write names, where it is named.
struct Target {
    name: String,
    /// Token index of the first name part (after `INTO`/`UPDATE`/`FROM`
    /// and any `OR ...`).
    first: usize,
    /// Token index after the name (and its alias, if any).
    after: usize,
    alias: Option<String>,
    /// `OR REPLACE`, `OR IGNORE`, ... (lowercase), or `replace` for
    /// `REPLACE INTO`.
    conflict: Option<String>,
}

impl Reader<'_> {
    fn word(&self, index: usize) -> Option<String> {
        self.tokens.get(index).and_then(|(_, _, t)| t.keyword())
    }

    fn is(&self, index: usize, word: &str) -> bool {
        self.word(index).as_deref() == Some(word)
    }

    fn name(&self, index: usize) -> Option<String> {
        match self.tokens.get(index) {
            Some((_, _, Token::Word { value, .. })) => Some(value.clone()),
            _ => None,
        }
    }

    fn start(&self, index: usize) -> usize {
        self.tokens
            .get(index)
            .map_or(self.sql.len(), |(start, _, _)| *start)
    }

    fn end(&self, index: usize) -> usize {
        self.tokens
            .get(index)
            .map_or(self.sql.len(), |(_, end, _)| *end)
    }

    /// The text of tokens `from..to`, as written.
    fn text(&self, from: usize, to: usize) -> &str {
        if from >= to {
            return "";
        }
        &self.sql[self.start(from)..self.end(to - 1)]
    }

    /// The index of the statement's main keyword: the first, or the one
    /// after a leading `WITH` list.
    fn main_keyword(&self) -> usize {
        if !self.is(0, "with") {
            return 0;
        }
        let mut depth = 0usize;
        for index in 1..self.tokens.len() {
            match &self.tokens[index].2 {
                Token::Other('(') => depth += 1,
                Token::Other(')') => depth = depth.saturating_sub(1),
                _ if depth == 0
                    && matches!(
                        self.word(index).as_deref(),
                        Some("insert" | "replace" | "update" | "delete" | "select" | "values")
                    ) =>
                {
                    return index;
                }
                _ => {}
            }
        }
        self.tokens.len()
    }

    /// The first top-level token at or after `from` that is one of `words`
    /// (or `on conflict` for "on"), or the end.
    fn find_top(&self, from: usize, words: &[&str]) -> usize {
        let mut depth = 0usize;
        for index in from..self.tokens.len() {
            match &self.tokens[index].2 {
                Token::Other('(') => depth += 1,
                Token::Other(')') => depth = depth.saturating_sub(1),
                _ if depth == 0 => {
                    if let Some(word) = self.word(index) {
                        if word == "on" && words.contains(&"on") {
                            if self.is(index + 1, "conflict") {
                                return index;
                            }
                        } else if words.contains(&word.as_str()) {
                            return index;
                        }
                    }
                }
                _ => {}
            }
        }
        self.tokens.len()
    }

    /// The index after the parenthesis closing the one at `open`.
    fn close(&self, open: usize) -> Option<usize> {
        let mut depth = 0usize;
        for index in open..self.tokens.len() {
            match &self.tokens[index].2 {
                Token::Other('(') => depth += 1,
                Token::Other(')') => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(index + 1);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// The items of the list between `from` and `to`, split at top-level
    /// commas: token ranges.
    fn items(&self, from: usize, to: usize) -> Vec<(usize, usize)> {
        let mut items = Vec::new();
        let mut depth = 0usize;
        let mut start = from;
        for index in from..to {
            match &self.tokens[index].2 {
                Token::Other('(') => depth += 1,
                Token::Other(')') => depth = depth.saturating_sub(1),
                Token::Other(',') if depth == 0 => {
                    items.push((start, index));
                    start = index + 1;
                }
                _ => {}
            }
        }
        if start < to {
            items.push((start, to));
        }
        items
    }

    fn target(&self, start: usize, keyword: &str) -> Option<Target> {
        let mut index = start + 1;
        let mut conflict = None;
        match keyword {
            "replace" => conflict = Some("replace".to_string()),
            "insert" | "update" if self.is(index, "or") => {
                conflict = self.word(index + 1);
                index += 2;
            }
            _ => {}
        }
        if keyword == "delete" {
            if !self.is(index, "from") {
                return None;
            }
            index += 1;
        }
        if matches!(keyword, "insert" | "replace") {
            if !self.is(index, "into") {
                return None;
            }
            index += 1;
        }
        let first = index;
        let mut name = self.name(index)?;
        if matches!(self.tokens.get(index + 1), Some((_, _, Token::Period))) {
            // Only `main.`: `temp.` is a locked connection's stand-in, and
            // attached databases have no policies here.
            if !name.eq_ignore_ascii_case("main") {
                return None;
            }
            name = self.name(index + 2)?;
            index += 2;
        }
        index += 1;
        let mut alias = None;
        if self.is(index, "as") {
            alias = Some(self.name(index + 1)?);
            index += 2;
        } else if keyword != "insert" && keyword != "replace" {
            // UPDATE/DELETE also take an alias without AS.
            if let Some(word) = self.name(index) {
                let lower = word.to_ascii_lowercase();
                if !matches!(
                    lower.as_str(),
                    "set" | "where" | "indexed" | "not" | "returning" | "order" | "limit"
                ) {
                    alias = Some(word);
                    index += 1;
                }
            }
        }
        Some(Target {
            name,
            first,
            after: index,
            alias,
            conflict,
        })
    }

    /// `ALTER TABLE <enforced>`, `CREATE [UNIQUE] INDEX ... ON <enforced>`
    /// and `DROP INDEX`.
    fn schema_change(&self, tables: &BTreeMap<String, TableInfo>) -> bool {
        let enforced = |index: usize| {
            let mut index = index;
            if matches!(self.tokens.get(index + 1), Some((_, _, Token::Period))) {
                index += 2;
            }
            self.name(index)
                .is_some_and(|name| tables.contains_key(&name.to_ascii_lowercase()))
        };
        match self.word(0).as_deref() {
            Some("alter") if self.is(1, "table") => enforced(2),
            Some("create") => {
                let index = if self.is(1, "unique") { 2 } else { 1 };
                self.is(index, "index")
                    && (index..self.tokens.len())
                        .find(|&i| self.is(i, "on"))
                        .is_some_and(|on| enforced(on + 1))
            }
            Some("drop") => self.is(1, "index"),
            _ => false,
        }
    }
}

struct Statement<'a> {
    reader: Reader<'a>,
    table: &'a TableInfo,
    target: Target,
}

impl Statement<'_> {
    /// `main."_dnr_t" AS "alias"`: storage under the name the statement
    /// uses, so its qualified column names still resolve.
    fn storage_target(&self) -> String {
        let alias = self.target.alias.as_deref().unwrap_or(&self.target.name);
        format!("main.{} AS {}", ident(&self.table.storage), ident(alias))
    }

    fn qualifier(&self) -> String {
        ident(self.target.alias.as_deref().unwrap_or(&self.target.name))
    }

    /// The target's rows the context may `op`, over the target's name.
    fn allowed(&self, op: Operation) -> String {
        let entity = &self.table.policy.entities[self.table.entity];
        allowed_rows(&self.table.policy, entity, op, &self.qualifier())
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

    /// The statement's text from token `from` to its end.
    fn rest(&self, from: usize) -> &str {
        let r = &self.reader;
        if from >= r.tokens.len() {
            return "";
        }
        &r.sql[r.start(from)..r.end(r.tokens.len() - 1)]
    }

    /// The text before the target's name (`WITH ...`, `UPDATE OR ...`).
    fn head(&self) -> &str {
        &self.reader.sql[..self.reader.start(self.target.first)]
    }

    fn mode(&self, upsert: bool) -> WriteMode {
        let cannot_replace = match self.target.conflict.as_deref() {
            Some("replace") => false,
            Some("ignore") => true,
            // ABORT and the like: unless a unique constraint of the table
            // itself resolves conflicts by REPLACE.
            _ => !self.table.replaces,
        };
        WriteMode {
            cannot_replace,
            upsert,
        }
    }

    /// A SET list (`a = x, b = y`) with uuid values normalized.
    fn assignments(&self, from: usize, to: usize) -> Result<String, Error> {
        let r = &self.reader;
        let mut out = Vec::new();
        for (start, end) in r.items(from, to) {
            let text = r.text(start, end);
            let equals = (start..end).find(|&i| matches!(r.tokens[i].2, Token::Other('=')));
            match (r.name(start), equals) {
                (Some(column), Some(eq)) if eq == start + 1 => {
                    if self.is_uuid(&column) || self.is_tenant(&column) {
                        out.push(format!(
                            "{} = dnr_uuid({})",
                            r.text(start, eq),
                            r.text(eq + 1, end)
                        ));
                    } else {
                        out.push(text.to_string());
                    }
                }
                _ => {
                    let named: Vec<String> = (start..end)
                        .take_while(|&i| Some(i) != equals)
                        .filter_map(|i| r.name(i))
                        .collect();
                    if named.iter().any(|c| self.is_uuid(c) || self.is_tenant(c)) {
                        return Err(Error::new(format!(
                            "dnr: cannot rewrite the assignment `{text}`: assign uuid columns of an enforced table one at a time (`column = value`)"
                        )));
                    }
                    out.push(text.to_string());
                }
            }
        }
        Ok(out.join(", "))
    }

    fn update(&self) -> Result<(String, WriteMode), Error> {
        let r = &self.reader;
        let set = r.find_top(self.target.after, &["set"]);
        if set >= r.tokens.len() {
            return Err(Error::new("dnr: cannot rewrite this UPDATE: no SET clause"));
        }
        let list_end = r.find_top(set + 1, &["from", "where", "returning", "order", "limit"]);
        let assignments = self.assignments(set + 1, list_end)?;
        let mut sql = format!(
            "{}{} {} SET {assignments}",
            self.head(),
            self.storage_target(),
            r.text(self.target.after, set),
        );
        self.filtered_tail(&mut sql, list_end, Operation::Update);
        Ok((sql, self.mode(false)))
    }

    fn delete(&self) -> (String, WriteMode) {
        let r = &self.reader;
        let where_at = r.find_top(self.target.after, &["where", "returning", "order", "limit"]);
        let mut sql = format!(
            "{}{} {}",
            self.head(),
            self.storage_target(),
            r.text(self.target.after, where_at)
        );
        self.filtered_tail(&mut sql, where_at, Operation::Delete);
        (sql, WriteMode::default())
    }

    /// Appends `[FROM ...] WHERE (<where>) AND <fence> [RETURNING ...]...`
    /// from token `from` on. The fence only narrows the rows to the
    /// tenant's (an index search); the storage triggers decide.
    fn filtered_tail(&self, sql: &mut String, from: usize, op: Operation) {
        let r = &self.reader;
        let where_at = r.find_top(from, &["where"]);
        let end = r.find_top(
            if where_at < r.tokens.len() {
                where_at
            } else {
                from
            },
            &["returning", "order", "limit"],
        );
        // The rows the context may `op`, first: SQLite evaluates the terms
        // it does not search an index with in order, so the statement's own
        // condition never sees a row the context may not touch (no error
        // or side effect of it can tell anything about one).
        let allowed = self.allowed(op);
        let before_where = r.text(from, where_at.min(end));
        if !before_where.is_empty() {
            sql.push(' ');
            sql.push_str(before_where);
        }
        if where_at < end {
            sql.push_str(&format!(
                " WHERE {allowed} AND ({})",
                r.text(where_at + 1, end)
            ));
        } else {
            sql.push_str(&format!(" WHERE {allowed}"));
        }
        let tail = self.rest(end);
        if !tail.is_empty() {
            sql.push(' ');
            sql.push_str(tail);
        }
    }

    /// The value stored for `column` from the expression given for it, if
    /// any: the tenant filled from the context, uuids normalized, NULL
    /// given the column's default (as through the view and in PostgreSQL).
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

    /// The checks of one inserted row whose `columns` are given by
    /// `exprs` (the others take their defaults), as DNR compiles them for
    /// the view's insert trigger.
    fn refusal(&self, columns: &[String], exprs: &[String]) -> Result<String, Error> {
        let new = |name: &str| {
            let given = columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(name))
                .and_then(|i| exprs.get(i))
                .map(String::as_str);
            self.stored(name, given)
        };
        let entity = &self.table.policy.entities[self.table.entity];
        insert_refusal(&self.table.policy, entity, Some(&self.table.schema), &new)
            .map_err(|e| Error::new(format!("dnr: {e}")))
    }

    /// One row's stored values (the tenant appended when not given), the
    /// last carrying the row's checks.
    fn checked_row(
        &self,
        columns: &[String],
        exprs: &[String],
        fill_tenant: bool,
    ) -> Result<Vec<String>, Error> {
        let mut values: Vec<String> = columns
            .iter()
            .zip(exprs)
            .map(|(column, expr)| self.stored(column, Some(expr)))
            .collect();
        if fill_tenant {
            values.push("dnr_tenant()".into());
        }
        let refusal = self.refusal(columns, exprs)?;
        if let Some(last) = values.last_mut() {
            *last = checked_value(last, &refusal);
        }
        Ok(values)
    }

    /// The rows of `VALUES (...), (...)` from token `at` (after VALUES):
    /// each row's item ranges, and the index after the last row.
    fn values_rows(&self, mut at: usize, width: usize) -> Result<(Vec<Row>, usize), Error> {
        let r = &self.reader;
        let mut rows = Vec::new();
        loop {
            if !matches!(r.tokens.get(at), Some((_, _, Token::Other('(')))) {
                return Err(Error::new(
                    "dnr: cannot rewrite this INSERT: VALUES needs parenthesized rows",
                ));
            }
            let close = r.close(at).ok_or_else(|| {
                Error::new("dnr: cannot rewrite this INSERT: unbalanced parentheses")
            })?;
            let items = r.items(at + 1, close - 1);
            if items.len() != width {
                return Err(Error::new(format!(
                    "{} values for {width} columns",
                    items.len()
                )));
            }
            rows.push(items);
            at = close;
            if matches!(r.tokens.get(at), Some((_, _, Token::Other(',')))) {
                at += 1;
            } else {
                return Ok((rows, at));
            }
        }
    }

    /// An INSERT onto storage. Its rows carry their checks
    /// (`dnr_checked`): one VALUES row of parameters and literals in place,
    /// any other rows (several, expressions, a query) after a MATERIALIZED
    /// CTE has evaluated each once, so that the row checked is the row
    /// stored.
    fn insert(&self, keyword: &str) -> Result<(String, WriteMode), Error> {
        let r = &self.reader;
        let mut index = self.target.after;
        // The columns given, or all of them.
        let columns: Vec<String> = if matches!(r.tokens.get(index), Some((_, _, Token::Other('('))))
        {
            let close = r.close(index).ok_or_else(|| {
                Error::new("dnr: cannot rewrite this INSERT: unbalanced parentheses")
            })?;
            let names = r
                .items(index + 1, close - 1)
                .into_iter()
                .map(|(start, end)| match (end - start, r.name(start)) {
                    (1, Some(name)) => Ok(name),
                    _ => Err(Error::new(format!(
                        "dnr: cannot rewrite this INSERT: `{}` is not a column name",
                        r.text(start, end)
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            index = close;
            names
        } else {
            self.table.columns.clone()
        };
        let fill_tenant = self
            .table
            .tenant
            .as_deref()
            .filter(|t| !columns.iter().any(|c| c.eq_ignore_ascii_case(t)));
        let mut target_columns: Vec<String> = columns.iter().map(|c| ident(c)).collect();
        if let Some(tenant) = fill_tenant {
            target_columns.push(ident(tenant));
        }
        let head = self.head();
        let into = format!("{} ({})", self.storage_target(), target_columns.join(", "));
        if r.is(index, "default") && r.is(index + 1, "values") {
            // No column list is possible: every column takes its default,
            // the tenant its context; the row's checks ride on the tenant
            // (or the first column).
            let first = match self.table.tenant.as_deref() {
                Some(tenant) => tenant.to_string(),
                None => self.table.columns.first().cloned().unwrap_or_default(),
            };
            let value = checked_value(&self.stored(&first, None), &self.refusal(&[], &[])?);
            let sql = format!(
                "{head}{} ({}) VALUES ({value}){}",
                self.storage_target(),
                ident(&first),
                self.tail(index + 2)
            );
            return Ok((sql, self.mode(false)));
        }
        if r.is(index, "values") {
            let (rows, after) = self.values_rows(index + 1, columns.len())?;
            // One row of parameters and literals carries its checks in
            // place: SQLite then writes it without a statement journal.
            // Several rows are a query to SQLite anyway; they take the CTE
            // below, with one check for all.
            if let [items] = rows.as_slice() {
                if items
                    .iter()
                    .all(|&(start, end)| is_atom(r.text(start, end), &r.tokens[start..end]))
                {
                    let exprs: Vec<String> = items
                        .iter()
                        .map(|&(start, end)| r.text(start, end).to_string())
                        .collect();
                    let values = self.checked_row(&columns, &exprs, fill_tenant.is_some())?;
                    let sql = format!(
                        "{head}{into} VALUES ({}){}",
                        values.join(", "),
                        self.upsert_tail(after)?
                    );
                    return Ok((sql, self.insert_mode(keyword, self.has_do_update(after))));
                }
            }
        }
        // A query, or VALUES of several rows or with expressions: its rows
        // pass through a CTE named with the target columns, then are filled
        // and checked.
        let end = r.find_top(index, &["on", "returning"]);
        let select = r.text(index, end);
        if select.is_empty() {
            return Err(Error::new(
                "dnr: cannot rewrite this INSERT: no rows to insert",
            ));
        }
        let names: Vec<String> = columns.iter().map(|c| ident(c)).collect();
        // Qualified: the checks' own subqueries have columns of that name.
        let rows: Vec<String> = names.iter().map(|n| format!("\"_dnr_rows\".{n}")).collect();
        let values = self.checked_row(&columns, &rows, fill_tenant.is_some())?;
        let cte = format!(
            "\"_dnr_rows\"({}) AS MATERIALIZED ({select})",
            names.join(", ")
        );
        let head = if r.is(0, "with") {
            // `WITH a AS (...) INSERT` → `WITH a AS (...), rows AS (...) INSERT`
            let main = r.main_keyword();
            format!(
                "{}, {cte} {}",
                r.text(0, main),
                &r.sql[r.start(main)..r.start(self.target.first)]
            )
        } else {
            format!("WITH {cte} {head}")
        };
        let sql = format!(
            "{head}{into} SELECT {} FROM \"_dnr_rows\" WHERE true{}",
            values.join(", "),
            self.upsert_tail(end)?
        );
        Ok((sql, self.insert_mode(keyword, self.has_do_update(end))))
    }

    fn insert_mode(&self, keyword: &str, upsert: bool) -> WriteMode {
        if keyword == "replace" {
            return WriteMode {
                cannot_replace: false,
                upsert,
            };
        }
        self.mode(upsert)
    }

    fn tail(&self, from: usize) -> String {
        let rest = self.rest(from);
        if rest.is_empty() {
            String::new()
        } else {
            format!(" {rest}")
        }
    }

    fn has_do_update(&self, from: usize) -> bool {
        let r = &self.reader;
        (from..r.tokens.len()).any(|i| r.is(i, "do") && r.is(i + 1, "update"))
    }

    /// The upsert clauses and RETURNING from token `from`, with the
    /// assignments of each `DO UPDATE SET` normalized.
    fn upsert_tail(&self, from: usize) -> Result<String, Error> {
        let r = &self.reader;
        let mut out = String::new();
        let mut index = from;
        while index < r.tokens.len() {
            let set = (index..r.tokens.len())
                .find(|&i| r.is(i, "do") && r.is(i + 1, "update") && r.is(i + 2, "set"));
            let Some(set) = set else {
                break;
            };
            let list_end = r.find_top(set + 3, &["where", "on", "returning"]);
            out.push(' ');
            out.push_str(r.text(index, set + 3));
            out.push(' ');
            out.push_str(&self.assignments(set + 3, list_end)?);
            // The conflicting row must be one the context may update before
            // anything of the clause is evaluated on it (its WHERE and SET
            // would otherwise be an oracle on another tenant's row): an
            // error, as PostgreSQL raises for it.
            let entity = &self.table.policy.entities[self.table.entity];
            let check = format!(
                "dnr_conflict({}, {})",
                self.allowed(Operation::Update),
                literal(&format!(
                    "dnr: update on `{}` refused (ON CONFLICT DO UPDATE): the conflicting row is not one this context may update",
                    entity.name
                ))
            );
            if r.is(list_end, "where") {
                let where_end = r.find_top(list_end + 1, &["on", "returning"]);
                out.push_str(&format!(
                    " WHERE {check} AND ({})",
                    r.text(list_end + 1, where_end)
                ));
                index = where_end;
            } else {
                out.push_str(&format!(" WHERE {check}"));
                index = list_end;
            }
        }
        out.push_str(&self.tail(index));
        Ok(out)
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

    fn rewritten(sql: &str) -> String {
        match plan(sql, &tables()) {
            Ok(Plan::Write(w)) => w.sql.clone(),
            other => format!("not rewritten: {other:?}"),
        }
    }

    /// The checks the test policy compiles for an inserted row whose id,
    /// owner and tenant are spelled `id`, `owner` and `tenant`.
    fn checks(id: &str, owner: &str, tenant: &str) -> String {
        // Checked as stored: with the integer column's affinity.
        let id = format!("dnr_affinity({id}, 'integer')");
        format!(
            "CASE WHEN ({tenant} = dnr_tenant()) IS NOT TRUE THEN 'dnr: create on `Task` refused by the tenant fence' \
             WHEN (1) IS NOT TRUE THEN 'dnr: create on `Task` refused because the written row would not be readable' \
             WHEN (1) IS NOT TRUE THEN 'dnr: create on `Task` refused by `create: true`' \
             WHEN dnr_guarded() AND EXISTS (SELECT 1 FROM \"_dnr_tasks\" AS _dnr_other WHERE _dnr_other.\"id\" = {id} AND NOT (((_dnr_other.\"tenant_id\" = dnr_tenant() AND (1)) AND (_dnr_other.\"owner_id\" = dnr_user())) IS TRUE)) THEN 'UNIQUE constraint failed: tasks.id' \
             WHEN dnr_guarded() AND ({owner} = dnr_user()) IS NOT TRUE AND EXISTS (SELECT 1 FROM \"_dnr_tasks\" AS _dnr_other WHERE _dnr_other.\"id\" = {id}) THEN 'dnr: update on `Task` refused (a replacing insert) by `update: owner_id = current_user`' END"
        )
    }

    #[test]
    fn inserts_fill_the_tenant_normalize_uuids_and_carry_their_checks() {
        // One row of parameters and literals: its checks in its last value.
        assert_eq!(
            rewritten("INSERT INTO tasks (id, owner_id) VALUES (-2.5e3, ?) RETURNING :o, ?;"),
            format!(
                "INSERT INTO main.\"_dnr_tasks\" AS \"tasks\" (\"id\", \"owner_id\", \"tenant_id\") VALUES \
                 (-2.5e3, dnr_uuid(?1), dnr_checked(dnr_tenant(), {})) RETURNING :o, ?3",
                checks("-2.5e3", "dnr_uuid(?1)", "dnr_tenant()")
            )
        );
        assert_eq!(
            rewritten("insert or ignore into main.TASKS values ('t', 1, 'o', 'x')"),
            format!(
                "insert or ignore into main.\"_dnr_tasks\" AS \"TASKS\" (\"tenant_id\", \"id\", \"owner_id\", \"title\") VALUES \
                 (coalesce(dnr_uuid('t'), dnr_tenant()), 1, dnr_uuid('o'), dnr_checked(coalesce('x', ('untitled')), {}))",
                checks("1", "dnr_uuid('o')", "coalesce(dnr_uuid('t'), dnr_tenant())")
            )
        );
        // Several rows, or an expression, are evaluated once, in a
        // MATERIALIZED CTE: the row checked is the row stored.
        let rows = "\"_dnr_rows\"";
        assert_eq!(
            rewritten("INSERT INTO tasks (id, owner_id) VALUES (1, ?), (2, lower(?))"),
            format!(
                "WITH {rows}(\"id\", \"owner_id\") AS MATERIALIZED (VALUES (1, ?1), (2, lower(?2))) \
                 INSERT INTO main.\"_dnr_tasks\" AS \"tasks\" (\"id\", \"owner_id\", \"tenant_id\") \
                 SELECT {rows}.\"id\", dnr_uuid({rows}.\"owner_id\"), dnr_checked(dnr_tenant(), {}) FROM {rows} WHERE true",
                checks(&format!("{rows}.\"id\""), &format!("dnr_uuid({rows}.\"owner_id\")"), "dnr_tenant()")
            )
        );
        assert_eq!(
            rewritten("WITH s AS (SELECT 1 AS i) INSERT INTO tasks (id) SELECT i FROM s ON CONFLICT (id) DO UPDATE SET owner_id = excluded.owner_id WHERE title <> 'x'"),
            format!(
                "WITH s AS (SELECT 1 AS i), {rows}(\"id\") AS MATERIALIZED (SELECT i FROM s) \
                 INSERT INTO main.\"_dnr_tasks\" AS \"tasks\" (\"id\", \"tenant_id\") SELECT {rows}.\"id\", dnr_checked(dnr_tenant(), {}) FROM {rows} WHERE true \
                 ON CONFLICT (id) DO UPDATE SET owner_id = dnr_uuid(excluded.owner_id) WHERE dnr_conflict((\"tasks\".\"tenant_id\" = dnr_tenant() AND (1)) AND (\"tasks\".\"owner_id\" = dnr_user()), 'dnr: update on `Task` refused (ON CONFLICT DO UPDATE): the conflicting row is not one this context may update') AND (title <> 'x')",
                checks(&format!("{rows}.\"id\""), "NULL", "dnr_tenant()")
            )
        );
        assert_eq!(
            rewritten("INSERT INTO tasks DEFAULT VALUES"),
            format!(
                "INSERT INTO main.\"_dnr_tasks\" AS \"tasks\" (\"tenant_id\") VALUES (dnr_checked(dnr_tenant(), {}))",
                checks("NULL", "NULL", "dnr_tenant()")
            )
        );
    }

    #[test]
    fn anonymous_parameters_are_numbered_as_sqlite_numbers_them() {
        let numbered = |sql: &str| {
            let tokens = tokenize_spans(sql).unwrap_or_default();
            number_parameters(sql, &tokens)
        };
        assert_eq!(
            numbered("VALUES (?, :a, ?, ?7, ?, :a, @b, ?, '?', \"?\")").as_deref(),
            Some("VALUES (?1, :a, ?3, ?7, ?8, :a, @b, ?10, '?', \"?\")")
        );
        assert_eq!(numbered("VALUES (?1, :a, ?2)"), None);
    }

    #[test]
    fn only_parameters_and_literals_are_repeated() {
        let atom = |text: &str| {
            let tokens = tokenize_spans(text).unwrap_or_default();
            is_atom(text, &tokens)
        };
        for text in [
            "?", "?12", ":name", "@n", "$n", "'it''s'", "NULL", "true", "42", "-1.5e-3", ".5",
            "0x1F",
        ] {
            assert!(atom(text), "{text}");
        }
        for text in [
            "random()",
            "lower(?)",
            "(SELECT 1)",
            "1+1",
            "x'00'",
            "a",
            "1e",
            "CURRENT_TIMESTAMP",
            "- 1",
            "?1 || ?2",
        ] {
            assert!(!atom(text), "{text}");
        }
    }

    #[test]
    fn updates_and_deletes_are_fenced() {
        assert_eq!(
            rewritten("UPDATE OR REPLACE tasks t SET owner_id = ?, title = 'a' WHERE t.id = 1 OR t.id = 2 RETURNING id"),
            "UPDATE OR REPLACE main.\"_dnr_tasks\" AS \"t\"  SET owner_id = dnr_uuid(?), title = 'a' WHERE (\"t\".\"tenant_id\" = dnr_tenant() AND (1)) AND (\"t\".\"owner_id\" = dnr_user()) AND (t.id = 1 OR t.id = 2) RETURNING id"
        );
        assert_eq!(
            rewritten("DELETE FROM tasks"),
            "DELETE FROM main.\"_dnr_tasks\" AS \"tasks\"  WHERE (\"tasks\".\"tenant_id\" = dnr_tenant() AND (1)) AND (dnr_has_role('admin'))"
        );
        assert_eq!(
            rewritten("UPDATE tasks SET title = x.t FROM (SELECT 't' AS t) AS x"),
            "UPDATE main.\"_dnr_tasks\" AS \"tasks\"  SET title = x.t FROM (SELECT 't' AS t) AS x WHERE (\"tasks\".\"tenant_id\" = dnr_tenant() AND (1)) AND (\"tasks\".\"owner_id\" = dnr_user())"
        );
    }

    #[test]
    fn modes_follow_the_conflict_clause() {
        let mode = |sql: &str| match plan(sql, &tables()) {
            Ok(Plan::Write(w)) => Some(w.mode),
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
    fn other_statements_run_as_written_or_migrate() {
        for sql in [
            "SELECT * FROM tasks",
            "INSERT INTO other VALUES (1)",
            "INSERT INTO temp.tasks VALUES (1)",
            "UPDATE notes SET a = 1",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "PRAGMA table_info(tasks)",
        ] {
            assert_eq!(plan(sql, &tables()), Ok(Plan::AsIs), "{sql}");
        }
        for sql in [
            "ALTER TABLE tasks ADD COLUMN due TEXT",
            "CREATE UNIQUE INDEX IF NOT EXISTS i ON main.tasks (title)",
            "DROP INDEX i",
        ] {
            assert_eq!(plan(sql, &tables()), Ok(Plan::Migrate), "{sql}");
        }
        assert!(plan(
            "DELETE FROM tasks WHERE id IN (SELECT id FROM _DNR_tasks)",
            &tables()
        )
        .is_err());
        assert!(plan("UPDATE tasks SET (owner_id, title) = (?, ?)", &tables()).is_err());
        assert!(plan("INSERT INTO tasks (id, title) VALUES (1)", &tables()).is_err());
        assert!(plan("DELETE FROM tasks; DELETE FROM tasks", &tables()).is_err());
        assert_eq!(
            plan("DELETE FROM tasks;;", &tables()).map(|p| matches!(p, Plan::Write(_))),
            Ok(true)
        );
    }

    #[test]
    fn megabytes_and_deep_nesting_are_planned_without_recursion() {
        let deep = format!(
            "UPDATE tasks SET title = {}1{} WHERE id = ?",
            "(".repeat(200_000),
            ")".repeat(200_000)
        );
        assert!(matches!(plan(&deep, &tables()), Ok(Plan::Write(_))));
        let rows = vec!["(?, ?)"; 100_000].join(", ");
        let many = format!("INSERT INTO tasks (id, title) VALUES {rows}");
        assert!(matches!(plan(&many, &tables()), Ok(Plan::Write(_))));
        let long = format!(
            "DELETE FROM tasks WHERE title = '{}'",
            "x".repeat(2_000_000)
        );
        assert!(matches!(plan(&long, &tables()), Ok(Plan::Write(_))));
        let unbalanced = format!("INSERT INTO tasks (id) VALUES {}", "(".repeat(100_000));
        assert!(plan(&unbalanced, &tables()).is_err());
        // Parameter numbers past any integer, and 100,000 anonymous ones.
        let huge = rewritten("INSERT INTO tasks (id, title) VALUES (?99999999999999999999999, ?)");
        assert!(huge.contains(&format!("?{}", u64::MAX)), "{huge}");
        let params = vec!["?"; 100_000].join(" + ");
        let many = rewritten(&format!(
            "INSERT INTO tasks (id, title) VALUES (1, {params})"
        ));
        assert!(
            many.contains("?100000)"),
            "{}",
            &many[..200.min(many.len())]
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
        let target = prop::sample::select(vec!["tasks", "main.tasks", "tasks AS t", "\"TASKS\""]);
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
        /// as its target, an UPDATE or DELETE always carries the fence, and
        /// an INSERT's rows their checks (the fence first among them).
        #[test]
        fn any_statement_is_planned_without_panic(parts in prop::collection::vec(fragment(), 0..24)) {
            let sql = parts.join(" ");
            if let Ok(Plan::Write(w)) = plan(&sql, &tables()) {
                prop_assert!(w.sql.contains("main.\"_dnr_tasks\" AS "), "{}", w.sql);
                let lower = sql.trim_start().to_ascii_lowercase();
                if lower.starts_with("update") || lower.starts_with("delete") {
                    prop_assert!(w.sql.contains(".\"tenant_id\" = dnr_tenant()"), "{}", w.sql);
                }
                if w.sql.to_ascii_lowercase().contains(" into main.\"_dnr_tasks\"") {
                    prop_assert!(
                        w.sql.contains("dnr_checked(")
                            && w.sql.contains("= dnr_tenant()) IS NOT TRUE THEN 'dnr: create on `Task` refused by the tenant fence'"),
                        "{}",
                        w.sql
                    );
                }
            }
        }

        /// Every row an INSERT writes carries its checks: one VALUES row in
        /// place, several (or expressions) in the SELECT over the
        /// MATERIALIZED rows; either way the checks are written once.
        #[test]
        fn every_inserted_row_carries_its_checks((sql, rows) in insert_statement()) {
            let Ok(Plan::Write(w)) = plan(&sql, &tables()) else {
                return Err(TestCaseError::fail(format!("not rewritten: {sql}")));
            };
            let checks = w.sql.matches("dnr_checked(").count();
            let fences = w.sql.matches("refused by the tenant fence").count();
            prop_assert_eq!((checks, fences), (1, 1), "{} => {}", sql, w.sql);
            prop_assert!(rows == 1 || w.sql.contains("AS MATERIALIZED ("), "{} => {}", sql, w.sql);
        }

        #[test]
        fn garbage_is_planned_without_panic(sql in "\\PC{0,200}") {
            let _ = plan(&sql, &tables());
        }
    }
}
