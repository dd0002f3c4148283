//! What the SQLite benchmarks share: a deterministic generator and a file
//! database with the built extension loaded as a host loads it.

use std::path::PathBuf;

use rusqlite::Connection;

pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A small deterministic generator (xorshift), so runs are comparable.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Opens `path` (WAL, a page cache of `cache_kib`) with the extension
/// loaded: `target/release/libdnr.so`, or `DNR_SQLITE_LIB` to compare
/// another build.
pub fn open(path: &str, cache_kib: u32) -> Result<Connection> {
    let library = match std::env::var_os("DNR_SQLITE_LIB") {
        Some(lib) => PathBuf::from(lib).with_extension(""),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/libdnr"),
    };
    if !library.with_extension("so").exists() {
        return Err(format!(
            "{}.so is missing: cargo build --release -p dnr-sqlite-ext",
            library.display()
        )
        .into());
    }
    let conn = Connection::open(path)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -{cache_kib};"
    ))?;
    // SAFETY: DNR's own extension, built from this workspace.
    unsafe {
        conn.load_extension_enable()?;
        conn.load_extension(&library, None::<&str>)?;
        conn.load_extension_disable()?;
    }
    Ok(conn)
}
