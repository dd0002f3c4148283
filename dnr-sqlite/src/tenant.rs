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
