//! SQLite: enforcement for a database without RLS.
//!
//! Each entity's table becomes a view under the table's own name, filtered
//! by the fence and the read rule; the rows move to a storage table
//! `_dnr_<table>` behind it. An inserted row carries its checks in its
//! values (`dnr_checked(value, <refusal>)`, [`insert_refusal`]): the
//! view's INSTEAD OF INSERT trigger and the statement rewriter's INSERTs
//! build them from the same refusals, and a row that breaks the fence or a
//! rule raises an error naming it. BEFORE UPDATE and DELETE triggers on the
//! storage table check every row changed: a new row that breaks the fence
//! or a rule raises an error, an existing row the context may not update or
//! delete is skipped silently (`RAISE(IGNORE)`, as PostgreSQL's RLS skips
//! it, and not counted by `changes()`). The
//! context is read through the extension's `dnr_tenant()`, `dnr_user()`,
//! `dnr_has_role()` and `dnr_authenticated()`, so a database opened without
//! the extension fails with "no such function" instead of showing all rows.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::ast::*;
use crate::check::tenant_column;
use crate::compile::expr::{ConditionWriter, Dialect};
use crate::compile::quote::{comment, ident, literal};
use crate::compile::{declared_keys, related_indexes, CompileError};
use crate::print::{literal_text, rule_text};

/// The metadata table: the applied source lives under key `source`.
pub const META_TABLE: &str = "_dnr_meta";

/// The storage table behind an enforced table.
pub fn storage_table(table: &str) -> String {
    format!("_dnr_{table}")
}

/// The storage table's BEFORE triggers, by operation.
const STORAGE_TRIGGERS: [&str; 3] = ["insert", "update", "delete"];

/// The name of the BEFORE trigger checking `op` on a storage table: ends in
/// `_check`, which no INSTEAD OF trigger's name (`_dnr_<table>_<op>`) does.
pub fn storage_trigger(table: &str, op: &str) -> String {
    format!("_dnr_{table}_{op}_check")
}

fn drop_storage_triggers(out: &mut String, table: &str) {
    for op in STORAGE_TRIGGERS {
        let _ = writeln!(
            out,
            "DROP TRIGGER IF EXISTS {};",
            ident(&storage_trigger(table, op))
        );
    }
}

/// A check on a written row: the refusal `message` (an SQL string literal)
/// when `condition` holds.
struct Refusal {
    condition: String,
    message: String,
}

/// The refusals as trigger statements, checked in order.
fn raise_lines(out: &mut String, refusals: &[Refusal]) {
    for Refusal { condition, message } in refusals {
        let _ = writeln!(out, "  SELECT RAISE(ABORT, {message}) WHERE {condition};");
    }
}

/// The refusals as one expression, checked in order: the first refusal's
/// message whose condition holds, or NULL.
fn refusal_case(refusals: &[Refusal]) -> String {
    if refusals.is_empty() {
        return "NULL".into();
    }
    let arms: Vec<String> = refusals
        .iter()
        .map(|Refusal { condition, message }| format!("WHEN {condition} THEN {message}"))
        .collect();
    format!("CASE {} END", arms.join(" "))
}

/// An inserted row's value carrying the row's checks: `dnr_checked`
/// returns `value`, or raises the refusal (SQLITE_CONSTRAINT, as RAISE
/// does) before SQLite writes the row. Put on the row's last value, so that
/// the checks, which repeat the row's values, name no parameter before the
/// values themselves do.
pub fn checked_value(value: &str, refusal: &str) -> String {
    format!("dnr_checked({value}, {refusal})")
}

fn checked_last(values: &mut [String], refusals: &[Refusal]) {
    if let Some(last) = values.last_mut() {
        *last = checked_value(last, &refusal_case(refusals));
    }
}

/// The checks of a row inserted into `entity`'s storage table (`existing`,
/// as the extension reads it), as one expression over the row's stored
/// values (`new` spells each column's): NULL when the row may be written,
/// else the refusal. The statement rewriter's INSERTs carry it in
/// `dnr_checked(value, <this>)`, as the view's insert trigger does.
pub fn insert_refusal(
    set: &PolicySet,
    entity: &Entity,
    existing: Option<&SqliteTable>,
    new: &dyn Fn(&str) -> String,
) -> Result<String, CompileError> {
    let compiler = EntityCompiler::new(set, entity, existing)?;
    Ok(refusal_case(&compiler.insert_refusals(new)))
}

/// What already exists in the database, as the extension reads it before
/// compiling. Empty for a fresh database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqliteSchema {
    /// By the entity's table name.
    pub tables: BTreeMap<String, SqliteTable>,
    /// Tables enforced by an earlier apply whose entity is gone now: their
    /// rows move back under the plain table name.
    pub no_longer_enforced: Vec<String>,
    /// The SQL of enforced storage tables and of their indexes as
    /// `sqlite_master` holds it, by the entity's table name: with it, apply
    /// rebuilds a storage table whose keys an earlier DNR made table-wide
    /// ([`rekeyed_table`]). Without it the table keeps its keys.
    pub storage_sql: BTreeMap<String, StorageSql>,
}

/// A storage table's `CREATE TABLE` and its `CREATE INDEX` statements
/// (`sqlite_master.sql`; automatic indexes have none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageSql {
    pub table: String,
    pub indexes: Vec<String>,
}

/// The `CREATE TABLE` of `storage` (as an earlier DNR wrote it, columns
/// added since included) with the table-wide keys of `entity` made per
/// tenant, under the name `new_name`: `PRIMARY KEY ("id")` becomes
/// `PRIMARY KEY ("tenant_id", "id")`, a column's `UNIQUE` becomes a
/// `UNIQUE ("tenant_id", "email")` constraint. None when the text is not
/// in DNR's form or holds none of those keys: the table is then left as
/// it is (its keys keep working, table-wide).
pub fn rekeyed_table(
    set: &PolicySet,
    entity: &Entity,
    storage: &str,
    sql: &str,
    new_name: &str,
) -> Option<String> {
    let tenant = tenant_column(set, entity)?;
    let keys = crate::compile::table_wide_keys(entity, Some(tenant));
    let listed = |key: &[&str]| key.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
    let head = format!("CREATE TABLE {} (\n", ident(storage));
    let mut body = sql.strip_prefix(&head)?.strip_suffix("\n)")?.to_string();
    let mut added: Vec<String> = Vec::new();
    let mut changed = false;
    for (old, new, primary) in &keys {
        if *primary {
            let from = format!("  PRIMARY KEY ({})", listed(old));
            if body.matches(&from).count() != 1 {
                return None;
            }
            body = body.replace(&from, &format!("  PRIMARY KEY ({})", listed(new)));
            changed = true;
            continue;
        }
        // `"email" TEXT ... UNIQUE` ending the column's definition (a
        // column a migration added may follow on the same line).
        let [column] = old.as_slice() else {
            return None;
        };
        // At a line's start (index in `body` of the line after the `\n`).
        let start = format!("\n{body}").find(&format!("\n  {} ", ident(column)))?;
        let line_end = body[start..]
            .find('\n')
            .map_or(body.len(), |end| start + end);
        let line = &body[start..line_end];
        let at = [" UNIQUE,", " UNIQUE"].iter().find_map(|form| {
            line.find(form)
                .filter(|&at| *form == " UNIQUE," || at + form.len() == line.len())
        })?;
        body.replace_range(start + at..start + at + " UNIQUE".len(), "");
        let primary_key = keys.iter().find(|k| k.2).map(|k| &k.1);
        if primary_key != Some(new) {
            added.push(format!("  UNIQUE ({})", listed(new)));
        }
        changed = true;
    }
    if !changed {
        return None;
    }
    for line in added {
        body.push_str(",\n");
        body.push_str(&line);
    }
    Some(format!("CREATE TABLE {} (\n{body}\n)", ident(new_name)))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteTable {
    pub columns: Vec<SqliteColumn>,
    /// True when the rows are already in `_dnr_<table>` behind a view.
    pub enforced: bool,
    /// Every unique key (the primary key and each unique index).
    pub unique_keys: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteColumn {
    pub name: String,
    pub primary_key: bool,
    /// The column's DEFAULT expression as SQLite reports it (`dflt_value` of
    /// `PRAGMA table_info`). A view has no defaults, so the insert trigger
    /// applies it to a missing (NULL) value.
    pub default: Option<String>,
    /// The declared type (`type` of `PRAGMA table_info`), which gives the
    /// column its affinity.
    pub declared_type: String,
}

/// The conversion SQLite applies to a value stored in a column of
/// `declared_type` (its "affinity", by SQLite's rules in order), as
/// `dnr_affinity` spells it; None for BLOB affinity, which converts nothing.
fn affinity(declared_type: &str) -> Option<&'static str> {
    let upper = declared_type.to_ascii_uppercase();
    if upper.contains("INT") {
        Some("integer")
    } else if ["CHAR", "CLOB", "TEXT"].iter().any(|t| upper.contains(t)) {
        Some("text")
    } else if upper.is_empty() || upper.contains("BLOB") {
        None
    } else if ["REAL", "FLOA", "DOUB"].iter().any(|t| upper.contains(t)) {
        Some("real")
    } else {
        Some("numeric")
    }
}

struct Sqlite;

impl Dialect for Sqlite {
    fn current_tenant(&self) -> String {
        "dnr_tenant()".into()
    }

    fn current_user(&self) -> String {
        "dnr_user()".into()
    }

    fn has_role(&self, role: &str) -> String {
        format!("dnr_has_role({})", literal(role))
    }

    fn authenticated(&self) -> String {
        "dnr_authenticated()".into()
    }

    fn boolean(&self, value: bool) -> &'static str {
        if value {
            "1"
        } else {
            "0"
        }
    }

    fn uuid_literal(&self, uuid: &uuid::Uuid) -> String {
        format!("'{}'", uuid.hyphenated())
    }

    fn binary_collation(&self) -> &'static str {
        " COLLATE BINARY"
    }

    fn collate_equality(&self) -> bool {
        true
    }

    fn expand_in_lists(&self) -> bool {
        true
    }

    fn related_table(&self, entity: &Entity) -> String {
        format!("main.{}", ident(&storage_table(&entity.table)))
    }

    fn filters_related_rows(&self) -> bool {
        false
    }
}

fn writer<'w>(
    set: &'w PolicySet,
    entity: &'w Entity,
    column: &'w dyn Fn(&str) -> String,
) -> ConditionWriter<'w> {
    ConditionWriter::new(&Sqlite, set, entity, column)
}

fn visible(writer: &ConditionWriter<'_>) -> String {
    match (writer.fence(), writer.allows(Operation::Read)) {
        (Some(fence), Some(read)) => format!("{fence} AND ({read})"),
        (None, Some(read)) => read,
        (_, None) => "0".into(),
    }
}

/// The existing rows of `entity` the current context may `op` (update or
/// delete), as a condition over the columns of `qualifier` (`OLD` in the
/// storage triggers, the target's name in a rewritten statement): the
/// fence first, then the read rule and `op`'s rules. `0` when no rule
/// allows `op`.
pub fn allowed_rows(set: &PolicySet, entity: &Entity, op: Operation, qualifier: &str) -> String {
    let column = |name: &str| format!("{qualifier}.{}", ident(name));
    let writer = writer(set, entity, &column);
    match writer.allows(op) {
        Some(allowed) => format!("({}) AND ({allowed})", visible(&writer)),
        None => "0".into(),
    }
}

/// The SQL that enforces `set` on a database holding `schema`.
pub fn compile(set: &PolicySet, schema: &SqliteSchema) -> Result<String, CompileError> {
    let mut out = String::new();
    out.push_str("-- generated by dnr: do not edit; re-run `dnr compile` instead\n");
    let _ = writeln!(
        out,
        "CREATE TABLE IF NOT EXISTS {} (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        ident(META_TABLE)
    );
    // Renaming must not rewrite the user's own views and triggers to point at
    // the storage table: they keep naming the (now enforced) table.
    out.push_str("PRAGMA legacy_alter_table = ON;\n");
    for table in &schema.no_longer_enforced {
        let _ = writeln!(
            out,
            "\n-- {} is no longer governed by a policy",
            comment(table)
        );
        let _ = writeln!(out, "DROP VIEW IF EXISTS {};", ident(table));
        drop_storage_triggers(&mut out, table);
        let _ = writeln!(
            out,
            "ALTER TABLE {} RENAME TO {};",
            ident(&storage_table(table)),
            ident(table)
        );
    }
    for entity in &set.entities {
        out.push('\n');
        EntityCompiler::new(set, entity, schema.tables.get(&entity.table))?
            .rekeyed(schema.storage_sql.get(&entity.table))
            .write(&mut out);
    }
    for (related, columns) in related_indexes(set) {
        let listed: Vec<String> = columns.iter().map(|c| ident(c)).collect();
        let _ = writeln!(
            out,
            "CREATE INDEX IF NOT EXISTS {} ON {} ({});",
            ident(&format!("_dnr_{}_{}_idx", related.table, columns.join("_"))),
            ident(&storage_table(&related.table)),
            listed.join(", ")
        );
    }
    out.push_str("PRAGMA legacy_alter_table = OFF;\n");
    let _ = writeln!(
        out,
        "INSERT OR REPLACE INTO {} (key, value) VALUES ('source', {});",
        ident(META_TABLE),
        literal(&set.to_string())
    );
    Ok(out)
}

/// The integer key column DNR numbers when an insert leaves it out (or
/// NULL), for a storage table whose primary key is the tenant column and
/// one INTEGER column: with a table-wide `PRIMARY KEY (id)` that column was
/// SQLite's rowid, which SQLite numbers itself; led by the tenant column it
/// is not, and ORMs (Django, better-sqlite3 users) still leave it out.
pub fn numbered_column<'t>(
    set: &PolicySet,
    entity: &Entity,
    table: &'t SqliteTable,
) -> Option<&'t str> {
    let primary: Vec<&SqliteColumn> = table.columns.iter().filter(|c| c.primary_key).collect();
    // The primary key in its order: the first unique key, when it holds
    // the primary key's columns.
    let key = table.unique_keys.first().filter(|key| {
        key.len() == primary.len() && primary.iter().all(|c| key.contains(&c.name))
    })?;
    let column = numbered(tenant_column(set, entity)?, key)?;
    table
        .columns
        .iter()
        .find(|c| c.name == column && c.declared_type.eq_ignore_ascii_case("INTEGER"))
        .map(|c| c.name.as_str())
}

/// The other column of a primary key of the tenant column and one more.
fn numbered<'k>(tenant: &str, primary_key: &'k [String]) -> Option<&'k str> {
    match primary_key {
        [first, column] if first.eq_ignore_ascii_case(tenant) => Some(column.as_str()),
        [column, last] if last.eq_ignore_ascii_case(tenant) => Some(column.as_str()),
        _ => None,
    }
}

/// The key [`numbered_column`] gives a new row of tenant `tenant` (SQL
/// text): one more than both the table's largest rowid and the tenant's
/// largest key, so that it is free in the tenant and also free as the
/// row's rowid, which the insert sets to it (an ORM reads the new row's key
/// from `last_insert_rowid()`, as it did when the key was the rowid). Both
/// maxima are index look-ups (the rowid, the primary key led by the
/// tenant). Rows of one statement are numbered apart by `offset` (SQL
/// text, 0 for the first row), when they are evaluated before any is
/// stored.
pub fn next_key(
    storage: &str,
    column: &str,
    tenant_column: &str,
    tenant: &str,
    offset: Option<&str>,
) -> String {
    let storage = format!("main.{}", ident(storage));
    let offset = offset.map(|o| format!(" + {o}")).unwrap_or_default();
    format!(
        "(SELECT max((SELECT coalesce(max(rowid), 0) FROM {storage}), (SELECT coalesce(max({}), 0) FROM {storage} WHERE {} = {tenant})) + 1{offset})",
        ident(column),
        ident(tenant_column)
    )
}

struct EntityCompiler<'a> {
    set: &'a PolicySet,
    entity: &'a Entity,
    existing: Option<&'a SqliteTable>,
    columns: Vec<String>,
    unique_keys: Vec<Vec<String>>,
    primary_key: Vec<String>,
    /// DEFAULT expressions by column: the storage table's own, or the
    /// declared ones for a table DNR creates.
    defaults: BTreeMap<String, String>,
    /// Each column's affinity (`dnr_affinity`'s name for it), but for BLOB.
    affinities: BTreeMap<String, &'static str>,
    tenant: Option<&'a str>,
    table: String,
    storage: String,
    /// The statements that rebuild an enforced storage table with
    /// table-wide keys into one with per-tenant keys, when it can be.
    rekey: Option<String>,
}

impl<'a> EntityCompiler<'a> {
    fn new(
        set: &'a PolicySet,
        entity: &'a Entity,
        existing: Option<&'a SqliteTable>,
    ) -> Result<Self, CompileError> {
        let tenant = tenant_column(set, entity);
        for name in std::iter::once(entity.table.as_str())
            .chain(entity.fields.iter().map(|f| f.name.as_str()))
        {
            if name.contains('\0') {
                return Err(CompileError::NulInName {
                    entity: entity.name.clone(),
                    name: name.replace('\0', "\\0"),
                });
            }
        }
        let (columns, unique_keys, primary_key) = match existing {
            Some(table) => (
                table
                    .columns
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>(),
                table.unique_keys.clone(),
                table
                    .columns
                    .iter()
                    .filter(|c| c.primary_key)
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>(),
            ),
            None if entity.fields.is_empty() => {
                return Err(CompileError::UnknownColumns {
                    entity: entity.name.clone(),
                });
            }
            None => {
                let mut columns: Vec<String> = Vec::new();
                if let Some(column) = tenant {
                    if entity.field(column).is_none() {
                        columns.push(column.to_string());
                    }
                }
                columns.extend(entity.fields.iter().map(|f| f.name.clone()));
                // Per tenant, the tenant column first (`per_tenant`).
                let keys = declared_keys(entity, tenant);
                let owned = |key: &Vec<&str>| key.iter().map(|c| c.to_string()).collect();
                let primary_key: Vec<String> = owned(&keys.primary);
                let unique_keys: Vec<Vec<String>> = keys.all().map(owned).collect();
                (columns, unique_keys, primary_key)
            }
        };
        let defaults = match existing {
            Some(table) => table
                .columns
                .iter()
                .filter_map(|c| c.default.clone().map(|d| (c.name.clone(), d)))
                .collect(),
            None => entity
                .fields
                .iter()
                .filter_map(|f| f.default.as_ref().map(|d| (f.name.clone(), default_sql(d))))
                .collect(),
        };
        let affinities = match existing {
            Some(table) => table
                .columns
                .iter()
                .filter_map(|c| Some((c.name.clone(), affinity(&c.declared_type)?)))
                .collect(),
            None => columns
                .iter()
                .filter_map(|c| {
                    let declared = entity.field(c).map_or("TEXT", |f| column_type(&f.ty));
                    Some((c.clone(), affinity(declared)?))
                })
                .collect(),
        };
        let compiler = EntityCompiler {
            set,
            entity,
            existing,
            defaults,
            affinities,
            table: ident(&entity.table),
            storage: ident(&storage_table(&entity.table)),
            columns,
            unique_keys,
            primary_key,
            tenant,
            rekey: None,
        };
        compiler.check_columns()?;
        Ok(compiler)
    }

    /// An enforced storage table whose keys an earlier DNR made table-wide
    /// (`sql`: its SQL and its indexes') is rebuilt with per-tenant keys,
    /// SQLite's way (create, copy, drop, rename, indexes again), before its
    /// view and triggers are made; they then work on the new keys. A table
    /// not in DNR's form keeps its keys.
    fn rekeyed(mut self, sql: Option<&StorageSql>) -> Self {
        let (Some(existing), Some(sql), Some(tenant)) = (self.existing, sql, self.tenant) else {
            return self;
        };
        if !existing.enforced {
            return self;
        }
        let storage = storage_table(&self.entity.table);
        let temporary = format!("{storage}_rekeyed");
        let Some(create) = rekeyed_table(self.set, self.entity, &storage, &sql.table, &temporary)
        else {
            return self;
        };
        for (old, new, _) in crate::compile::table_wide_keys(self.entity, Some(tenant)) {
            let owned = |key: &[&str]| key.iter().map(|c| c.to_string()).collect::<Vec<_>>();
            let (old, new) = (owned(&old), owned(&new));
            if self.primary_key == old {
                self.primary_key = new.clone();
            }
            for key in &mut self.unique_keys {
                if *key == old {
                    *key = new.clone();
                }
            }
        }
        let mut unique: Vec<Vec<String>> = Vec::new();
        for key in std::mem::take(&mut self.unique_keys) {
            if !unique.contains(&key) {
                unique.push(key);
            }
        }
        self.unique_keys = unique;
        let columns: Vec<String> = self.columns.iter().map(|c| ident(c)).collect();
        let columns = columns.join(", ");
        let mut out = String::new();
        let _ = writeln!(
            out,
            "-- the keys of {} made per tenant: its storage table rebuilt",
            comment(&self.entity.table)
        );
        let _ = writeln!(out, "{create};");
        let _ = writeln!(
            out,
            "INSERT INTO {} (rowid, {columns}) SELECT rowid, {columns} FROM {};",
            ident(&temporary),
            self.storage
        );
        let _ = writeln!(out, "DROP TABLE {};", self.storage);
        let _ = writeln!(
            out,
            "ALTER TABLE {} RENAME TO {};",
            ident(&temporary),
            self.storage
        );
        for index in &sql.indexes {
            let _ = writeln!(out, "{index};");
        }
        self.rekey = Some(out);
        self
    }

    /// Every column a rule or the fence names must exist.
    fn check_columns(&self) -> Result<(), CompileError> {
        let named: Vec<&str> = self
            .entity
            .rules
            .iter()
            .flat_map(|rule| rule.condition.fields())
            .collect();
        let missing = |name: &&str| !self.columns.iter().any(|c| c == name);
        let (entity, table) = (self.entity.name.clone(), self.entity.table.clone());
        if let Some(column) = self.tenant.filter(missing) {
            return Err(CompileError::MissingTenantColumn {
                entity,
                table,
                column: column.to_string(),
            });
        }
        match named.into_iter().find(missing) {
            Some(column) => Err(CompileError::MissingColumn {
                entity,
                table,
                column: column.to_string(),
            }),
            None => Ok(()),
        }
    }

    fn write(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "-- entity {} (table {})",
            self.entity.name,
            comment(&self.entity.table)
        );
        match self.existing {
            None => self.create_storage(out),
            Some(table) if table.enforced => {
                let _ = writeln!(out, "DROP VIEW IF EXISTS {};", self.table);
                if let Some(rebuild) = &self.rekey {
                    out.push_str(rebuild);
                }
            }
            Some(_) => {
                let _ = writeln!(
                    out,
                    "ALTER TABLE {} RENAME TO {};",
                    self.table, self.storage
                );
            }
        }
        if let Some(column) = self.tenant {
            let index = ident(&format!("_dnr_{}_{}_idx", self.entity.table, column));
            let _ = writeln!(
                out,
                "CREATE INDEX IF NOT EXISTS {index} ON {} ({});",
                self.storage,
                ident(column)
            );
        }
        self.view(out);
        self.insert_trigger(out);
        self.update_trigger(out);
        self.delete_trigger(out);
        self.storage_triggers(out);
    }

    fn create_storage(&self, out: &mut String) {
        let mut lines = Vec::new();
        for name in &self.columns {
            let field = self.entity.field(name);
            let mut line = format!(
                "{} {}",
                ident(name),
                field.map_or("TEXT", |f| column_type(&f.ty))
            );
            if let Some(FieldType::Enum(values)) = field.map(|f| &f.ty) {
                // `=` chained with OR, not IN: see `Dialect::expand_in_lists`.
                let items: Vec<String> = values
                    .iter()
                    .map(|v| format!("{} = {}", ident(name), literal(v)))
                    .collect();
                let _ = write!(line, " CHECK ({})", items.join(" OR "));
            }
            // A column of a composite primary key is NOT NULL, as in
            // PostgreSQL (SQLite lets NULL into a primary key that is not a
            // rowid alias).
            if field.is_some_and(|f| f.required)
                || Some(name.as_str()) == self.tenant
                || (self.primary_key.len() > 1 && self.primary_key.contains(name))
            {
                line.push_str(" NOT NULL");
            }
            if let Some(default) = field.and_then(|f| f.default.as_ref()) {
                let _ = write!(line, " DEFAULT {}", default_sql(default));
            }
            lines.push(line);
        }
        let listed = |key: &[String]| key.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
        if !self.primary_key.is_empty() {
            lines.push(format!("PRIMARY KEY ({})", listed(&self.primary_key)));
        }
        for key in self.unique_keys.iter().filter(|k| **k != self.primary_key) {
            lines.push(format!("UNIQUE ({})", listed(key)));
        }
        let _ = writeln!(
            out,
            "CREATE TABLE IF NOT EXISTS {} (\n  {}\n);",
            self.storage,
            lines.join(",\n  ")
        );
    }

    fn writer<'w>(&'w self, column: &'w dyn Fn(&str) -> String) -> ConditionWriter<'w> {
        writer(self.set, self.entity, column)
    }

    /// The rows the current context may see: fence and read rule.
    fn visible(&self, column: &dyn Fn(&str) -> String) -> String {
        visible(&self.writer(column))
    }

    fn view(&self, out: &mut String) {
        let columns: Vec<String> = self.columns.iter().map(|c| ident(c)).collect();
        let bare = |name: &str| ident(name);
        let writer = self.writer(&bare).qualified_by(self.storage.clone());
        let _ = writeln!(
            out,
            "CREATE VIEW {} AS SELECT {} FROM {}\n  WHERE {};",
            self.table,
            columns.join(", "),
            self.storage,
            visible(&writer)
        );
    }

    fn refuse(&self, op: Operation, why: &str) -> String {
        literal(&format!(
            "dnr: {} on `{}` refused {why}",
            op.as_str(),
            self.entity.name
        ))
    }

    /// The refusals of a new row `new` against the fence, readability and
    /// `op`'s rules.
    fn new_row_refusals(&self, op: Operation, new: &dyn Fn(&str) -> String) -> Vec<Refusal> {
        let writer = self.writer(new);
        let mut refusals = Vec::new();
        if let Some(fence) = writer.fence() {
            refusals.push(Refusal {
                condition: format!("({fence}) IS NOT TRUE"),
                message: self.refuse(op, "by the tenant fence"),
            });
        }
        refusals.push(match writer.allows(Operation::Read) {
            Some(read) => Refusal {
                condition: format!("({read}) IS NOT TRUE"),
                message: self.refuse(op, "because the written row would not be readable"),
            },
            None => Refusal {
                condition: "1".into(),
                message: self.refuse(op, "because it has no read rule"),
            },
        });
        refusals.extend(self.rule_refusals(op, new));
        refusals
    }

    /// The forbid and permit rules of `op` on one row.
    fn rule_refusals(&self, op: Operation, row: &dyn Fn(&str) -> String) -> Vec<Refusal> {
        let writer = self.writer(row);
        let mut refusals: Vec<Refusal> = self
            .entity
            .rules_for(RuleKind::Forbid, op)
            .map(|rule| Refusal {
                condition: format!("({}) IS TRUE", writer.expr(&rule.condition)),
                message: self.refuse(
                    op,
                    &format!(
                        "by `forbid {}: {}`",
                        op.as_str(),
                        rule_text(&rule.condition)
                    ),
                ),
            })
            .collect();
        refusals.push(match writer.permits(op) {
            Some(permit) => {
                let texts: Vec<String> = self
                    .entity
                    .rules_for(RuleKind::Permit, op)
                    .map(|r| rule_text(&r.condition))
                    .collect();
                Refusal {
                    condition: format!("({permit}) IS NOT TRUE"),
                    message: self
                        .refuse(op, &format!("by `{}: {}`", op.as_str(), texts.join(" | "))),
                }
            }
            None => Refusal {
                condition: "1".into(),
                message: self.refuse(op, &format!("(no `{}` rule: default deny)", op.as_str())),
            },
        });
        refusals
    }

    /// A write that would collide with an existing row on a unique key is
    /// refused unless that row is one the writer could overwrite: otherwise
    /// `INSERT OR REPLACE` would delete another tenant's row.
    fn conflict_refusals(&self, new: &dyn Fn(&str) -> String, changed_only: bool) -> Vec<Refusal> {
        let other = |name: &str| format!("_dnr_other.{}", ident(name));
        let writer = self.writer(&other);
        let overwritable = match writer.allows(Operation::Update) {
            Some(update) => format!("({}) AND ({update})", self.visible(&other)),
            None => "0".into(),
        };
        let mut refusals = Vec::new();
        for key in &self.unique_keys {
            let matches: Vec<String> = key
                .iter()
                .map(|c| format!("{} = {}", other(c), new(c)))
                .collect();
            let changed = if changed_only {
                let differs: Vec<String> = key
                    .iter()
                    .map(|c| format!("{} IS NOT OLD.{}", new(c), ident(c)))
                    .collect();
                format!("({}) AND ", differs.join(" OR "))
            } else {
                String::new()
            };
            let message = format!(
                "UNIQUE constraint failed: {}",
                key.iter()
                    .map(|c| format!("{}.{c}", self.entity.table))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            // The statement rewriter turns the guard off for a statement
            // that cannot replace (it aborts, ignores or upserts).
            refusals.push(Refusal {
                condition: format!(
                    "{changed}dnr_guarded() AND EXISTS (SELECT 1 FROM {} AS _dnr_other WHERE {} AND NOT (({overwritable}) IS TRUE))",
                    self.storage,
                    matches.join(" AND ")
                ),
                message: literal(&message),
            });
            // Replacing a row the writer may update is PostgreSQL's
            // `ON CONFLICT DO UPDATE` of every column: the new row must
            // also pass the update rules.
            if let (false, Some(update)) =
                (changed_only, self.writer(new).allows(Operation::Update))
            {
                let texts: Vec<String> = self
                    .entity
                    .rules_for(RuleKind::Permit, Operation::Update)
                    .map(|r| rule_text(&r.condition))
                    .collect();
                refusals.push(Refusal {
                    condition: format!(
                        "dnr_guarded() AND ({update}) IS NOT TRUE AND EXISTS (SELECT 1 FROM {} AS _dnr_other WHERE {})",
                        self.storage,
                        matches.join(" AND ")
                    ),
                    message: self.refuse(
                        Operation::Update,
                        &format!(
                            "(a replacing insert) by `update: {}`",
                            texts.join(" | ")
                        ),
                    ),
                });
            }
        }
        refusals
    }

    /// Everything an inserted row `new` must pass: the fence, the read and
    /// create rules, and the guard against replacing a row the writer may
    /// not overwrite. The values are checked as they will be stored, with
    /// their column's affinity applied (`'5'` given for an integer column is
    /// stored, and compared, as 5), as a BEFORE trigger would see them; uuid
    /// columns and the tenant hold `dnr_uuid`'s text already.
    fn insert_refusals(&self, new: &dyn Fn(&str) -> String) -> Vec<Refusal> {
        let stored = |name: &str| {
            let text = Some(name) == self.tenant
                || self
                    .entity
                    .field(name)
                    .is_some_and(|f| f.ty.class() == ValueClass::Uuid);
            match self.affinities.get(name) {
                Some(kind) if !text => format!("dnr_affinity({}, '{kind}')", new(name)),
                _ => new(name),
            }
        };
        let mut refusals = self.new_row_refusals(Operation::Create, &stored);
        refusals.extend(self.conflict_refusals(&stored, false));
        refusals
    }

    /// How the trigger reads a column of the incoming row: uuids normalized
    /// (or refused), and on insert a missing tenant filled from the context
    /// and other missing values from the column's default.
    fn incoming(&self, name: &str, insert: bool) -> String {
        let raw = format!("NEW.{}", ident(name));
        let is_uuid = self
            .entity
            .field(name)
            .is_some_and(|f| f.ty.class() == ValueClass::Uuid)
            || Some(name) == self.tenant;
        let value = if is_uuid {
            format!("dnr_uuid({raw})")
        } else {
            raw
        };
        if insert && Some(name) == self.tenant {
            format!("coalesce({value}, dnr_tenant())")
        } else if let (true, Some(next)) =
            (insert, self.next_key().filter(|_| self.is_numbered(name)))
        {
            format!("coalesce({value}, {next})")
        } else if let (true, Some(default)) = (insert, self.defaults.get(name)) {
            // An insert through the view cannot tell a missing column from
            // NULL: both take the column's default, as a missing one would.
            format!("coalesce({value}, {default})")
        } else {
            value
        }
    }

    /// The column DNR numbers on insert ([`numbered_column`]).
    fn numbered_column(&self) -> Option<&str> {
        let column = numbered(self.tenant?, &self.primary_key)?;
        let integer = match self.existing {
            Some(table) => table
                .columns
                .iter()
                .any(|c| c.name == column && c.declared_type.eq_ignore_ascii_case("INTEGER")),
            None => self
                .entity
                .field(column)
                .is_some_and(|f| f.ty == FieldType::Int),
        };
        integer.then_some(column)
    }

    fn is_numbered(&self, name: &str) -> bool {
        self.numbered_column() == Some(name)
    }

    /// The key a row inserted through the view gets when it has none.
    fn next_key(&self) -> Option<String> {
        let (column, tenant) = (self.numbered_column()?, self.tenant?);
        Some(next_key(
            &storage_table(&self.entity.table),
            column,
            tenant,
            &self.incoming(tenant, true),
            None,
        ))
    }

    fn trigger_name(&self, op: &str) -> String {
        ident(&format!("_dnr_{}_{op}", self.entity.table))
    }

    fn insert_trigger(&self, out: &mut String) {
        let new = |name: &str| self.incoming(name, true);
        let _ = writeln!(
            out,
            "CREATE TRIGGER {} INSTEAD OF INSERT ON {} BEGIN",
            self.trigger_name("insert"),
            self.table
        );
        let mut columns: Vec<String> = self.columns.iter().map(|c| ident(c)).collect();
        let mut values: Vec<String> = self.columns.iter().map(|c| new(c)).collect();
        if let (Some(column), Some(next)) = (self.numbered_column(), self.next_key()) {
            // A numbered row's rowid is its key (see `next_key`).
            columns.insert(0, "rowid".into());
            values.insert(
                0,
                format!("CASE WHEN NEW.{} IS NULL THEN {next} END", ident(column)),
            );
        }
        checked_last(&mut values, &self.insert_refusals(&new));
        let _ = writeln!(
            out,
            "  INSERT INTO {} ({}) VALUES ({});",
            self.storage,
            columns.join(", "),
            values.join(", ")
        );
        // The stored row's rowid, which SQLite forgets when the trigger
        // ends: the virtual tables that serve enforced names report it as
        // the insert's `last_insert_rowid()`. For a numbered key, the key
        // (the rowid only when DNR numbered it): an ORM takes it for the
        // new row's key (Django sets its pk from it, a given one too).
        match self.numbered_column() {
            Some(column) => {
                let _ = writeln!(
                    out,
                    "  SELECT dnr_note_rowid((SELECT {} FROM main.{} WHERE rowid = last_insert_rowid()));",
                    ident(column),
                    self.storage
                );
            }
            None => out.push_str("  SELECT dnr_note_rowid(last_insert_rowid());\n"),
        }
        out.push_str("END;\n");
    }

    fn update_trigger(&self, out: &mut String) {
        let new = |name: &str| self.incoming(name, false);
        let _ = writeln!(
            out,
            "CREATE TRIGGER {} INSTEAD OF UPDATE ON {} BEGIN",
            self.trigger_name("update"),
            self.table
        );
        let assignments: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} = {}", ident(c), new(c)))
            .collect();
        let _ = writeln!(
            out,
            "  UPDATE {} SET {} WHERE {};",
            self.storage,
            assignments.join(", "),
            self.old_row()
        );
        out.push_str("END;\n");
    }

    fn delete_trigger(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "CREATE TRIGGER {} INSTEAD OF DELETE ON {} BEGIN",
            self.trigger_name("delete"),
            self.table
        );
        let _ = writeln!(
            out,
            "  DELETE FROM {} WHERE {};",
            self.storage,
            self.old_row()
        );
        out.push_str("END;\n");
    }

    /// Whether the context may `op` the existing row `OLD`: it is visible
    /// and `op`'s rules allow it.
    fn old_row_allowed(&self, op: Operation) -> String {
        allowed_rows(self.set, self.entity, op, "OLD")
    }

    /// The checks every row written into storage meets, however it got
    /// there: a new row must pass the fence and the rules (or the statement
    /// fails), an existing row the context may not update or delete is left
    /// alone silently. An upsert's DO UPDATE on such a row is an error, as
    /// in PostgreSQL.
    fn storage_triggers(&self, out: &mut String) {
        let new = |name: &str| format!("NEW.{}", ident(name));
        let table = &self.entity.table;
        // No BEFORE INSERT trigger: its mere presence makes SQLite run every
        // insert in a statement journal (about twice the cost of a plain
        // insert), so inserts carry their checks in their values instead
        // (`insert_trigger`, `insert_refusal`).
        drop_storage_triggers(out, table);

        let old_ok = self.old_row_allowed(Operation::Update);
        let _ = writeln!(
            out,
            "CREATE TRIGGER {} BEFORE UPDATE ON {} BEGIN",
            ident(&storage_trigger(table, "update")),
            self.storage
        );
        let _ = writeln!(
            out,
            "  SELECT RAISE(ABORT, {}) WHERE dnr_upsert() AND ({old_ok}) IS NOT TRUE;",
            self.refuse(
                Operation::Update,
                "(ON CONFLICT DO UPDATE): the conflicting row is not one this context may update"
            )
        );
        let _ = writeln!(out, "  SELECT RAISE(IGNORE) WHERE ({old_ok}) IS NOT TRUE;");
        let mut refusals = self.new_row_refusals(Operation::Update, &new);
        refusals.extend(self.conflict_refusals(&new, true));
        raise_lines(out, &refusals);
        out.push_str("END;\n");

        let _ = writeln!(
            out,
            "CREATE TRIGGER {} BEFORE DELETE ON {} BEGIN",
            ident(&storage_trigger(table, "delete")),
            self.storage
        );
        let _ = writeln!(
            out,
            "  SELECT RAISE(IGNORE) WHERE ({}) IS NOT TRUE;",
            self.old_row_allowed(Operation::Delete)
        );
        out.push_str("END;\n");
    }

    /// Finds the storage row behind the view's OLD row: by primary key, or
    /// (for tables without one) by every column, one row at a time.
    fn old_row(&self) -> String {
        if !self.primary_key.is_empty() {
            let parts: Vec<String> = self
                .primary_key
                .iter()
                .map(|c| format!("{} = OLD.{}", ident(c), ident(c)))
                .collect();
            return parts.join(" AND ");
        }
        let parts: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} IS OLD.{}", ident(c), ident(c)))
            .collect();
        format!(
            "rowid = (SELECT rowid FROM {} WHERE {} LIMIT 1)",
            self.storage,
            parts.join(" AND ")
        )
    }
}

fn column_type(ty: &FieldType) -> &'static str {
    match ty {
        FieldType::Int | FieldType::Bool => "INTEGER",
        FieldType::Float => "REAL",
        FieldType::Decimal(_, _) => "NUMERIC",
        _ => "TEXT",
    }
}

fn default_sql(default: &Literal) -> String {
    match default {
        Literal::Str(text) => literal(text),
        Literal::Bool(b) => if *b { "1" } else { "0" }.into(),
        other => literal_text(other).to_uppercase(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const USERS: &str = "tenancy:\n  mode: row_level\n  column: tenant_id\n\nentity User:\n  table: users\n  id: int pk\n  email: str unique\n  access:\n    read: true\n    create: true\n";

    /// A table DNR creates has per-tenant keys, and its int key is
    /// numbered on insert (it is not the rowid any more).
    #[test]
    fn new_tables_have_per_tenant_keys_and_number_the_int_key() {
        let sql = compile(&crate::parse(USERS).unwrap(), &SqliteSchema::default()).unwrap();
        assert!(sql.contains("\"id\" INTEGER NOT NULL"), "{sql}");
        assert!(
            sql.contains(
                "PRIMARY KEY (\"tenant_id\", \"id\"),\n  UNIQUE (\"tenant_id\", \"email\")\n);"
            ),
            "{sql}"
        );
        assert!(sql.contains("INSERT INTO \"_dnr_users\" (rowid, \"tenant_id\", \"id\", \"email\") VALUES (CASE WHEN NEW.\"id\" IS NULL THEN (SELECT max((SELECT coalesce(max(rowid), 0) FROM main.\"_dnr_users\"), (SELECT coalesce(max(\"id\"), 0) FROM main.\"_dnr_users\" WHERE \"tenant_id\" = coalesce(dnr_uuid(NEW.\"tenant_id\"), dnr_tenant()))) + 1) END"), "{sql}");
        assert!(
            sql.contains("WHERE \"tenant_id\" = OLD.\"tenant_id\" AND \"id\" = OLD.\"id\";"),
            "{sql}"
        );
    }

    /// The rebuild's `CREATE TABLE`: DNR's earlier form with its keys made
    /// per tenant; anything else is left alone.
    #[test]
    fn rekeyed_table_rewrites_only_dnr_forms() {
        let set = crate::parse(USERS).unwrap();
        let entity = &set.entities[0];
        let old = "CREATE TABLE \"_dnr_users\" (\n  \"tenant_id\" TEXT NOT NULL,\n  \"id\" INTEGER,\n  \"email\" TEXT UNIQUE, due TEXT,\n  PRIMARY KEY (\"id\")\n)";
        assert_eq!(
            rekeyed_table(&set, entity, "_dnr_users", old, "_dnr_users_rekeyed").as_deref(),
            Some("CREATE TABLE \"_dnr_users_rekeyed\" (\n  \"tenant_id\" TEXT NOT NULL,\n  \"id\" INTEGER,\n  \"email\" TEXT, due TEXT,\n  PRIMARY KEY (\"tenant_id\", \"id\"),\n  UNIQUE (\"tenant_id\", \"email\")\n)")
        );
        // Already per tenant, or written by someone else: nothing to do.
        let new = "CREATE TABLE \"_dnr_users\" (\n  \"tenant_id\" TEXT NOT NULL,\n  \"id\" INTEGER NOT NULL,\n  \"email\" TEXT,\n  PRIMARY KEY (\"tenant_id\", \"id\"),\n  UNIQUE (\"tenant_id\", \"email\")\n)";
        assert_eq!(rekeyed_table(&set, entity, "_dnr_users", new, "x"), None);
        let other =
            "CREATE TABLE _dnr_users (tenant_id TEXT, id INTEGER PRIMARY KEY, email TEXT UNIQUE)";
        assert_eq!(rekeyed_table(&set, entity, "_dnr_users", other, "x"), None);
        // A unique primary key field: its UNIQUE goes, the primary key covers it.
        let source = USERS.replace("id: int pk", "id: uuid pk unique");
        let set = crate::parse(&source).unwrap();
        let old = "CREATE TABLE \"_dnr_users\" (\n  \"tenant_id\" TEXT NOT NULL,\n  \"id\" TEXT UNIQUE,\n  \"email\" TEXT UNIQUE,\n  PRIMARY KEY (\"id\")\n)";
        assert_eq!(
            rekeyed_table(&set, &set.entities[0], "_dnr_users", old, "n").as_deref(),
            Some("CREATE TABLE \"n\" (\n  \"tenant_id\" TEXT NOT NULL,\n  \"id\" TEXT,\n  \"email\" TEXT,\n  PRIMARY KEY (\"tenant_id\", \"id\"),\n  UNIQUE (\"tenant_id\", \"email\")\n)")
        );
    }

    /// A storage table with table-wide keys (an earlier DNR's) is compiled
    /// against the keys it has: no numbering (the id is the rowid), the
    /// guard on the table-wide key.
    #[test]
    fn table_wide_keys_of_an_existing_table_are_kept() {
        let column = |name: &str, primary_key, declared_type: &str| SqliteColumn {
            name: name.into(),
            primary_key,
            default: None,
            declared_type: declared_type.into(),
        };
        let existing = SqliteTable {
            columns: vec![
                column("tenant_id", false, "TEXT"),
                column("id", true, "INTEGER"),
                column("email", false, "TEXT"),
            ],
            enforced: true,
            unique_keys: vec![vec!["id".into()], vec!["email".into()]],
        };
        let set = crate::parse(USERS).unwrap();
        assert_eq!(numbered_column(&set, &set.entities[0], &existing), None);
        let mut schema = SqliteSchema::default();
        schema.tables.insert("users".into(), existing);
        let sql = compile(&set, &schema).unwrap();
        assert!(!sql.contains("rowid,"), "{sql}");
        assert!(
            sql.contains("'UNIQUE constraint failed: users.id'"),
            "{sql}"
        );
        assert!(sql.contains("WHERE \"id\" = OLD.\"id\";"), "{sql}");
    }
}
