//! PostgreSQL: native Row Level Security.
//!
//! Per entity: the declared table (if missing), ENABLE and FORCE RLS (so the
//! owner is fenced too), the tenant fence as a RESTRICTIVE policy, one
//! permissive policy per operation, a trigger that fills a missing tenant
//! column, and an index on the tenant column. Context reads are wrapped in
//! `(SELECT ...)` so PostgreSQL evaluates them once per statement (an
//! InitPlan) and can use the index.

use std::fmt::Write;

use crate::ast::*;
use crate::check::tenant_column;
use crate::compile::expr::{ConditionWriter, Dialect};
use crate::compile::quote::{comment, ident, literal};
use crate::compile::{declared_keys, related_indexes, table_wide_keys, CompileError};
use crate::limits::MAX_IDENTIFIER_BYTES;
use crate::print::literal_text;

/// The tenant column's default on Citus, as `pg_get_expr` prints it.
const CITUS_TENANT_DEFAULT: &str = "dnr.current_tenant()";

/// Names of the policies DNR creates; `apply` drops these and nothing else.
pub const POLICY_NAMES: [&str; 6] = [
    "dnr_fence",
    "dnr_read",
    "dnr_create",
    "dnr_update",
    "dnr_delete",
    "dnr_maintain",
];

/// Maintenance (moving, restoring or erasing a tenant: `dnr tenants
/// export`, `import`, `drop --erase`) is on for the transaction.
const MAINTENANCE: &str = "pg_catalog.current_setting('dnr.maintenance', true) = 'on'";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Reads the context through the extension's `dnr.*` functions.
    Extension,
    /// Reads the `dnr.*` settings directly; needs no extension.
    Plain,
    /// The extension on a Citus cluster: Citus refuses subqueries in the
    /// policies of distributed tables and triggers on them, so the context
    /// readers are called directly (once per row rather than once per
    /// statement; each worker reads its own copy of the context, which
    /// DNR's setters propagate) and the tenant column is filled by its
    /// DEFAULT, which Citus evaluates on the coordinator to route the row.
    Citus,
}

impl Dialect for Flavor {
    fn current_tenant(&self) -> String {
        match self {
            Flavor::Extension => "(SELECT dnr.current_tenant())".into(),
            Flavor::Citus => "dnr.current_tenant()".into(),
            Flavor::Plain => {
                "(SELECT nullif(current_setting('dnr.tenant_id', true), '')::uuid)".into()
            }
        }
    }

    fn current_user(&self) -> String {
        match self {
            Flavor::Extension => "(SELECT dnr.current_user_id())".into(),
            Flavor::Citus => "dnr.current_user_id()".into(),
            Flavor::Plain => {
                "(SELECT nullif(current_setting('dnr.user_id', true), '')::uuid)".into()
            }
        }
    }

    fn has_role(&self, role: &str) -> String {
        match self {
            Flavor::Extension => format!("(SELECT dnr.has_role({}))", literal(role)),
            Flavor::Citus => format!("dnr.has_role({})", literal(role)),
            Flavor::Plain => format!(
                "(SELECT coalesce({} = ANY (string_to_array(nullif(current_setting('dnr.roles', true), ''), ',')), false))",
                literal(role)
            ),
        }
    }

    fn authenticated(&self) -> String {
        match self {
            Flavor::Extension => "(SELECT dnr.authenticated())".into(),
            Flavor::Citus => "dnr.authenticated()".into(),
            Flavor::Plain => {
                "(SELECT nullif(current_setting('dnr.user_id', true), '') IS NOT NULL)".into()
            }
        }
    }

    fn boolean(&self, value: bool) -> &'static str {
        if value {
            "true"
        } else {
            "false"
        }
    }

    fn uuid_literal(&self, uuid: &uuid::Uuid) -> String {
        format!("'{}'::uuid", uuid.hyphenated())
    }

    fn binary_collation(&self) -> &'static str {
        " COLLATE \"C\""
    }

    fn collate_equality(&self) -> bool {
        false
    }

    fn expand_in_lists(&self) -> bool {
        false
    }

    fn related_table(&self, entity: &Entity) -> String {
        ident(&entity.table)
    }

    fn filters_related_rows(&self) -> bool {
        true
    }

    fn not_true(&self, condition: &str) -> String {
        match self {
            // Citus 13.2 cannot copy a policy holding `IS [NOT] TRUE` to
            // its shards ("unrecognized node type").
            Flavor::Citus => format!("NOT coalesce(({condition}), false)"),
            Flavor::Extension | Flavor::Plain => format!("({condition}) IS NOT TRUE"),
        }
    }
}

pub fn compile(set: &PolicySet, flavor: Flavor) -> Result<String, CompileError> {
    if flavor == Flavor::Citus {
        // Citus: "Subqueries are not supported in policies on distributed
        // tables".
        if let Some(entity) = set.entities.iter().find(|e| {
            e.rules
                .iter()
                .any(|r| !r.condition.exists_clauses().is_empty())
        }) {
            return Err(CompileError::CitusExists {
                entity: entity.name.clone(),
            });
        }
    }
    let mut out = String::new();
    out.push_str("-- generated by dnr: do not edit; re-run `dnr compile` instead\n");
    if flavor == Flavor::Plain
        && set
            .entities
            .iter()
            .any(|e| fill_arguments(set, e).is_some())
    {
        out.push_str(PLAIN_PRELUDE);
    }
    // Tables first: a policy's `exists` names another entity's table, which
    // must exist when the policy is created.
    for entity in set.entities.iter().filter(|e| !e.fields.is_empty()) {
        let _ = writeln!(
            out,
            "\n-- table of entity {} ({})",
            entity.name,
            comment(&entity.table)
        );
        create_table(&mut out, entity, tenant_column(set, entity), flavor);
        if flavor != Flavor::Citus {
            rekey_table(&mut out, entity, tenant_column(set, entity));
        }
    }
    for entity in &set.entities {
        out.push('\n');
        entity_sql(&mut out, set, entity, flavor);
    }
    for (related, columns) in related_indexes(set) {
        related_index(&mut out, related, &columns);
    }
    Ok(out)
}

/// The statements of compiled SQL, each without its `;`: split outside
/// quotes ('...', "...", $tag$...$tag$) and `--` comments. Citus propagates a
/// DDL command to the shards by its own text, so a script run as one
/// string there must run statement by statement.
pub fn statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut at) = (0, 0);
    while at < bytes.len() {
        match bytes[at] {
            quote @ (b'\'' | b'"') => {
                at += 1;
                while at < bytes.len() && bytes[at] != quote {
                    at += 1;
                }
                at += 1;
            }
            b'-' if bytes.get(at + 1) == Some(&b'-') => {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
            }
            b'$' => {
                let tag_end = sql[at + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map(|end| at + 1 + end);
                match tag_end.filter(|&end| bytes.get(end) == Some(&b'$')) {
                    Some(end) => {
                        let tag = &sql[at..=end];
                        at = sql[end + 1..]
                            .find(tag)
                            .map_or(bytes.len(), |close| end + 1 + close + tag.len());
                    }
                    None => at += 1,
                }
            }
            b';' => {
                let statement = sql[start..at].trim();
                if !statement.is_empty() && !is_comment_only(statement) {
                    out.push(statement);
                }
                at += 1;
                start = at;
            }
            _ => at += 1,
        }
    }
    let rest = sql[start.min(sql.len())..].trim();
    if !rest.is_empty() && !is_comment_only(rest) {
        out.push(rest);
    }
    out
}

fn is_comment_only(text: &str) -> bool {
    text.lines()
        .all(|line| line.trim().is_empty() || line.trim_start().starts_with("--"))
}

/// An index on the columns `exists` matches `related` on, unless an index
/// (DNR's or the application's) already leads with them.
fn related_index(out: &mut String, related: &Entity, columns: &[&str]) {
    let table = ident(&related.table);
    let index = ident(&index_name(&related.table, &columns.join("_")));
    let leading: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(position, column)| {
            format!(
                "i.indkey[{position}] = (SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attname = {})",
                literal(column)
            )
        })
        .collect();
    let listed: Vec<String> = columns.iter().map(|c| ident(c)).collect();
    let _ = writeln!(
        out,
        "\n-- the columns `exists` matches {} on
DO $dnr$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = {}::regclass AND i.indpred IS NULL
      AND {}) THEN
    CREATE INDEX {index} ON {table} ({});
  END IF;
END
$dnr$;",
        comment(&related.table),
        literal(&table),
        leading.join("\n      AND "),
        listed.join(", ")
    );
}

/// The plain flavor's stand-in for the extension's `dnr.fill_tenant()`: on
/// insert, a NULL tenant column (argument 1, empty for none) takes the
/// current tenant and each NULL defaulted column (then pairs of column and
/// default) its default. Omitted columns already got their DEFAULT.
const PLAIN_PRELUDE: &str = "
CREATE SCHEMA IF NOT EXISTS dnr;
CREATE OR REPLACE FUNCTION dnr.fill_tenant() RETURNS trigger LANGUAGE plpgsql AS $dnr$
DECLARE
  v_row jsonb := to_jsonb(NEW);
  v_patch jsonb := '{}';
  i int := 1;
BEGIN
  IF TG_ARGV[0] <> '' AND v_row -> TG_ARGV[0] = 'null'::jsonb THEN
    v_patch := jsonb_build_object(TG_ARGV[0], nullif(current_setting('dnr.tenant_id', true), '')::uuid);
  END IF;
  WHILE i + 1 < TG_NARGS LOOP
    IF v_row -> TG_ARGV[i] = 'null'::jsonb THEN
      v_patch := v_patch || jsonb_build_object(TG_ARGV[i], TG_ARGV[i + 1]);
    END IF;
    i := i + 2;
  END LOOP;
  IF v_patch <> '{}'::jsonb THEN
    NEW := jsonb_populate_record(NEW, v_patch);
  END IF;
  RETURN NEW;
END
$dnr$;
";

fn entity_sql(out: &mut String, set: &PolicySet, entity: &Entity, flavor: Flavor) {
    let table = ident(&entity.table);
    let tenant = tenant_column(set, entity);
    let _ = writeln!(
        out,
        "-- entity {} (table {})",
        entity.name,
        comment(&entity.table)
    );
    let _ = writeln!(out, "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;");
    let _ = writeln!(out, "ALTER TABLE {table} FORCE ROW LEVEL SECURITY;");
    for name in POLICY_NAMES {
        let _ = writeln!(out, "DROP POLICY IF EXISTS {name} ON {table};");
    }
    let column = |name: &str| ident(name);
    let writer = ConditionWriter::new(&flavor, set, entity, &column).qualified_by(table.clone());
    let fence = writer
        .fence()
        .or_else(|| schema_fence(set, &entity.table, flavor));
    // Citus copies policies to the shards without `AS RESTRICTIVE` (13.2:
    // the fence would become one more permissive policy, OR'd with the
    // rules): there the fence is part of every permissive policy instead.
    let fenced_rules = flavor == Flavor::Citus;
    if let Some(fence) = fence.as_ref().filter(|_| !fenced_rules) {
        let _ = writeln!(
            out,
            "CREATE POLICY dnr_fence ON {table} AS RESTRICTIVE FOR ALL\n  USING ({fence})\n  WITH CHECK ({fence});"
        );
    }
    // A row is usable only when readable: the read rule is part of every
    // operation's policy, so RETURNING and plain statements agree.
    let visible = match (writer.allows(Operation::Read), &fence) {
        (Some(read), Some(fence)) if fenced_rules => Some(format!("({fence}) AND ({read})")),
        (read, _) => read,
    };
    if let Some(visible) = visible {
        let _ = writeln!(
            out,
            "CREATE POLICY dnr_read ON {table} FOR SELECT\n  USING ({visible});"
        );
        let with_rule = |op| {
            writer
                .allows(op)
                .map(|rule| format!("({visible}) AND ({rule})"))
        };
        if let Some(check) = with_rule(Operation::Create) {
            let _ = writeln!(
                out,
                "CREATE POLICY dnr_create ON {table} FOR INSERT\n  WITH CHECK ({check});"
            );
        }
        if let Some(check) = with_rule(Operation::Update) {
            let _ = writeln!(
                out,
                "CREATE POLICY dnr_update ON {table} FOR UPDATE\n  USING ({check})\n  WITH CHECK ({check});"
            );
        }
        if let Some(check) = with_rule(Operation::Delete) {
            let _ = writeln!(
                out,
                "CREATE POLICY dnr_delete ON {table} FOR DELETE\n  USING ({check});"
            );
        }
    }
    // The role that applies the policy (the tables' owner) moves, restores
    // and erases a tenant's rows in maintenance: past the row rules, never
    // past the tenant fence (its context is the tenant moved). Another
    // role gains nothing: the policy is not its, and the owner could turn
    // row security off anyway.
    let maintain = match &fence {
        Some(fence) if fenced_rules => format!("({fence}) AND {MAINTENANCE}"),
        _ => MAINTENANCE.to_string(),
    };
    let _ = writeln!(
        out,
        "CREATE POLICY dnr_maintain ON {table} FOR ALL TO CURRENT_USER\n  USING ({maintain})\n  WITH CHECK ({maintain});"
    );
    if flavor == Flavor::Citus {
        // No trigger (Citus refuses to distribute a table with one, and
        // any trigger statement on a distributed one): the tenant column's
        // DEFAULT fills an omitted value.
        // Set only when missing: Citus refuses any ALTER of the
        // distribution column of a distributed table.
        if let Some(column) = tenant {
            let _ = writeln!(
                out,
                "DO $dnr$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
      WHERE d.adrelid = {}::regclass AND a.attname = {} AND pg_get_expr(d.adbin, d.adrelid) = {}) THEN
    ALTER TABLE {table} ALTER COLUMN {} SET DEFAULT {CITUS_TENANT_DEFAULT};
  END IF;
END
$dnr$;",
                literal(&table),
                literal(column),
                literal(CITUS_TENANT_DEFAULT),
                ident(column)
            );
        }
    } else if let Some(arguments) = fill_arguments(set, entity) {
        let _ = writeln!(out, "DROP TRIGGER IF EXISTS dnr_fill_tenant ON {table};");
        let _ = writeln!(
            out,
            "CREATE TRIGGER dnr_fill_tenant BEFORE INSERT ON {table}\n  FOR EACH ROW EXECUTE FUNCTION dnr.fill_tenant({arguments});"
        );
    }
    if let Some(column) = tenant {
        let index = ident(&index_name(&entity.table, column));
        let _ = writeln!(
            out,
            "CREATE INDEX IF NOT EXISTS {index} ON {table} ({});",
            ident(column)
        );
    }
}

/// The fence of a table in a tenant's schema (`tenancy: mode: schema`): the
/// context's tenant must be the tenant whose schema (`tenant_<32 hex>`,
/// as `dnr.create_tenant` names it) holds the table. Without it, a role
/// that serves every tenant (USAGE on every tenant schema) reaches another
/// tenant's table by a qualified name or a `search_path` change. The table
/// is named as a `regclass` constant, which PostgreSQL resolves when the
/// policy is created (in the tenant's schema) and stores as the table's
/// oid. Evaluated once per statement (an InitPlan), except on Citus, which
/// refuses subqueries in the policies of distributed tables (there the
/// extension's `dnr.relation_tenant` is called per row).
fn schema_fence(set: &PolicySet, table: &str, flavor: Flavor) -> Option<String> {
    if set.tenancy.mode != TenantMode::Schema {
        return None;
    }
    let relation = format!("{}::regclass", literal(&ident(table)));
    let schema_tenant = match flavor {
        // The row's own table: a regclass constant is printed qualified
        // when Citus sends the policy to its workers, where no relation of
        // that name exists (the shards are named apart, in the same schema).
        Flavor::Citus => "dnr.relation_tenant(tableoid::regclass)".to_string(),
        // Plain SQL for the extension too: the library also serves 0.1.0's
        // SQL (before ALTER EXTENSION dnr UPDATE), which has no
        // dnr.relation_tenant.
        Flavor::Extension | Flavor::Plain => format!(
            "(SELECT CASE WHEN n.nspname ~ '^tenant_[0-9a-f]{{32}}$' THEN substr(n.nspname, 8)::uuid END \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = {relation})"
        ),
    };
    Some(format!("{} = {schema_tenant}", flavor.current_tenant()))
}

/// `<table>_<column>_dnr_idx`, kept within PostgreSQL's 63 bytes: a longer
/// name would be truncated, and `CREATE INDEX IF NOT EXISTS` would then find
/// another table's index of the same truncated name and skip this one. Long
/// names keep a prefix and end in a hash of the whole name.
fn index_name(table: &str, column: &str) -> String {
    let name = format!("{table}_{column}_dnr_idx");
    if name.len() <= MAX_IDENTIFIER_BYTES {
        return name;
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let suffix = format!("_{:08x}_dnr_idx", hash as u32);
    let mut end = MAX_IDENTIFIER_BYTES - suffix.len();
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{suffix}", &name[..end])
}

/// The fill trigger's arguments, when the entity needs one: the tenant column
/// (or '') and then each defaulted column with its default, so that an
/// explicit NULL gets what an omitted value gets, as in every engine. json
/// fields are left out (their default is JSON, not text).
fn fill_arguments(set: &PolicySet, entity: &Entity) -> Option<String> {
    let tenant = tenant_column(set, entity);
    let mut arguments = vec![literal(tenant.unwrap_or(""))];
    for field in &entity.fields {
        let default = match &field.default {
            Some(Literal::Null) | None => continue,
            Some(_) if field.ty == FieldType::Json => continue,
            Some(Literal::Str(text)) => text.clone(),
            Some(other) => literal_text(other),
        };
        arguments.push(literal(&field.name));
        arguments.push(literal(&default));
    }
    (tenant.is_some() || arguments.len() > 1).then(|| arguments.join(", "))
}

fn create_table(out: &mut String, entity: &Entity, tenant: Option<&str>, flavor: Flavor) {
    // Unique keys are per tenant (`per_tenant`), the tenant column first;
    // on Citus, which distributes by the tenant column, a distributed
    // table's unique keys must include it anyway.
    let keys = declared_keys(entity, tenant);
    let mut columns: Vec<String> = Vec::new();
    let tenant_default = if flavor == Flavor::Citus {
        format!(" DEFAULT {CITUS_TENANT_DEFAULT}")
    } else {
        String::new()
    };
    if let Some(column) = tenant {
        if entity.field(column).is_none() {
            columns.push(format!("{} uuid NOT NULL{tenant_default}", ident(column)));
        }
    }
    for field in &entity.fields {
        let mut line = format!("{} {}", ident(&field.name), column_type(&field.ty));
        if let FieldType::Enum(values) = &field.ty {
            let items: Vec<String> = values.iter().map(|v| literal(v)).collect();
            let _ = write!(
                line,
                " CHECK ({} IN ({}))",
                ident(&field.name),
                items.join(", ")
            );
        }
        if field.required || Some(field.name.as_str()) == tenant {
            line.push_str(" NOT NULL");
        }
        if let Some(default) = &field.default {
            let _ = write!(line, " DEFAULT {}", default_sql(default, &field.ty));
        }
        columns.push(line);
    }
    let listed = |key: &[&str]| key.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
    if !keys.primary.is_empty() {
        columns.push(format!("PRIMARY KEY ({})", listed(&keys.primary)));
    }
    for key in &keys.unique {
        columns.push(format!("UNIQUE ({})", listed(key)));
    }
    let _ = writeln!(
        out,
        "CREATE TABLE IF NOT EXISTS {} (\n  {}\n);",
        ident(&entity.table),
        columns.join(",\n  ")
    );
}

/// Moves the keys an earlier DNR created table-wide (`PRIMARY KEY (id)`,
/// `UNIQUE (email)`) of an existing table to their per-tenant form
/// (`PRIMARY KEY (tenant_id, id)`): each unique or primary key constraint
/// on exactly a declared key's columns is dropped and the per-tenant one
/// added (unless the table has it already), in the apply's transaction. A
/// foreign key that references the old key is an error naming it, raised
/// before anything changed. Citus tables had per-tenant keys from the
/// start.
fn rekey_table(out: &mut String, entity: &Entity, tenant: Option<&str>) {
    let keys = table_wide_keys(entity, tenant);
    if keys.is_empty() {
        return;
    }
    let array = |key: &[&str]| {
        let items: Vec<String> = key.iter().map(|c| literal(c)).collect();
        format!("ARRAY[{}]::text[]", items.join(", "))
    };
    let rows: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(n, (old, new, primary))| format!("({n}, {}, {}, {primary})", array(old), array(new)))
        .collect();
    let columns = "(SELECT array_agg(a.attname::text ORDER BY k.n) FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, n) \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum)";
    let _ = writeln!(
        out,
        "DO $dnr$
DECLARE
  v_table regclass := {table}::regclass;
  v_key record;
  v_old record;
  v_ref record;
BEGIN
  FOR v_key IN SELECT * FROM (VALUES {rows}) AS k(n, old_columns, new_columns, is_primary) ORDER BY n LOOP
    SELECT c.conname, c.conindid INTO v_old FROM pg_catalog.pg_constraint c
      WHERE c.conrelid = v_table AND c.contype IN ('p', 'u') AND {columns} = v_key.old_columns;
    CONTINUE WHEN NOT FOUND;
    SELECT f.conname, f.conrelid::regclass AS referencing INTO v_ref FROM pg_catalog.pg_constraint f
      WHERE f.contype = 'f' AND f.conindid = v_old.conindid LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'dnr: cannot make the key (%) of table % unique per tenant (%): foreign key % of table % references it',
          array_to_string(v_key.old_columns, ', '), v_table, array_to_string(v_key.new_columns, ', '), v_ref.conname, v_ref.referencing
        USING ERRCODE = 'dependent_objects_still_exist',
          HINT = 'drop that foreign key, or make it reference (' || array_to_string(v_key.new_columns, ', ') || '), then apply again; nothing was changed';
    END IF;
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', v_table, v_old.conname);
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
        WHERE c.conrelid = v_table AND c.contype IN ('p', 'u') AND {columns} = v_key.new_columns) THEN
      EXECUTE format('ALTER TABLE %s ADD %s (%s)', v_table,
          CASE WHEN v_key.is_primary AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
              WHERE c.conrelid = v_table AND c.contype = 'p') THEN 'PRIMARY KEY' ELSE 'UNIQUE' END,
          (SELECT string_agg(quote_ident(c), ', ' ORDER BY n) FROM unnest(v_key.new_columns) WITH ORDINALITY AS u(c, n)));
    END IF;
  END LOOP;
END
$dnr$;",
        table = literal(&ident(&entity.table)),
        rows = rows.join(", "),
    );
}

fn column_type(ty: &FieldType) -> String {
    match ty {
        FieldType::Uuid | FieldType::Ref(_) => "uuid".into(),
        FieldType::Str(Some(n)) => format!("varchar({n})"),
        FieldType::Str(None) | FieldType::Text | FieldType::Enum(_) => "text".into(),
        FieldType::Int => "bigint".into(),
        FieldType::Float => "double precision".into(),
        FieldType::Decimal(p, s) => format!("numeric({p},{s})"),
        FieldType::Bool => "boolean".into(),
        FieldType::Date => "date".into(),
        FieldType::DateTime => "timestamptz".into(),
        FieldType::Json => "jsonb".into(),
    }
}

fn default_sql(default: &Literal, ty: &FieldType) -> String {
    match (default, ty.class()) {
        (Literal::Str(text), ValueClass::Uuid) => format!("{}::uuid", literal(text)),
        (Literal::Str(text), _) => literal(text),
        (other, _) => literal_text(other).to_uppercase(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SCHEMA_MODE: &str = "tenancy:\n  mode: schema\n\nentity Note:\n  table: notes\n  id: int pk\n  access:\n    read: true\n";

    fn compiled(source: &str, flavor: Flavor) -> String {
        compile(&crate::parse(source).unwrap(), flavor).unwrap()
    }

    /// Tables of a tenant schema carry the schema fence in every flavor:
    /// restrictive (evaluated once per statement) on PostgreSQL, part of
    /// every permissive policy on Citus.
    #[test]
    fn schema_mode_tables_are_fenced_by_their_schema() {
        let sql = compiled(SCHEMA_MODE, Flavor::Extension);
        assert!(sql.contains(
            "CREATE POLICY dnr_fence ON \"notes\" AS RESTRICTIVE FOR ALL\n  USING ((SELECT dnr.current_tenant()) = (SELECT CASE WHEN n.nspname ~ '^tenant_[0-9a-f]{32}$' THEN substr(n.nspname, 8)::uuid END FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = '\"notes\"'::regclass))"
        ), "{sql}");
        let plain = compiled(SCHEMA_MODE, Flavor::Plain);
        assert!(
            plain.contains("CREATE POLICY dnr_fence ON \"notes\" AS RESTRICTIVE"),
            "{plain}"
        );
        assert!(
            plain.contains("current_setting('dnr.tenant_id', true)"),
            "{plain}"
        );
        let citus = compiled(SCHEMA_MODE, Flavor::Citus);
        assert!(!citus.contains("AS RESTRICTIVE"), "{citus}");
        assert!(citus.contains(
            "CREATE POLICY dnr_read ON \"notes\" FOR SELECT\n  USING ((dnr.current_tenant() = dnr.relation_tenant(tableoid::regclass)) AND (true))"
        ), "{citus}");
    }

    /// A table name that needs quoting is quoted inside the literal.
    #[test]
    fn schema_fence_quotes_the_table_name() {
        let source = SCHEMA_MODE.replace("table: notes", "table: \"Odd'Name\"");
        let Ok(set) = crate::parse(&source) else {
            return; // such names are refused by the front end
        };
        let sql = compile(&set, Flavor::Extension).unwrap();
        assert!(sql.contains("'\"Odd''Name\"'::regclass"), "{sql}");
    }

    const KEYS: &str = "tenancy:\n  mode: row_level\n  column: tenant_id\n\nentity User:\n  table: users\n  id: int pk\n  email: str unique\n  access:\n    read: true\n\nentity Plan:\n  table: plans\n  tenant: none\n  id: int pk\n  code: str unique\n  access:\n    read: true\n\nentity Member:\n  table: members\n  tenant_id: uuid pk\n  user_id: uuid pk\n  access:\n    read: true\n";

    /// Keys are per tenant in every flavor, the tenant column first; an
    /// entity without a tenant, or a key holding the tenant column, keeps
    /// its declared key; only a moved key gets the upgrade block.
    #[test]
    fn keys_are_per_tenant() {
        for flavor in [Flavor::Extension, Flavor::Plain, Flavor::Citus] {
            let sql = compiled(KEYS, flavor);
            for expected in [
                "PRIMARY KEY (\"tenant_id\", \"id\"),\n  UNIQUE (\"tenant_id\", \"email\")\n);",
                "PRIMARY KEY (\"id\"),\n  UNIQUE (\"code\")\n);",
                "PRIMARY KEY (\"tenant_id\", \"user_id\")\n);",
            ] {
                assert!(sql.contains(expected), "{flavor:?}: {expected}\n{sql}");
            }
            let upgrades = sql.matches("v_table regclass").count();
            let expected = if flavor == Flavor::Citus { 0 } else { 1 };
            assert_eq!(upgrades, expected, "{flavor:?}\n{sql}");
            if flavor != Flavor::Citus {
                assert!(sql.contains("(VALUES (0, ARRAY['id']::text[], ARRAY['tenant_id', 'id']::text[], true), (1, ARRAY['email']::text[], ARRAY['tenant_id', 'email']::text[], false))"), "{sql}");
            }
        }
    }

    /// Row-level and database modes get no schema fence.
    #[test]
    fn other_modes_have_no_schema_fence() {
        let row_level = "entity Note:\n  table: notes\n  id: int pk\n  tenant_id: uuid\n  access:\n    read: true\n";
        assert!(!compiled(row_level, Flavor::Extension).contains("pg_namespace"));
    }
}
