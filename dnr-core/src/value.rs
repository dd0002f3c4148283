//! Values of rows and context, compared the same way every engine compares
//! them: uuids by value, text in binary (C) order, booleans as 0/1, NULL as
//! unknown.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use uuid::Uuid;

use crate::ast::{Entity, FieldType, Literal, ValueClass};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Uuid(Uuid),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("`{0}` is not a valid uuid")]
    InvalidUuid(String),
    #[error("the record must be a JSON object")]
    NotAnObject,
    #[error("field `{field}`: {problem}")]
    Field { field: String, problem: String },
}

/// Parses a uuid in any spelling PostgreSQL accepts for the type (hyphenated,
/// braced, unhyphenated; any case). Never trims or guesses beyond that.
pub fn parse_uuid(text: &str) -> Result<Uuid, ValueError> {
    let bytes = text.as_bytes();
    let inner = if bytes.first() == Some(&b'{') && bytes.last() == Some(&b'}') && text.len() >= 2 {
        &text[1..text.len() - 1]
    } else {
        text
    };
    let valid_shape = match inner.len() {
        32 => inner.bytes().all(|b| b.is_ascii_hexdigit()),
        36 => inner.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        }),
        _ => false,
    };
    if !valid_shape {
        return Err(ValueError::InvalidUuid(text.to_string()));
    }
    Uuid::parse_str(inner).map_err(|_| ValueError::InvalidUuid(text.to_string()))
}

impl Value {
    pub fn from_literal(literal: &Literal) -> Value {
        match literal {
            Literal::Str(text) => Value::Text(text.clone()),
            Literal::Int(n) => Value::Int(*n),
            Literal::Float(x) => Value::Float(*x),
            Literal::Bool(b) => Value::Bool(*b),
            Literal::Null => Value::Null,
        }
    }

    /// SQL comparison: `None` when either side is NULL or the two cannot be
    /// compared (which, like NULL, makes a condition deny).
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        use Value::*;
        match (self, other) {
            (Null, _) | (_, Null) => None,
            (Uuid(a), Uuid(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (Uuid(a), Text(b)) => match parse_uuid(b) {
                Ok(b) => Some(a.as_bytes().cmp(b.as_bytes())),
                Err(_) => None,
            },
            (Text(_), Uuid(_)) => other.compare(self).map(Ordering::reverse),
            (Text(a), Text(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (Int(a), Float(b)) => (*a as f64).partial_cmp(b),
            (Float(a), Int(b)) => a.partial_cmp(&(*b as f64)),
            (Float(a), Float(b)) => a.partial_cmp(b),
            (Bool(a), Bool(b)) => Some(a.cmp(b)),
            (Bool(a), Int(_) | Float(_)) => Int(i64::from(*a)).compare(other),
            (Int(_) | Float(_), Bool(b)) => self.compare(&Int(i64::from(*b))),
            _ => None,
        }
    }
}

/// One record: column name to value. Missing columns read as NULL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    values: BTreeMap<String, Value>,
}

impl Row {
    pub fn new() -> Row {
        Row::default()
    }

    pub fn with(mut self, column: &str, value: Value) -> Row {
        self.set(column, value);
        self
    }

    pub fn set(&mut self, column: &str, value: Value) {
        self.values.insert(column.to_string(), value);
    }

    pub fn get(&self, column: &str) -> &Value {
        self.values.get(column).unwrap_or(&Value::Null)
    }

    pub fn is_missing_or_null(&self, column: &str) -> bool {
        matches!(self.get(column), Value::Null)
    }

    pub fn columns(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.values.iter()
    }

    /// Reads a JSON object as a row of `entity`, typing each declared field
    /// (uuids are parsed and an invalid one is an error, never "unequal").
    pub fn from_json(entity: &Entity, json: &serde_json::Value) -> Result<Row, ValueError> {
        let object = json.as_object().ok_or(ValueError::NotAnObject)?;
        let mut row = Row::new();
        for (column, value) in object {
            let declared = entity.field(column).map(|f| &f.ty);
            row.set(column, json_value(column, declared, value)?);
        }
        Ok(row)
    }
}

fn json_value(
    column: &str,
    declared: Option<&FieldType>,
    value: &serde_json::Value,
) -> Result<Value, ValueError> {
    use serde_json::Value as J;
    let field_error = |problem: String| ValueError::Field {
        field: column.to_string(),
        problem,
    };
    let class = declared.map(FieldType::class);
    Ok(match value {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(f)) => Value::Float(f),
            _ => return Err(field_error(format!("number `{n}` is out of range"))),
        },
        J::String(text) if class == Some(ValueClass::Uuid) => {
            Value::Uuid(parse_uuid(text).map_err(|e| field_error(e.to_string()))?)
        }
        J::String(text) => Value::Text(text.clone()),
        J::Array(_) | J::Object(_) => Value::Text(value.to_string()),
    })
}
