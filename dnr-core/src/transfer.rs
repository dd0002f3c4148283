//! The portable tenant file's contract, shared by every engine: its
//! manifest, the values it holds and the checksum that proves a copy
//! complete.
//!
//! A tenant file is an ordinary DNR SQLite database (the tenant's rows in
//! the policy's tables) with a manifest in `_dnr_meta`. The checksum is a
//! multiset hash: each row's SHA-256 (over its columns sorted by name,
//! without the tenant column, whose value the mode decides) added modulo
//! 2^256, per table; so it does not depend on the order rows are read in,
//! on the engine, or on the mode, and a row lost, added, duplicated or
//! changed changes it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// The format this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// The key of `_dnr_meta` that holds the manifest.
pub const MANIFEST_KEY: &str = "tenant_file";

/// What a tenant file says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub tenant: Uuid,
    /// Where it was exported from: `sqlite` or `postgres`, and the mode.
    pub engine: String,
    pub mode: String,
    /// The newest migration the store had (0: none).
    pub schema_version: u32,
    /// Each table of the tenant, in the policy's order.
    pub tables: Vec<TableEntry>,
    /// [`Checksum::hex`] over every row.
    pub checksum: String,
}

/// One table of a tenant file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEntry {
    pub table: String,
    /// Its columns, without the tenant column.
    pub columns: Vec<String>,
    pub rows: u64,
}

/// One value as a tenant file holds it: SQLite's storage classes.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// Why a tenant file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error(
        "the tenant file has no manifest: it is not a tenant file (made by `dnr tenants export`)"
    )]
    NoManifest,
    #[error("the tenant file's manifest does not read: {0}")]
    Manifest(String),
    #[error("the tenant file has format {found}; this dnr reads format {supported} and older: upgrade dnr")]
    NewerFormat { found: u32, supported: u32 },
    #[error("the tenant file names table `{0}` twice")]
    DuplicateTable(String),
    #[error("table `{table}`: the manifest claims {claimed} rows, the file holds {found}")]
    RowCount {
        table: String,
        claimed: u64,
        found: u64,
    },
    #[error("table `{table}`: a row belongs to tenant `{found}`, not the file's tenant {tenant}")]
    ForeignRow {
        table: String,
        tenant: Uuid,
        found: String,
    },
    #[error("the rows' checksum is {found}, the manifest says {claimed}: the file was changed after export")]
    Checksum { claimed: String, found: String },
}

/// A running checksum over the rows of a tenant's tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checksum {
    tables: BTreeMap<String, TableSum>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TableSum {
    rows: u64,
    /// The rows' hashes added modulo 2^256, little-endian words.
    sum: [u64; 4],
}

impl Checksum {
    pub fn new() -> Checksum {
        Checksum::default()
    }

    /// Counts a table that may have no rows.
    pub fn table(&mut self, table: &str) {
        self.tables.entry(table.to_string()).or_default();
    }

    /// Adds one row of `table`: its columns and values, in any order.
    pub fn add(&mut self, table: &str, row: &[(&str, &Cell)]) {
        let mut sorted: Vec<&(&str, &Cell)> = row.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let mut hash = Sha256::new();
        for (column, cell) in sorted {
            hash.update((column.len() as u64).to_le_bytes());
            hash.update(column.as_bytes());
            match cell {
                Cell::Null => hash.update([0]),
                Cell::Integer(n) => {
                    hash.update([1]);
                    hash.update(n.to_le_bytes());
                }
                Cell::Real(x) => {
                    hash.update([2]);
                    hash.update(x.to_bits().to_le_bytes());
                }
                Cell::Text(text) => {
                    hash.update([3]);
                    hash.update((text.len() as u64).to_le_bytes());
                    hash.update(text.as_bytes());
                }
                Cell::Blob(bytes) => {
                    hash.update([4]);
                    hash.update((bytes.len() as u64).to_le_bytes());
                    hash.update(bytes);
                }
            }
        }
        let digest = hash.finalize();
        let entry = self.tables.entry(table.to_string()).or_default();
        entry.rows += 1;
        let mut carry = false;
        for (word, chunk) in entry.sum.iter_mut().zip(digest.chunks_exact(8)) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            let (sum, overflow_a) = word.overflowing_add(u64::from_le_bytes(bytes));
            let (sum, overflow_b) = sum.overflowing_add(u64::from(carry));
            *word = sum;
            carry = overflow_a || overflow_b;
        }
    }

    /// The rows counted for `table`.
    pub fn rows(&self, table: &str) -> u64 {
        self.tables.get(table).map_or(0, |t| t.rows)
    }

    /// The checksum of every table, as hex: SHA-256 over each table's name,
    /// row count and sum, by name.
    pub fn hex(&self) -> String {
        let mut hash = Sha256::new();
        for (table, sum) in &self.tables {
            hash.update((table.len() as u64).to_le_bytes());
            hash.update(table.as_bytes());
            hash.update(sum.rows.to_le_bytes());
            for word in sum.sum {
                hash.update(word.to_le_bytes());
            }
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl Manifest {
    /// Reads a manifest, refusing a format newer than this build's and a
    /// table listed twice.
    pub fn parse(text: &str) -> Result<Manifest, FileError> {
        // The format first: a newer file may not parse as this one.
        let format = serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| FileError::Manifest(e.to_string()))?
            .get("format")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| FileError::Manifest("no `format` number".into()))?;
        let format = u32::try_from(format).unwrap_or(u32::MAX);
        if format > FORMAT_VERSION {
            return Err(FileError::NewerFormat {
                found: format,
                supported: FORMAT_VERSION,
            });
        }
        let manifest: Manifest =
            serde_json::from_str(text).map_err(|e| FileError::Manifest(e.to_string()))?;
        let mut seen = std::collections::BTreeSet::new();
        for entry in &manifest.tables {
            if !seen.insert(entry.table.to_ascii_lowercase()) {
                return Err(FileError::DuplicateTable(entry.table.clone()));
            }
        }
        Ok(manifest)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether the rows read (`found`) are the ones the manifest claims:
    /// every table's count, then the checksum.
    pub fn verify(&self, found: &Checksum) -> Result<(), FileError> {
        for entry in &self.tables {
            let rows = found.rows(&entry.table);
            if rows != entry.rows {
                return Err(FileError::RowCount {
                    table: entry.table.clone(),
                    claimed: entry.rows,
                    found: rows,
                });
            }
        }
        let hex = found.hex();
        if hex != self.checksum {
            return Err(FileError::Checksum {
                claimed: self.checksum.clone(),
                found: hex,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cell() -> impl Strategy<Value = Cell> {
        prop_oneof![
            Just(Cell::Null),
            any::<i64>().prop_map(Cell::Integer),
            any::<f64>().prop_map(Cell::Real),
            ".{0,8}".prop_map(Cell::Text),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(Cell::Blob),
        ]
    }

    fn sum(rows: &[(Cell, Cell)]) -> Checksum {
        let mut checksum = Checksum::new();
        checksum.table("t");
        for (a, b) in rows {
            checksum.add("t", &[("a", a), ("b", b)]);
        }
        checksum
    }

    proptest! {
        /// The order rows are read in does not matter, nor that of columns.
        #[test]
        fn the_checksum_ignores_row_and_column_order(
            rows in proptest::collection::vec((cell(), cell()), 0..20),
            seed in any::<u64>(),
        ) {
            let mut shuffled = rows.clone();
            let n = shuffled.len();
            for i in 0..n {
                let j = (seed.wrapping_mul(i as u64 + 7) % n as u64) as usize;
                shuffled.swap(i, j);
            }
            let mut swapped = Checksum::new();
            swapped.table("t");
            for (a, b) in &shuffled {
                swapped.add("t", &[("b", b), ("a", a)]);
            }
            prop_assert_eq!(sum(&rows).hex(), swapped.hex());
        }

        /// A row lost, duplicated or changed changes it.
        #[test]
        fn a_lost_duplicated_or_changed_row_changes_the_checksum(
            rows in proptest::collection::vec((cell(), cell()), 1..20),
            n in any::<i64>(),
        ) {
            let whole = sum(&rows).hex();
            prop_assert_ne!(sum(&rows[1..]).hex(), whole.clone());
            let mut twice = rows.clone();
            twice.push(rows[0].clone());
            prop_assert_ne!(sum(&twice).hex(), whole.clone());
            let mut changed = rows.clone();
            let bumped = match &changed[0].0 {
                Cell::Integer(m) if *m == n => Cell::Integer(n.wrapping_add(1)),
                _ => Cell::Integer(n),
            };
            if changed[0].0 != bumped {
                changed[0].0 = bumped;
                prop_assert_ne!(sum(&changed).hex(), whole);
            }
        }
    }

    #[test]
    fn values_of_different_classes_differ() {
        let one = sum(&[(Cell::Integer(1), Cell::Null)]).hex();
        let text = sum(&[(Cell::Text("1".into()), Cell::Null)]).hex();
        let real = sum(&[(Cell::Real(1.0), Cell::Null)]).hex();
        assert_ne!(one, text);
        assert_ne!(one, real);
        // Text that would run into the next column in a naive encoding.
        let a = sum(&[(Cell::Text("ab".into()), Cell::Text("c".into()))]).hex();
        let b = sum(&[(Cell::Text("a".into()), Cell::Text("bc".into()))]).hex();
        assert_ne!(a, b);
    }

    #[test]
    fn hostile_manifests_are_refused() {
        let good = Manifest {
            format: FORMAT_VERSION,
            tenant: Uuid::nil(),
            engine: "sqlite".into(),
            mode: "row_level".into(),
            schema_version: 0,
            tables: vec![TableEntry {
                table: "tasks".into(),
                columns: vec!["id".into()],
                rows: 1,
            }],
            checksum: sum(&[]).hex(),
        };
        assert_eq!(Manifest::parse(&good.to_json()).unwrap(), good);
        let newer = good.to_json().replace("\"format\":1", "\"format\":2");
        assert_eq!(
            Manifest::parse(&newer),
            Err(FileError::NewerFormat {
                found: 2,
                supported: 1
            })
        );
        let twice = Manifest {
            tables: vec![good.tables[0].clone(), good.tables[0].clone()],
            ..good.clone()
        };
        assert!(matches!(
            Manifest::parse(&twice.to_json()),
            Err(FileError::DuplicateTable(_))
        ));
        assert!(matches!(
            Manifest::parse("{\"format\": 1}"),
            Err(FileError::Manifest(_))
        ));
        // An enormous row count claim fails against the rows there are.
        let claim = Manifest {
            tables: vec![TableEntry {
                rows: u64::MAX,
                ..good.tables[0].clone()
            }],
            ..good
        };
        let mut found = Checksum::new();
        found.add("tasks", &[("id", &Cell::Integer(1))]);
        assert!(matches!(
            claim.verify(&found),
            Err(FileError::RowCount { .. })
        ));
    }
}
