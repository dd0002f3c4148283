//! Per-connection state: the context policies read, the lock, the write
//! mode of the rewritten statement running now, and the caches.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use dnr_core::TenantContext;

use crate::{authorizer, ffi, rewrite, Rewritten};

/// Statements whose plan a connection remembers (apps repeat a few).
pub(crate) const PLAN_CACHE: usize = 512;
#[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
use crate::signed;

/// Per-connection state: the context policies read, the lock, and caches.
pub(crate) struct State {
    inner: Mutex<Inner>,
    /// Depth of DNR's own statements in progress: the authorizer lets them
    /// through. Outside the mutex: a locked table's cursor marks every step
    /// (SQLite may compile its statement again there), so this is on the
    /// path of every row it reads.
    internal: AtomicUsize,
    /// Transactions this connection has ended (its commit and rollback
    /// hooks count them, without the mutex: a hook may run while DNR's own
    /// SQL holds it): a transaction-local context belongs to one of them.
    ended: AtomicU64,
}

#[derive(Default)]
pub(crate) struct Inner {
    /// The context policies read now: the transaction's own while `local`
    /// is set, else the session's.
    pub ctx: TenantContext,
    /// Set while `ctx` is transaction-local (set in SQL): the session's
    /// context, which comes back when that transaction ends.
    pub local: Option<Local>,
    /// The context's ids as SQL sees them (canonical lowercase, hyphenated).
    pub tenant_text: Option<String>,
    pub user_text: Option<String>,
    pub locked: bool,
    /// The enforced names are served by TEMP virtual tables (as on a locked
    /// connection) whose writes SQLite counts in `changes()` and
    /// `last_insert_rowid()`, which ORMs rely on: `dnr_count_changes()`.
    pub counted: bool,
    /// The storage rowid of the last row an insert trigger stored
    /// (`dnr_note_rowid`), for the virtual tables' `last_insert_rowid()`.
    pub stored_rowid: Option<i64>,
    /// How the statement running now writes to storage: set by the host
    /// around a statement the rewriter produced, read by the storage
    /// triggers (`dnr_guarded`, `dnr_upsert`).
    pub write_mode: WriteMode,
    /// The storage tables of the rewritten statement being prepared or run,
    /// if any: the lock lets it through there.
    pub rewriting: Option<rewrite::StorageAccess>,
    /// Names the authorizer protects once locked.
    pub guard: authorizer::Guard,
    /// The last policy source read from `_dnr_meta`, parsed.
    pub policies: Option<(String, Arc<dnr_core::PolicySet>)>,
    /// The enforced tables as the rewriter sees them, and its plans by
    /// statement text: built on first use, dropped by every apply or
    /// migration through this connection.
    pub rewriter: Option<Arc<Rewriter>>,
    /// Signing keys, signed-only mode and verified tokens (not in the
    /// browser build: it has no clock here and does not carry the crypto).
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    pub signed: signed::Signed,
}

/// The enforced tables as the rewriter sees them, and the plans made for
/// this connection's SQL texts (each checked against SQLite once).
pub(crate) struct Rewriter {
    pub tables: std::collections::BTreeMap<String, rewrite::TableInfo>,
    pub plans: Mutex<std::collections::HashMap<String, Arc<[rewrite::Plan]>>>,
}

/// What the statement being run may do on a conflict, which the storage
/// triggers must know and cannot see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteMode {
    /// No conflict of this statement can replace a row (it aborts, ignores
    /// or upserts), so the triggers need not guard the unique keys against
    /// a REPLACE deleting a row the writer may not overwrite. False (every
    /// key guarded) for any SQL but the rewriter's.
    pub cannot_replace: bool,
    /// The statement is an upsert: its DO UPDATE on a row the context may
    /// not update is an error, not a silent skip.
    pub upsert: bool,
}

impl Inner {
    /// Whether the enforced names are served by TEMP virtual tables.
    pub fn serves_tables(&self) -> bool {
        self.locked || self.counted
    }

    /// Whether only a signed token may change the context from SQL.
    pub fn signed_only(&self) -> bool {
        #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
        return self.signed.required;
        #[cfg(all(target_family = "wasm", target_os = "unknown"))]
        return false;
    }

    /// Sets the session's context (until changed), ending any
    /// transaction-local one.
    pub fn set_context(&mut self, ctx: TenantContext) {
        self.local = None;
        self.show(ctx);
    }

    /// Sets a context for the transaction open now (numbered by the count
    /// of ended ones); the session's comes back when it ends.
    pub fn set_local(&mut self, ctx: TenantContext, transaction: u64) {
        if self.local.is_none() {
            self.local = Some(Local {
                session: std::mem::take(&mut self.ctx),
                transaction,
            });
        }
        self.show(ctx);
    }

    fn show(&mut self, ctx: TenantContext) {
        self.tenant_text = ctx.tenant.map(|u| u.hyphenated().to_string());
        self.user_text = ctx.user.map(|u| u.hyphenated().to_string());
        self.ctx = ctx;
    }
}

/// A transaction-local context's way back.
pub(crate) struct Local {
    session: TenantContext,
    /// Transactions ended before the one that set it.
    transaction: u64,
}

impl State {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state with the context as of now: a transaction-local context
    /// whose transaction has ended gives way to the session's. Ended means
    /// counted by the hooks, or (should a host replace DNR's hooks) no
    /// longer writing the temp database, which the local setters write.
    pub fn current(&self, db: *mut ffi::sqlite3) -> MutexGuard<'_, Inner> {
        let mut inner = self.lock();
        if let Some(local) = &inner.local {
            let ended = self.ended.load(Ordering::SeqCst) != local.transaction
                // SAFETY: `db` is this state's open connection.
                || unsafe { ffi::sqlite3_txn_state(db, c"temp".as_ptr()) }
                    != ffi::SQLITE_TXN_WRITE as std::ffi::c_int;
            if ended {
                if let Some(local) = inner.local.take() {
                    inner.show(local.session);
                }
            }
        }
        inner
    }

    /// The number of transactions this connection has ended.
    pub fn transactions_ended(&self) -> u64 {
        self.ended.load(Ordering::SeqCst)
    }

    /// Counts an ended transaction (from the commit and rollback hooks).
    pub fn end_transaction(&self) {
        self.ended.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether one of DNR's own statements is in progress.
    pub fn internal(&self) -> bool {
        self.internal.load(Ordering::SeqCst) > 0
    }
}

/// Marks DNR's own statements for the authorizer while alive.
pub(crate) struct Internal<'a> {
    state: &'a State,
}

impl<'a> Internal<'a> {
    pub fn enter(state: &'a State) -> Internal<'a> {
        state.internal.fetch_add(1, Ordering::SeqCst);
        Internal { state }
    }
}

impl Drop for Internal<'_> {
    fn drop(&mut self) {
        // Paired with `enter`: never below zero.
        self.state.internal.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Marks one rewritten statement while it is prepared and run: its write
/// mode for the storage triggers, and its target for the lock, which lets
/// the statement write that storage table (and DNR's triggers read theirs)
/// and judges everything else in it as any SQL. Restores the previous state
/// when dropped, also on an error.
pub(crate) struct RewrittenScope<'a> {
    state: &'a State,
    previous: (WriteMode, Option<rewrite::StorageAccess>),
}

impl<'a> RewrittenScope<'a> {
    pub fn enter(state: &'a State, rewritten: &Rewritten) -> RewrittenScope<'a> {
        let mut inner = state.lock();
        let previous = (
            std::mem::replace(&mut inner.write_mode, rewritten.mode),
            inner.rewriting.replace(rewritten.access.clone()),
        );
        RewrittenScope { state, previous }
    }
}

impl Drop for RewrittenScope<'_> {
    fn drop(&mut self) {
        let mut inner = self.state.lock();
        inner.write_mode = self.previous.0;
        inner.rewriting = self.previous.1.take();
    }
}

/// Connections with DNR registered, so that loading the extension twice on
/// one connection keeps its context and its lock.
static REGISTRY: Mutex<Vec<(usize, Weak<State>)>> = Mutex::new(Vec::new());

pub(crate) fn state_for(db: *mut ffi::sqlite3) -> Arc<State> {
    let mut registry = REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    registry.retain(|(_, weak)| weak.strong_count() > 0);
    let key = db as usize;
    if let Some(state) = registry
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, weak)| weak.upgrade())
    {
        return state;
    }
    let state = Arc::new(State {
        inner: Mutex::new(Inner::default()),
        internal: AtomicUsize::new(0),
        ended: AtomicU64::new(0),
    });
    registry.push((key, Arc::downgrade(&state)));
    state
}
