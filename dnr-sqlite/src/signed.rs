//! Signed context on a SQLite connection: the host installs the keys tokens
//! are verified with (the Rust API, or `dnr_set_signing_keys(text)` before
//! the connection is locked), SQL sets the context with
//! `dnr_set_context_signed(token)`, and in signed-only mode
//! (`dnr_require_signed()`, one way) the unsigned setters refuse. A locked
//! connection accepts `dnr_set_context_signed` only in signed-only mode: then
//! a server can hand per-request context to a connection running untrusted
//! SQL, which can become only what a valid token says.
//!
//! Verification is `dnr_core::signed`'s; verified tokens are kept (by their
//! text) until they expire, so a repeated token costs a lookup.

use std::time::{SystemTime, UNIX_EPOCH};

use dnr_core::signed::{verify, KeySet, Verified, VerifyOptions};
use dnr_core::TenantContext;

use crate::Error;

/// Verified tokens a connection remembers.
const CACHE: usize = 64;

/// The signed-context state of one connection.
#[derive(Default)]
pub(crate) struct Signed {
    keys: Option<KeySet>,
    options: VerifyOptions,
    /// Signed-only mode: the unsigned setters refuse.
    pub required: bool,
    /// Verified tokens, most recent last.
    cache: Vec<(String, Verified)>,
}

impl Signed {
    pub fn set_keys(&mut self, keys: KeySet) {
        self.keys = Some(keys);
        self.cache.clear();
    }

    pub fn set_options(&mut self, options: VerifyOptions) {
        self.options = options;
        self.cache.clear();
    }

    /// The context `token` gives now, verified (or remembered verified and
    /// not yet expired).
    pub fn context(&mut self, token: &str) -> Result<TenantContext, Error> {
        let Some(keys) = &self.keys else {
            return Err(Error::new(
                "dnr: no signing keys are installed on this connection: the host sets them (Dnr::set_signing_keys or dnr_set_signing_keys before dnr_lock)",
            ));
        };
        let now = now()?;
        if let Some(position) = self.cache.iter().position(|(text, _)| text == token) {
            let (_, verified) = &self.cache[position];
            if verified.valid_at(now, self.options.leeway_seconds) {
                return Ok(verified.context.clone());
            }
            self.cache.remove(position);
        }
        let verified =
            verify(token, keys, &self.options, now).map_err(|e| Error::new(format!("dnr: {e}")))?;
        let context = verified.context.clone();
        if self.cache.len() >= CACHE {
            self.cache.remove(0);
        }
        self.cache.push((token.to_string(), verified));
        Ok(context)
    }
}

fn now() -> Result<i64, Error> {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|_| {
        Error::new("dnr: the system clock is before 1970: tokens cannot be checked")
    })?;
    i64::try_from(elapsed.as_secs())
        .map_err(|_| Error::new("dnr: the system clock is out of range: tokens cannot be checked"))
}
