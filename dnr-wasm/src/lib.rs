//! The npm package `dnr-wasm`: SQLite with DNR enforcement for browsers and Node.
