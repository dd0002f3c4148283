//! Limits on policy sources. Every stage after the parser recurses over
//! conditions, and hosts run it on their own stack (a PostgreSQL backend, the
//! `sqlite3` shell, a WASM instance with 1 MiB of stack), so the parser
//! refuses what would nest deeper than these, with the line and column of the
//! first token past the limit. `and`/`or` chains are flat lists in the syntax
//! tree, so a long chain is wide, not deep.
//!
//! The limits are part of the language (docs/policy-language.md): a source
//! accepted by one engine is accepted by every engine.

/// Bytes in one policy source.
pub const MAX_SOURCE_BYTES: usize = 1 << 20;

/// Parentheses and `not`s open at once inside one condition.
pub const MAX_NESTING: usize = 32;

/// Terms in one rule's condition: comparisons, `in`/`is null` tests, roles,
/// `true`/`false`, `authenticated`/`anonymous`, and each value of an `in`
/// list. SQLite refuses expressions nested deeper than 1,000 and the
/// compilers keep long chains balanced, so this bounds every engine's work.
pub const MAX_CONDITION_TERMS: usize = 1_000;

/// Bytes in a name that becomes an SQL identifier (entity, table, field and
/// tenant column names): PostgreSQL truncates longer identifiers (NAMEDATALEN
/// 64), which would make two different names one table.
pub const MAX_IDENTIFIER_BYTES: usize = 63;
