//! The engines under test. Each runs a whole case through its own
//! enforcement: apply a permissive policy, write the seed rows through it,
//! apply the policy under test (re-apply keeps rows), then run every step.

pub mod citus;
pub mod connection;
pub mod node;
pub mod postgres;
pub mod sqlite;

use crate::case::{Case, Outcome};

pub trait Engine {
    fn name(&self) -> &'static str;
    fn run(&mut self, case: &Case) -> Result<Vec<Outcome>, String>;
    /// Whether the engine can run `case` at all (Citus refuses `exists`
    /// rules): a case it cannot run is counted as not applicable.
    fn applies(&self, _case: &Case) -> bool {
        true
    }
}

/// Roles as the JSON array the SQLite and JS APIs take.
pub fn roles_json(roles: &[String]) -> String {
    serde_json::to_string(roles).unwrap_or_else(|_| "[]".into())
}
