//! OPFS persistence through sqlite-wasm-vfs's `opfs-sahpool` VFS.
//!
//! The VFS keeps a pool of OPFS sync access handles, which browsers grant
//! only to dedicated Workers in a secure context. It is installed once per
//! Worker, on the first `Database.open({ storage: "opfs" })`.

use sqlite_wasm_rs::WasmOsCallback;
use sqlite_wasm_vfs::sahpool::{install as install_pool, OpfsSAHPoolCfgBuilder};

use crate::error::Error;

/// The VFS name databases are opened with.
pub const VFS_NAME: &str = "dnr-opfs-sahpool";
/// The OPFS directory holding the pool's files.
const DIRECTORY: &str = ".dnr-opfs";

pub async fn install() -> Result<(), Error> {
    let config = OpfsSAHPoolCfgBuilder::new()
        .vfs_name(VFS_NAME)
        .directory(DIRECTORY)
        .build();
    // Installing again in the same Worker reuses the pool.
    let pool = install_pool::<WasmOsCallback>(&config, false)
        .await
        .map_err(|e| Error::new(format!("cannot use OPFS: {e}")))?;
    // Each database needs its file and a journal; grow before running out.
    pool.ensure_capacity(pool_need(&pool))
        .await
        .map_err(|e| Error::new(format!("cannot grow the OPFS pool: {e}")))?;
    Ok(())
}

fn pool_need(pool: &sqlite_wasm_vfs::sahpool::OpfsSAHPoolUtil) -> usize {
    use sqlite_wasm_rs::vfs::VfsFilesManager;
    let used = pool.len().unwrap_or(0);
    (used + 4).max(6)
}
