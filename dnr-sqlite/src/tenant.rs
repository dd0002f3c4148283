//! A tenant's rows as a whole, for the operations that move or remove a
//! tenant (`dnr tenants export`, `import`, `drop --erase`): which tables
//! hold them, and erasing them past the rules that guard a single row.

use dnr_core::ast::TenantMode;
use dnr_core::check::tenant_column;
use dnr_core::compile::quote::{ident, literal};
use dnr_core::compile::sqlite::{storage_table, storage_trigger};
use uuid::Uuid;

use crate::raw::Value;
use crate::{policy, Dnr, Error, Internal};

/// One table that holds a tenant's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantTable {
    pub entity: String,
    /// The enforced name.
    pub table: String,
    /// The storage table behind it, where the rows are.
    pub storage: String,
    /// The column that names the tenant (`row_level`); none where the
    /// whole table is the tenant's (its own database).
    pub tenant_column: Option<String>,
}

impl Dnr {
    /// The applied policy's tables that hold a tenant's rows: in
    /// `row_level` mode those with a tenant column (not `tenant: none`),
    /// in every other mode each table (the database is the tenant's).
    pub fn tenant_tables(&self) -> Result<Vec<TenantTable>, Error> {
        let Some((_, set)) = policy::recorded(self.db, &self.state)? else {
            return Err(Error::new(
                "dnr: no policies have been applied to this database",
            ));
        };
        Ok(set
            .entities
            .iter()
            .filter(|entity| {
                set.tenancy.mode != TenantMode::RowLevel || tenant_column(&set, entity).is_some()
            })
            .map(|entity| TenantTable {
                entity: entity.name.clone(),
                table: entity.table.clone(),
                storage: storage_table(&entity.table),
                tenant_column: tenant_column(&set, entity).map(str::to_string),
            })
            .collect())
    }

    /// Deletes every row of `tenant` (every row of a table without a tenant
    /// column) from the storage of each [`Dnr::tenant_tables`], whatever
    /// the delete rules say (the storage's delete check is set aside for
    /// the statement and put back as it was), all or nothing. Returns the
    /// rows deleted per table. Inside the caller's transaction if one is
    /// open.
    pub fn erase_tenant_rows(&self, tenant: Uuid) -> Result<Vec<(String, u64)>, Error> {
        let tables = self.tenant_tables()?;
        let _internal = Internal::enter(&self.state);
        self.db.exec_one("SAVEPOINT dnr_erase")?;
        let erased = tables
            .iter()
            .map(|table| Ok((table.table.clone(), self.erase_table(table, tenant)?)))
            .collect::<Result<Vec<_>, Error>>();
        match erased {
            Ok(counts) => {
                self.db.exec_one("RELEASE dnr_erase")?;
                Ok(counts)
            }
            Err(error) => {
                let _ = self.db.exec("ROLLBACK TO dnr_erase; RELEASE dnr_erase");
                Err(error)
            }
        }
    }

    /// Makes every row of this single-tenant database tenant `tenant`'s
    /// under `source`, a `row_level` policy: each table it fences gets the
    /// tenant column where it lacks one, filled where it is NULL (past the
    /// update rules: the policy applied next builds them again), then
    /// `source` is applied; all or nothing. Returns the rows adopted per
    /// table. Refused when the applied policy is `row_level` already.
    pub fn adopt_rows(&self, tenant: Uuid, source: &str) -> Result<Vec<(String, u64)>, Error> {
        let set = dnr_core::parse(source)
            .map_err(|errors| Error::new(format!("dnr: invalid policy: {errors}")))?;
        if set.tenancy.mode != TenantMode::RowLevel {
            return Err(Error::new(
                "dnr: adopting rows needs a policy with `tenancy: mode: row_level`",
            ));
        }
        if let Some((_, applied)) = policy::recorded(self.db, &self.state)? {
            if applied.tenancy.mode == TenantMode::RowLevel {
                return Err(Error::new(
                    "dnr: the applied policy is row_level already: its rows have tenants",
                ));
            }
        }
        let _internal = Internal::enter(&self.state);
        self.db.exec_one("SAVEPOINT dnr_adopt")?;
        let adopted = (|| {
            let mut counts = Vec::new();
            for entity in &set.entities {
                let Some(column) = tenant_column(&set, entity) else {
                    continue;
                };
                let storage = storage_table(&entity.table);
                let Some(target) = [storage.as_str(), entity.table.as_str()]
                    .into_iter()
                    .find(|name| self.is_table(name).unwrap_or(false))
                else {
                    continue; // the apply creates it
                };
                let has_column = !self
                    .db
                    .query(
                        "SELECT 1 FROM pragma_table_info(?1, 'main') WHERE name = ?2",
                        &[target, column],
                    )?
                    .is_empty();
                if !has_column {
                    self.db.exec_one(&format!(
                        "ALTER TABLE main.{} ADD COLUMN {} TEXT",
                        ident(target),
                        ident(column)
                    ))?;
                }
                if target == storage {
                    self.db.exec_one(&format!(
                        "DROP TRIGGER IF EXISTS main.{}",
                        ident(&storage_trigger(&entity.table, "update"))
                    ))?;
                }
                self.db.exec_one(&format!(
                    "UPDATE main.{} SET {} = {} WHERE {} IS NULL",
                    ident(target),
                    ident(column),
                    literal(&tenant.hyphenated().to_string()),
                    ident(column)
                ))?;
                // SAFETY: the connection is open.
                let changed = unsafe { crate::ffi::sqlite3_changes64(self.db.as_ptr()) };
                counts.push((entity.table.clone(), u64::try_from(changed).unwrap_or(0)));
            }
            policy::apply(self.db, &self.state, source)?;
            Ok(counts)
        })();
        match adopted {
            Ok(counts) => {
                self.db.exec_one("RELEASE dnr_adopt")?;
                Ok(counts)
            }
            Err(error) => {
                let _ = self.db.exec("ROLLBACK TO dnr_adopt; RELEASE dnr_adopt");
                Err(error)
            }
        }
    }

    fn is_table(&self, name: &str) -> Result<bool, Error> {
        Ok(!self
            .db
            .query(
                "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?1",
                &[name],
            )?
            .is_empty())
    }

    fn erase_table(&self, table: &TenantTable, tenant: Uuid) -> Result<u64, Error> {
        let check = storage_trigger(&table.table, "delete");
        let saved = self.db.query(
            "SELECT sql FROM main.sqlite_master WHERE type = 'trigger' AND name = ?1",
            &[&check],
        )?;
        let saved = match saved.first().and_then(|row| row.first()) {
            Some(Value::Text(sql)) => Some(sql.clone()),
            _ => None,
        };
        if saved.is_some() {
            self.db
                .exec_one(&format!("DROP TRIGGER main.{}", ident(&check)))?;
        }
        let filter = match &table.tenant_column {
            Some(column) => format!(
                " WHERE {} = {}",
                ident(column),
                literal(&tenant.hyphenated().to_string())
            ),
            None => String::new(),
        };
        self.db.exec_one(&format!(
            "DELETE FROM main.{}{filter}",
            ident(&table.storage)
        ))?;
        // SAFETY: the connection is open.
        let deleted = unsafe { crate::ffi::sqlite3_changes64(self.db.as_ptr()) };
        if let Some(sql) = saved {
            // The trigger exactly as DNR's apply created it.
            self.db.exec_one(&sql)?;
        }
        Ok(u64::try_from(deleted).unwrap_or(0))
    }
}
