//! Errors as JavaScript `Error` objects.
//!
//! Every failure reaches JS as an `Error` whose message says what went wrong;
//! policy-source errors also carry `line`, `column` and `diagnostics`
//! (`[{ line, column, message }]`) for editors and tooling.

use dnr_core::PolicyErrors;
use js_sys::{Array, Object};
use wasm_bindgen::JsValue;

use crate::convert::set;

#[derive(Debug)]
pub struct Error {
    message: String,
    /// (line, column, message) for each policy diagnostic.
    diagnostics: Vec<(usize, usize, String)>,
}

impl Error {
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            diagnostics: Vec::new(),
        }
    }

    /// Policy errors: one `line:column: message` line per diagnostic.
    pub fn policy(errors: &PolicyErrors) -> Error {
        let diagnostics: Vec<(usize, usize, String)> = errors
            .diagnostics
            .iter()
            .map(|d| (d.span.line, d.span.column, d.message.clone()))
            .collect();
        let lines: Vec<String> = diagnostics
            .iter()
            .map(|(line, column, message)| {
                format!("policy error at line {line}, column {column}: {message}")
            })
            .collect();
        Error {
            message: lines.join("\n"),
            diagnostics,
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<rusqlite::Error> for Error {
    fn from(error: rusqlite::Error) -> Error {
        Error::new(sqlite_message(&error))
    }
}

/// SQLite's own message, without rusqlite's wrapping where it adds nothing.
fn sqlite_message(error: &rusqlite::Error) -> String {
    match error {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        rusqlite::Error::SqlInputError {
            msg, sql, offset, ..
        } => {
            format!("{msg} (at offset {offset} in `{sql}`)")
        }
        rusqlite::Error::MultipleStatement => {
            "query takes a single statement; use exec for several".into()
        }
        rusqlite::Error::InvalidParameterCount(given, expected) => {
            format!("the statement has {expected} parameter(s), {given} given")
        }
        other => other.to_string(),
    }
}

impl From<Error> for JsValue {
    fn from(error: Error) -> JsValue {
        let js = js_sys::Error::new(&error.message);
        if let Some((line, column, _)) = error.diagnostics.first() {
            set(&js, &"line".into(), &JsValue::from(*line as u32));
            set(&js, &"column".into(), &JsValue::from(*column as u32));
            let list = Array::new();
            for (line, column, message) in &error.diagnostics {
                let item = Object::new();
                set(&item, &"line".into(), &JsValue::from(*line as u32));
                set(&item, &"column".into(), &JsValue::from(*column as u32));
                set(&item, &"message".into(), &JsValue::from_str(message));
                list.push(&item);
            }
            set(&js, &"diagnostics".into(), &list);
        }
        js.into()
    }
}
