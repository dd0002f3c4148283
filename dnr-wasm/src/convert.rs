//! Values between JavaScript and SQLite.
//!
//! Parameters: `null`/`undefined` → NULL, `boolean` → 0/1, a `number` with
//! no fractional part → INTEGER (other numbers → REAL), `bigint` → INTEGER
//! (64-bit range), `string` → TEXT, `Uint8Array`/`ArrayBuffer` → BLOB.
//! Results: INTEGER → `number` when it is a safe integer (|n| ≤ 2^53 − 1),
//! otherwise `bigint`; REAL → `number`; TEXT → `string`; BLOB → `Uint8Array`;
//! NULL → `null`.

use std::fmt::Write as _;

use js_sys::{Array, ArrayBuffer, BigInt, Object, Reflect, Uint8Array, JSON};
use rusqlite::types::{Value, ValueRef};
use wasm_bindgen::{JsCast, JsValue};

use crate::error::Error;

/// 2^53 − 1: the largest integer a JS `number` holds exactly.
const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// Converts the `params` argument (an array, or `undefined`/`null` for none).
pub fn params(params: &JsValue) -> Result<Vec<Value>, Error> {
    if params.is_undefined() || params.is_null() {
        return Ok(Vec::new());
    }
    if !Array::is_array(params) {
        return Err(Error::new(
            "params must be an array of values (one per `?` placeholder)",
        ));
    }
    let array: &Array = params.unchecked_ref();
    array
        .iter()
        .enumerate()
        .map(|(index, value)| param(index + 1, &value))
        .collect()
}

pub fn param(position: usize, value: &JsValue) -> Result<Value, Error> {
    // Each test is a call into JS: the common types first (the types are
    // disjoint, so the order changes nothing else).
    if let Some(n) = value.as_f64() {
        // Integral numbers bind as INTEGER so that `id = ?` compares as the
        // column's integers do; the range check keeps the cast exact.
        let integral = n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER as f64;
        return Ok(if integral {
            Value::Integer(n as i64)
        } else {
            Value::Real(n)
        });
    }
    if let Some(text) = value.as_string() {
        return Ok(Value::Text(text));
    }
    if value.is_null() || value.is_undefined() {
        return Ok(Value::Null);
    }
    if let Some(b) = value.as_bool() {
        return Ok(Value::Integer(i64::from(b)));
    }
    if value.is_bigint() {
        return i64::try_from(value.clone())
            .map(Value::Integer)
            .map_err(|_| {
                Error::new(format!(
                    "parameter {position}: bigint is outside SQLite's 64-bit integer range"
                ))
            });
    }
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        return Ok(Value::Blob(bytes.to_vec()));
    }
    if let Some(buffer) = value.dyn_ref::<ArrayBuffer>() {
        return Ok(Value::Blob(Uint8Array::new(buffer).to_vec()));
    }
    let kind = value.js_typeof().as_string().unwrap_or_default();
    Err(Error::new(format!(
        "parameter {position}: unsupported value of type `{kind}`; use a string, number, bigint, boolean, null or Uint8Array"
    )))
}

/// One SQLite value as a JS value.
pub fn value(value: ValueRef<'_>) -> JsValue {
    match value {
        ValueRef::Null => JsValue::NULL,
        ValueRef::Integer(i) if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&i) => {
            JsValue::from_f64(i as f64)
        }
        ValueRef::Integer(i) => BigInt::from(i).into(),
        ValueRef::Real(f) => JsValue::from_f64(f),
        ValueRef::Text(bytes) => JsValue::from_str(&String::from_utf8_lossy(bytes)),
        ValueRef::Blob(bytes) => Uint8Array::from(bytes).into(),
    }
}

/// Sets `key` on a plain object; `Reflect.set` on a fresh object cannot fail.
pub fn set(object: &Object, key: &JsValue, value: &JsValue) {
    let _ = Reflect::set(object, key, value);
}

/// Reads an optional string property: absent/undefined/null → `None`.
pub fn optional_string(object: &JsValue, key: &str) -> Result<Option<String>, Error> {
    let value = Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED);
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value
        .as_string()
        .map(Some)
        .ok_or_else(|| Error::new(format!("`{key}` must be a string or null")))
}

/// The own enumerable keys of a plain object.
pub fn keys(object: &JsValue) -> Vec<String> {
    match object.dyn_ref::<Object>() {
        Some(object) => Object::keys(object)
            .iter()
            .filter_map(|k| k.as_string())
            .collect(),
        None => Vec::new(),
    }
}

/// A query's rows as JS objects, built as one JSON text that the engine
/// parses in one go: setting each property from wasm costs a call across
/// the boundary and a string conversion per value, which made up most of a
/// query's time. The objects are the ones `value` and `set` would build:
/// keys in column order, a repeated column name holding the last column's
/// value at the first one's place. Values JSON cannot carry (integers
/// beyond 2^53 − 1, blobs, infinities) are written as `null` and set
/// afterwards, as are columns named `__proto__` (which `set` treats as the
/// prototype, not a key).
pub struct Rows {
    /// `"name":` for each key (empty for arrays), with the column whose
    /// value it takes.
    keys: Vec<(String, usize)>,
    /// Rows as arrays of values in column order instead of objects.
    arrays: bool,
    names: Vec<String>,
    /// Columns named `__proto__`, in order.
    proto: Vec<usize>,
    json: String,
    count: u32,
    /// (row, column, value) to set after parsing.
    later: Vec<(u32, usize, JsValue)>,
}

impl Rows {
    /// Rows as arrays of every column's value, in column order (for query
    /// builders; duplicate column names keep all their values).
    pub fn arrays(names: Vec<String>) -> Rows {
        Rows {
            keys: (0..names.len())
                .map(|index| (String::new(), index))
                .collect(),
            arrays: true,
            names,
            proto: Vec::new(),
            json: String::from("["),
            count: 0,
            later: Vec::new(),
        }
    }

    pub fn new(names: Vec<String>) -> Rows {
        let mut keys: Vec<(String, usize)> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        let mut proto = Vec::new();
        for (index, name) in names.iter().enumerate() {
            if name == "__proto__" {
                proto.push(index);
            } else if let Some(at) = seen.iter().position(|n| n == name) {
                if let Some(key) = keys.get_mut(at) {
                    key.1 = index;
                }
            } else {
                let mut key = String::new();
                json_string(&mut key, name);
                key.push(':');
                keys.push((key, index));
                seen.push(name);
            }
        }
        Rows {
            keys,
            arrays: false,
            names,
            proto,
            json: String::from("["),
            count: 0,
            later: Vec::new(),
        }
    }

    pub fn push(&mut self, row: &rusqlite::Row<'_>) -> rusqlite::Result<()> {
        if self.count > 0 {
            self.json.push(',');
        }
        self.json.push(if self.arrays { '[' } else { '{' });
        for (position, (key, column)) in self.keys.iter().enumerate() {
            if position > 0 {
                self.json.push(',');
            }
            self.json.push_str(key);
            match row.get_ref(*column)? {
                ValueRef::Null => self.json.push_str("null"),
                ValueRef::Integer(i) if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&i) => {
                    let _ = write!(self.json, "{i}");
                }
                // `{:?}` writes the shortest text that reads back exactly.
                ValueRef::Real(f) if f.is_finite() => {
                    let _ = write!(self.json, "{f:?}");
                }
                ValueRef::Text(bytes) => {
                    json_string(&mut self.json, &String::from_utf8_lossy(bytes))
                }
                other => {
                    self.json.push_str("null");
                    self.later.push((self.count, *column, value(other)));
                }
            }
        }
        self.json.push(if self.arrays { ']' } else { '}' });
        for &column in &self.proto {
            self.later
                .push((self.count, column, value(row.get_ref(column)?)));
        }
        self.count += 1;
        Ok(())
    }

    pub fn finish(mut self) -> Result<Array, Error> {
        self.json.push(']');
        let rows: Array = JSON::parse(&self.json)
            .map_err(|_| Error::new("internal error: the rows' JSON text did not parse"))?
            .unchecked_into();
        for (row, column, value) in self.later {
            let key = if self.arrays {
                JsValue::from(column as u32)
            } else {
                JsValue::from_str(self.names.get(column).map_or("", String::as_str))
            };
            set(rows.get(row).unchecked_ref(), &key, &value);
        }
        Ok(rows)
    }
}

/// Appends `text` as a JSON string.
fn json_string(out: &mut String, text: &str) {
    out.push('"');
    let mut start = 0;
    for (index, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        // `index` is at an ASCII byte: a character boundary.
        out.push_str(text.get(start..index).unwrap_or(""));
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        start = index + 1;
    }
    out.push_str(text.get(start..).unwrap_or(""));
    out.push('"');
}
