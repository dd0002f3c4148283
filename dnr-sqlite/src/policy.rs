//! `apply`, `compile` and `check`: introspect the database, compile with
//! `dnr-core`, run the SQL all or nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use dnr_core::compile::quote::ident;
use dnr_core::compile::sqlite::{
    self, storage_table, SqliteColumn, SqliteSchema, SqliteTable, StorageSql, META_TABLE,
};
use dnr_core::value::parse_uuid;
use dnr_core::{Decision, PolicySet, RelatedRows, Row};

use dnr_core::ast::{Entity, ValueClass};
use dnr_core::check::tenant_column;

use crate::raw::{Db, Value};
use crate::rewrite::TableInfo;
use crate::{Error, Internal, State};

fn parse(source: &str) -> Result<PolicySet, Error> {
    dnr_core::parse(source).map_err(|errors| Error::new(format!("dnr: invalid policy: {errors}")))
}

/// One schema object, as `sqlite_master` lists it.
struct Object {
    kind: String,
    name: String,
}

/// The tables and views of `main`, by lowercase name (SQLite's names are
/// case-insensitive).
fn objects(db: Db) -> Result<BTreeMap<String, Object>, Error> {
    let rows = db.query(
        "SELECT type, name FROM main.sqlite_master WHERE type IN ('table', 'view')",
        &[],
    )?;
    let mut out = BTreeMap::new();
    for row in rows {
        if let (Some(Value::Text(kind)), Some(Value::Text(name))) = (row.first(), row.get(1)) {
            out.insert(
                name.to_ascii_lowercase(),
                Object {
                    kind: kind.clone(),
                    name: name.clone(),
                },
            );
        }
    }
    Ok(out)
}

/// The policy source recorded by the last apply, if any.
fn recorded_source(db: Db, objects: &BTreeMap<String, Object>) -> Result<Option<String>, Error> {
    if !objects.contains_key(META_TABLE) {
        return Ok(None);
    }
    let sql = format!(
        "SELECT value FROM main.{} WHERE key = 'source'",
        ident(META_TABLE)
    );
    let rows = db.query(&sql, &[])?;
    Ok(rows
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next())
        .and_then(|v| match v {
            Value::Text(text) => Some(text),
            _ => None,
        }))
}

/// Columns and unique keys of one existing table.
fn table(db: Db, name: &str) -> Result<SqliteTable, Error> {
    let mut columns = Vec::new();
    let mut primary_key: Vec<(i64, String)> = Vec::new();
    for row in db.query(
        "SELECT name, pk, dflt_value, type FROM pragma_table_info(?1, 'main') ORDER BY cid",
        &[name],
    )? {
        let (Some(Value::Text(column)), Some(pk)) = (row.first(), row.get(1)) else {
            continue;
        };
        let position = match pk {
            Value::Integer(n) => *n,
            _ => 0,
        };
        if position > 0 {
            primary_key.push((position, column.clone()));
        }
        // The expression exactly as the table's schema spells it, in
        // parentheses so that it stays one operand wherever it is used.
        let default = match row.get(2) {
            Some(Value::Text(expr)) => Some(format!("({expr})")),
            _ => None,
        };
        let declared_type = match row.get(3) {
            Some(Value::Text(declared)) => declared.clone(),
            _ => String::new(),
        };
        columns.push(SqliteColumn {
            name: column.clone(),
            primary_key: position > 0,
            default,
            declared_type,
        });
    }
    primary_key.sort();
    let mut unique_keys: Vec<Vec<String>> = Vec::new();
    if !primary_key.is_empty() {
        unique_keys.push(primary_key.into_iter().map(|(_, c)| c).collect());
    }
    for row in db.query(
        "SELECT name, \"unique\" FROM pragma_index_list(?1, 'main')",
        &[name],
    )? {
        let (Some(Value::Text(index)), Some(Value::Integer(1))) = (row.first(), row.get(1)) else {
            continue;
        };
        let mut key = Vec::new();
        for part in db.query(
            "SELECT cid, name FROM pragma_index_info(?1, 'main') ORDER BY seqno",
            &[index],
        )? {
            match (part.first(), part.get(1)) {
                (_, Some(Value::Text(column))) => key.push(column.clone()),
                (Some(Value::Integer(-1)), _) => key.push("rowid".into()),
                _ => {
                    return Err(Error::new(format!(
                        "dnr: table `{name}` has a unique index on an expression (`{index}`); dnr cannot guard it against INSERT OR REPLACE"
                    )))
                }
            }
        }
        if !key.is_empty() && !unique_keys.contains(&key) {
            unique_keys.push(key);
        }
    }
    Ok(SqliteTable {
        columns,
        enforced: false,
        unique_keys,
    })
}

/// The SQL of a storage table and of its indexes, as `sqlite_master` holds
/// it: the compiler rebuilds a table whose keys an earlier DNR made
/// table-wide from it (`sqlite::rekeyed_table`).
fn storage_sql(db: Db, storage: &str) -> Result<StorageSql, Error> {
    let texts = |kind: &str| -> Result<Vec<String>, Error> {
        Ok(db
            .query(
                "SELECT sql FROM main.sqlite_master WHERE type = ?1 AND tbl_name = ?2 AND sql IS NOT NULL ORDER BY name",
                &[kind, storage],
            )?
            .into_iter()
            .filter_map(|row| match row.into_iter().next() {
                Some(Value::Text(sql)) => Some(sql),
                _ => None,
            })
            .collect())
    };
    Ok(StorageSql {
        table: texts("table")?.into_iter().next().unwrap_or_default(),
        indexes: texts("index")?,
    })
}

/// What `compile` needs to know about the database for `set`, plus a note
/// per entity for the summary.
fn introspect(db: Db, set: &PolicySet) -> Result<(SqliteSchema, Vec<String>), Error> {
    let objects = objects(db)?;
    let mut schema = SqliteSchema::default();
    let mut notes = Vec::new();
    for entity in &set.entities {
        let name = &entity.table;
        let storage = storage_table(name);
        let plain = objects.get(&name.to_ascii_lowercase());
        let stored = objects.get(&storage.to_ascii_lowercase());
        fn kind(o: Option<&Object>) -> Option<&str> {
            o.map(|o| o.kind.as_str())
        }
        match (kind(plain), kind(stored)) {
            (Some("view") | None, Some("table")) => {
                let mut table = table(db, &storage)?;
                table.enforced = true;
                schema.tables.insert(name.clone(), table);
                schema
                    .storage_sql
                    .insert(name.clone(), storage_sql(db, &storage)?);
                notes.push(format!("{name} (re-applied)"));
            }
            (Some("table"), None) => {
                schema.tables.insert(name.clone(), table(db, name)?);
                notes.push(format!("{name} (existing table now enforced)"));
            }
            (None, None) => notes.push(format!("{name} (created)")),
            (Some("view"), None) => {
                return Err(Error::new(format!(
                    "dnr: `{}` is a view that dnr does not manage; only tables can be enforced",
                    plain.map_or(name.as_str(), |o| o.name.as_str())
                )))
            }
            _ => {
                return Err(Error::new(format!(
                    "dnr: cannot enforce `{name}`: `{name}` and `{storage}` both exist and are not a dnr view over its storage table"
                )))
            }
        }
    }
    if let Some(source) = recorded_source(db, &objects)? {
        let previous = dnr_core::parse(&source).map_err(|errors| {
            Error::new(format!(
                "dnr: the policies recorded in {META_TABLE} no longer parse: {errors}"
            ))
        })?;
        for entity in &previous.entities {
            let name = &entity.table;
            let still = set
                .entities
                .iter()
                .any(|e| e.table.eq_ignore_ascii_case(name));
            let stored = objects
                .get(&storage_table(name).to_ascii_lowercase())
                .is_some_and(|o| o.kind == "table");
            if !still && stored {
                schema.no_longer_enforced.push(name.clone());
                notes.push(format!("{name} (no longer enforced: rows handed back)"));
            }
        }
    }
    Ok((schema, notes))
}

pub(crate) fn compile(db: Db, state: &State, source: &str) -> Result<String, Error> {
    let set = parse(source)?;
    let _mutex = db.lock_mutex();
    let _internal = Internal::enter(state);
    let (schema, _) = introspect(db, &set)?;
    sqlite::compile(&set, &schema).map_err(|e| Error::new(format!("dnr: {e}")))
}

pub(crate) fn apply(db: Db, state: &State, source: &str) -> Result<String, Error> {
    let set = parse(source)?;
    let _mutex = db.lock_mutex();
    let _internal = Internal::enter(state);
    let legacy = db
        .query("PRAGMA legacy_alter_table", &[])?
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next());
    if state.lock().serves_tables() {
        // Rebuilt by `refresh` below, whatever the outcome.
        crate::authorizer::drop_locked_tables(db)?;
    }
    db.exec("SAVEPOINT dnr_apply")?;
    let outcome = introspect(db, &set).and_then(|(schema, notes)| {
        let sql = sqlite::compile(&set, &schema).map_err(|e| Error::new(format!("dnr: {e}")))?;
        db.exec(&sql)
            .map_err(|e| Error::new(format!("dnr: apply failed, nothing changed: {e}")))?;
        Ok(notes)
    });
    let restore = format!(
        "PRAGMA legacy_alter_table = {}",
        if legacy == Some(Value::Integer(1)) {
            1
        } else {
            0
        }
    );
    match outcome {
        Ok(notes) => {
            db.exec("RELEASE dnr_apply")?;
            db.exec(&restore)?;
            let count = set.entities.len();
            let mut inner = state.lock();
            inner.policies = Some((set.to_string(), Arc::new(set)));
            drop(inner);
            crate::authorizer::refresh(db, state)?;
            let noun = if count == 1 { "entity" } else { "entities" };
            Ok(format!("dnr: applied {count} {noun}: {}", notes.join(", ")))
        }
        Err(error) => {
            // Leaves the database as it was; the original error is the one
            // worth reporting.
            let _ = db.exec("ROLLBACK TO dnr_apply; RELEASE dnr_apply");
            let _ = db.exec(&restore);
            let _ = crate::authorizer::refresh(db, state);
            Err(error)
        }
    }
}

/// The applied policies: from the cache when `_dnr_meta` still holds the
/// same source, parsed again otherwise (another connection may have applied).
fn applied(db: Db, state: &State) -> Result<Arc<PolicySet>, Error> {
    match recorded(db, state)? {
        Some((_, set)) => Ok(set),
        None => Err(Error::new(
            "dnr: no policies have been applied to this database (run dnr_apply first)",
        )),
    }
}

/// The source recorded by the last apply and its policies, if any.
pub(crate) fn recorded(db: Db, state: &State) -> Result<Option<(String, Arc<PolicySet>)>, Error> {
    let source = {
        let _mutex = db.lock_mutex();
        let _internal = Internal::enter(state);
        let objects = objects(db)?;
        recorded_source(db, &objects)?
    };
    let Some(source) = source else {
        return Ok(None);
    };
    if let Some((cached, set)) = &state.lock().policies {
        if *cached == source {
            return Ok(Some((source, Arc::clone(set))));
        }
    }
    let set = Arc::new(parse(&source)?);
    state.lock().policies = Some((source.clone(), Arc::clone(&set)));
    Ok(Some((source, set)))
}

pub(crate) fn check(
    db: Db,
    state: &State,
    entity: &str,
    op: &str,
    record: &str,
) -> Result<Decision, Error> {
    let set = applied(db, state)?;
    let json: serde_json::Value = serde_json::from_str(record)
        .map_err(|e| Error::new(format!("dnr: the record is not valid JSON: {e}")))?;
    let request = set
        .request(entity, op, &json)
        .map_err(|e| Error::new(format!("dnr: {e}")))?;
    let (operation, row) = (request.op, request.row);
    let ctx = state.current(db.as_ptr()).ctx.clone();
    let related = related_rows(db, state, &set, entity)?;
    set.decide_with(entity, operation, &ctx, &row, &related)
        .map_err(|e| Error::new(format!("dnr: {e}")))
}

/// Every stored row of the entities `entity`'s `exists` rules look through
/// (the evaluator applies their fence and read rule itself).
fn related_rows(
    db: Db,
    state: &State,
    set: &PolicySet,
    entity: &str,
) -> Result<RelatedRows, Error> {
    let mut related = RelatedRows::new();
    let entities = set.related_entities(entity);
    if entities.is_empty() {
        return Ok(related);
    }
    let _mutex = db.lock_mutex();
    let _internal = Internal::enter(state);
    for entity in entities {
        let storage = storage_table(&entity.table);
        let columns: Vec<String> = table(db, &storage)?
            .columns
            .into_iter()
            .map(|c| c.name)
            .collect();
        if columns.is_empty() {
            continue;
        }
        let listed: Vec<String> = columns.iter().map(|c| ident(c)).collect();
        let rows = db.query(
            &format!("SELECT {} FROM main.{}", listed.join(", "), ident(&storage)),
            &[],
        )?;
        let rows = rows
            .into_iter()
            .map(|values| {
                let mut row = Row::new();
                for (column, value) in columns.iter().zip(values) {
                    row.set(column, stored_value(entity, column, value));
                }
                row
            })
            .collect();
        related.insert(&entity.name, rows);
    }
    Ok(related)
}

/// A stored value as the evaluator compares it: a uuid column's valid text
/// as a uuid (anything else stays text, which compares with nothing).
fn stored_value(entity: &Entity, column: &str, value: Value) -> dnr_core::Value {
    use dnr_core::Value as V;
    let is_uuid = entity
        .field(column)
        .is_some_and(|f| f.ty.class() == ValueClass::Uuid);
    match value {
        Value::Null => V::Null,
        Value::Integer(n) => V::Int(n),
        Value::Real(x) => V::Float(x),
        Value::Text(text) if is_uuid => match parse_uuid(&text) {
            Ok(uuid) => V::Uuid(uuid),
            Err(_) => V::Text(text),
        },
        Value::Text(text) => V::Text(text),
        Value::Blob(bytes) => V::Text(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// The enforced tables of `set` as the statement rewriter needs them.
pub(crate) fn rewrite_tables(
    db: Db,
    state: &State,
    set: &Arc<PolicySet>,
) -> Result<BTreeMap<String, TableInfo>, Error> {
    let _mutex = db.lock_mutex();
    let _internal = Internal::enter(state);
    let mut tables = BTreeMap::new();
    for (index, entity) in set.entities.iter().enumerate() {
        let storage = storage_table(&entity.table);
        let table = table(db, &storage)?;
        if table.columns.is_empty() {
            continue;
        }
        let columns = table.columns.iter().map(|c| c.name.clone()).collect();
        let schema = SqliteTable {
            enforced: true,
            ..table.clone()
        };
        let defaults = table
            .columns
            .iter()
            .filter_map(|c| Some((c.name.to_ascii_lowercase(), c.default.clone()?)))
            .collect();
        let tenant = tenant_column(set, entity).map(str::to_string);
        let uuid_columns = entity
            .fields
            .iter()
            .filter(|f| f.ty.class() == ValueClass::Uuid)
            .map(|f| f.name.to_ascii_lowercase())
            .collect();
        // A unique constraint declared ON CONFLICT REPLACE makes a plain
        // INSERT replace: the storage triggers must guard every key then.
        let replaces = db
            .query(
                "SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = ?1",
                &[storage.as_str()],
            )?
            .into_iter()
            .filter_map(|row| match row.into_iter().next() {
                Some(Value::Text(sql)) => Some(sql),
                _ => None,
            })
            .any(|sql| {
                crate::read::tokens(&sql).map_or(true, |tokens| {
                    tokens.iter().any(|l| {
                        matches!(&l.token.token, sqlparser::tokenizer::Token::Word(w)
                            if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("replace"))
                    })
                })
            });
        tables.insert(
            entity.table.to_ascii_lowercase(),
            TableInfo {
                policy: Arc::clone(set),
                entity: index,
                storage,
                columns,
                uuid_columns,
                tenant,
                defaults,
                replaces,
                schema,
            },
        );
    }
    Ok(tables)
}
