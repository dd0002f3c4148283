//! The one error type of DNR's SQLite side: its message is what SQL sees.

use std::fmt;

/// Every error DNR's SQLite side reports; the message is what SQL sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
    /// SQLite's primary result code when SQLite reported the error (a
    /// refusal raised by DNR's triggers is SQLITE_CONSTRAINT).
    code: Option<i32>,
}

impl Error {
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            code: None,
        }
    }

    pub(crate) fn sqlite(message: impl Into<String>, code: i32) -> Error {
        Error {
            message: message.into(),
            code: Some(code & 0xff),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// SQLite's primary result code, when SQLite reported the error.
    pub fn code(&self) -> Option<i32> {
        self.code
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
