//! Values between JavaScript and SQLite.
//!
//! Parameters: `null`/`undefined` → NULL, `boolean` → 0/1, a `number` with
//! no fractional part → INTEGER (other numbers → REAL), `bigint` → INTEGER
//! (64-bit range), `string` → TEXT, `Uint8Array`/`ArrayBuffer` → BLOB.
//! Results: INTEGER → `number` when it is a safe integer (|n| ≤ 2^53 − 1),
//! otherwise `bigint`; REAL → `number`; TEXT → `string`; BLOB → `Uint8Array`;
//! NULL → `null`.

use js_sys::{Array, ArrayBuffer, BigInt, Object, Reflect, Uint8Array};
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
    if value.is_null() || value.is_undefined() {
        return Ok(Value::Null);
    }
    if let Some(b) = value.as_bool() {
        return Ok(Value::Integer(i64::from(b)));
    }
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
