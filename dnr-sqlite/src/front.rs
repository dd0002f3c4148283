//! The one front door for SQL on the SQLite side: every host (the npm
//! `Database`, [`crate::Connection`], `dnr_exec`) runs application SQL
//! through [`Dnr::run`], which splits it into statements, plans each (as
//! written, rewritten onto storage, or a migration), has SQLite read every
//! rewritten statement back before it may run with storage access, and
//! runs them in order. The host only prepares, binds and steps.

use std::sync::Arc;

use crate::rewrite::{self, Plan, Rewritten};
use crate::state::{Rewriter, RewrittenScope, PLAN_CACHE};
use crate::{policy, read, Dnr, Error};

/// How many statements a call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statements {
    /// Exactly one: a query whose rows are returned, or a statement with
    /// parameters.
    One,
    /// Every statement of the text, in order (a script without parameters).
    All,
}

impl Dnr {
    /// How to run each statement of `sql` here: as written, rewritten onto
    /// storage (a write on an enforced table) or as a migration (a schema
    /// change on one). Plans are remembered per SQL text, and every
    /// rewritten statement has been read back by SQLite (see
    /// [`Dnr::run`]).
    pub fn plan(&self, sql: &str) -> Result<Arc<[Plan]>, Error> {
        let rewriter = self.rewriter()?;
        if let Some(plans) = rewriter
            .plans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sql)
        {
            return Ok(Arc::clone(plans));
        }
        let plans: Arc<[Plan]> = read::statements(sql)?
            .iter()
            .map(|piece| {
                let plan = rewrite::plan(piece, &rewriter.tables)?;
                if let Plan::Write(rewritten) = &plan {
                    self.read_back(rewritten)?;
                }
                Ok(plan)
            })
            .collect::<Result<Vec<Plan>, Error>>()?
            .into();
        let mut cache = rewriter.plans.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= PLAN_CACHE {
            cache.clear();
        }
        cache.insert(sql.to_string(), Arc::clone(&plans));
        Ok(plans)
    }

    /// Runs `sql` as planned: `step` prepares, binds and steps one statement
    /// (as written, or — `true` — DNR's printed rewrite, which runs with
    /// storage access) and returns what the host wants of it. Every statement is
    /// planned before the first runs, so a statement DNR refuses leaves
    /// the others unrun. Returns each statement's outcome (a migration's
    /// is the default).
    pub fn run<T: Default>(
        &self,
        sql: &str,
        statements: Statements,
        has_params: bool,
        mut step: impl FnMut(&str, bool) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        let plans = self.plan(sql)?;
        if has_params && plans.len() > 1 {
            return Err(Error::new(
                "dnr: parameters need a single statement; run the others separately",
            ));
        }
        match (statements, plans.len()) {
            (Statements::One, 0) => return Err(Error::new("dnr: no SQL statement to run")),
            (Statements::One, 1) | (Statements::All, _) => {}
            (Statements::One, n) => {
                return Err(Error::new(format!(
                    "dnr: this runs a single statement, and the SQL holds {n}; run them separately"
                )))
            }
        }
        plans
            .iter()
            .map(|plan| match plan {
                Plan::AsIs(text) | Plan::Unread { sql: text, .. } => step(text, false),
                Plan::Write(rewritten) => {
                    let _scope = RewrittenScope::enter(&self.state, rewritten);
                    step(&rewritten.sql, true)
                }
                Plan::Migrate(_) if has_params => Err(Error::new(
                    "dnr: a schema change on an enforced table takes no parameters",
                )),
                Plan::Migrate(text) => self.migrate_statement(text).map(|_| T::default()),
            })
            .collect()
    }

    /// SQLite has the last word: it prepares the printed statement (under
    /// the lock, which lets it reach only its target's storage and the
    /// storage its `exists` conditions read) as one statement, and must
    /// find exactly the parameters the tree holds, by index and name.
    fn read_back(&self, rewritten: &Rewritten) -> Result<(), Error> {
        let _scope = RewrittenScope::enter(&self.state, rewritten);
        let stmt = self.db.prepare(&rewritten.sql)?;
        let found = stmt.parameters();
        if found != rewritten.parameters {
            return Err(Error::new(format!(
                "dnr: cannot rewrite this statement: SQLite reads its parameters as {found:?}, DNR as {:?}",
                rewritten.parameters
            )));
        }
        Ok(())
    }

    pub(crate) fn rewriter(&self) -> Result<Arc<Rewriter>, Error> {
        if let Some(rewriter) = &self.state.lock().rewriter {
            return Ok(Arc::clone(rewriter));
        }
        let tables = match policy::recorded(self.db, &self.state)? {
            Some((_, set)) => policy::rewrite_tables(self.db, &self.state, &set)?,
            None => Default::default(),
        };
        let rewriter = Arc::new(Rewriter {
            tables,
            plans: std::sync::Mutex::new(Default::default()),
        });
        self.state.lock().rewriter = Some(Arc::clone(&rewriter));
        Ok(rewriter)
    }
}
