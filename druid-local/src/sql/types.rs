//! SQL types and values as Druid SQL reports them: the SQL type of each output column, its
//! native (Druid runtime) type for `typesHeader`, its JDBC code for `INFORMATION_SCHEMA`, and how
//! a value of that type is written in a response (legacy null handling: a null string is `""`).

use crate::query::agg::double_json;
use crate::task::parse::java_double;
use chrono::TimeZone;
use chrono_tz::Tz;
use serde_json::Value;

/// The SQL type of a column or expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    /// `__time` and timestamp expressions.
    Timestamp,
    /// Druid LONG columns and counts.
    Bigint,
    /// Integer literals.
    Integer,
    /// Druid DOUBLE columns.
    Double,
    /// Druid FLOAT columns.
    Float,
    /// Decimal literals (computed as doubles, as in Druid).
    Decimal,
    /// Druid STRING columns.
    Varchar,
    /// String literals.
    Char,
    /// Conditions in a select list.
    Boolean,
}

impl SqlType {
    /// The SQL type name (`sqlTypesHeader`, `INFORMATION_SCHEMA.COLUMNS.DATA_TYPE`).
    pub fn name(self) -> &'static str {
        match self {
            SqlType::Timestamp => "TIMESTAMP",
            SqlType::Bigint => "BIGINT",
            SqlType::Integer => "INTEGER",
            SqlType::Double => "DOUBLE",
            SqlType::Float => "FLOAT",
            SqlType::Decimal => "DECIMAL",
            SqlType::Varchar => "VARCHAR",
            SqlType::Char => "CHAR",
            SqlType::Boolean => "BOOLEAN",
        }
    }

    /// The native type Druid runs it as (`typesHeader`).
    pub fn native(self) -> &'static str {
        match self {
            SqlType::Timestamp | SqlType::Bigint | SqlType::Integer | SqlType::Boolean => "LONG",
            SqlType::Double | SqlType::Decimal => "DOUBLE",
            SqlType::Float => "FLOAT",
            SqlType::Varchar | SqlType::Char => "STRING",
        }
    }

    /// `java.sql.Types` code (`INFORMATION_SCHEMA.COLUMNS.JDBC_TYPE`).
    pub fn jdbc(self) -> i64 {
        match self {
            SqlType::Timestamp => 93,
            SqlType::Bigint => -5,
            SqlType::Integer => 4,
            SqlType::Double => 8,
            SqlType::Float => 6,
            SqlType::Decimal => 3,
            SqlType::Varchar => 12,
            SqlType::Char => 1,
            SqlType::Boolean => 16,
        }
    }

    /// Whether the type is a number.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            SqlType::Bigint
                | SqlType::Integer
                | SqlType::Double
                | SqlType::Float
                | SqlType::Decimal
        )
    }

    /// Whether the type is a string.
    pub fn is_string(self) -> bool {
        matches!(self, SqlType::Varchar | SqlType::Char)
    }
}

/// A value while evaluating SQL in memory (system tables, constant expressions).
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// SQL NULL.
    Null,
    /// A string.
    Str(String),
    /// An integer, a boolean-as-number, or a timestamp in epoch milliseconds.
    Long(i64),
    /// A floating-point number.
    Double(f64),
    /// A boolean.
    Bool(bool),
}

impl Val {
    /// As a double, when numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Long(l) => Some(*l as f64),
            Val::Double(d) => Some(*d),
            Val::Str(s) => s.trim().parse().ok(),
            Val::Bool(b) => Some(f64::from(u8::from(*b))),
            Val::Null => None,
        }
    }

    /// The value as JSON (before typing for the response).
    pub fn to_json(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Str(s) => Value::String(s.clone()),
            Val::Long(l) => Value::from(*l),
            Val::Double(d) => double_json(*d),
            Val::Bool(b) => Value::Bool(*b),
        }
    }
}

/// Prints a timestamp the way Druid SQL does (Joda's `dateTime()`): milliseconds, and `Z` in UTC
/// or the offset of `sqlTimeZone`.
pub fn format_timestamp(ms: i64, tz: &Tz) -> String {
    if *tz == Tz::UTC {
        return crate::time::iso(ms);
    }
    match tz.timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
        None => crate::time::iso(ms),
    }
}

/// Writes a native query's value as a response field of type `ty`, the way Druid's SQL layer
/// coerces native results: as [`coerce`], and a null string as `""` (legacy null handling).
pub fn coerce_native(v: &Value, ty: SqlType, tz: &Tz) -> Value {
    if v.is_null() && ty.is_string() {
        return Value::String(String::new());
    }
    coerce(v, ty, tz)
}

/// Writes a value as a response field of type `ty`: timestamps as ISO text, integers
/// truncated, multi-value strings as the JSON text of their array.
pub fn coerce(v: &Value, ty: SqlType, tz: &Tz) -> Value {
    match ty {
        SqlType::Timestamp => match millis_of(v) {
            Some(ms) => Value::String(format_timestamp(ms, tz)),
            None => Value::Null,
        },
        SqlType::Bigint | SqlType::Integer => match v {
            Value::Number(n) => match n.as_i64() {
                Some(l) => Value::from(l),
                None => n.as_f64().map_or(Value::Null, |d| Value::from(d as i64)),
            },
            Value::String(s) => match s.trim().parse::<i64>() {
                Ok(l) => Value::from(l),
                Err(_) => s
                    .trim()
                    .parse::<f64>()
                    .map_or(Value::Null, |d| Value::from(d as i64)),
            },
            Value::Bool(b) => Value::from(i64::from(*b)),
            _ => Value::Null,
        },
        SqlType::Double | SqlType::Decimal | SqlType::Float => match v {
            Value::Number(n) => n.as_f64().map_or(Value::Null, |d| {
                if ty == SqlType::Float {
                    float_json(d)
                } else {
                    double_json(d)
                }
            }),
            // Non-finite doubles travel as strings ("NaN", "Infinity").
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(d) if d.is_finite() => double_json(d),
                _ => Value::String(s.clone()),
            },
            Value::Bool(b) => double_json(f64::from(u8::from(*b))),
            _ => Value::Null,
        },
        SqlType::Varchar | SqlType::Char => match v {
            Value::Null => Value::Null,
            Value::String(_) => v.clone(),
            Value::Number(n) => Value::String(match n.as_i64() {
                Some(l) => l.to_string(),
                None => java_double(n.as_f64().unwrap_or(0.0)),
            }),
            Value::Bool(b) => Value::String(b.to_string()),
            Value::Array(items) => {
                let strings: Vec<Value> = items
                    .iter()
                    .map(|i| coerce_native(i, SqlType::Varchar, tz))
                    .collect();
                Value::String(Value::Array(strings).to_string())
            }
            Value::Object(_) => Value::String(v.to_string()),
        },
        SqlType::Boolean => match v {
            Value::Bool(_) => v.clone(),
            Value::Number(n) => Value::Bool(n.as_f64().is_some_and(|d| d != 0.0)),
            Value::String(s) => Value::Bool(s.eq_ignore_ascii_case("true")),
            _ => Value::Null,
        },
    }
}

/// Epoch milliseconds of a native timestamp (a number, or ISO text).
pub fn millis_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|d| d as i64)),
        Value::String(s) => crate::time::parse_iso(s).ok(),
        _ => None,
    }
}

fn float_json(d: f64) -> Value {
    // The shortest f32 form (0.1, not 0.10000000149011612), as Jackson prints a Float.
    let f = d as f32;
    match f
        .to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
    {
        Some(n) => Value::Number(n),
        None => Value::String(java_double(d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn coercion_follows_druid_sql() {
        let utc = Tz::UTC;
        assert_eq!(
            coerce(&json!(1704103200000i64), SqlType::Timestamp, &utc),
            json!("2024-01-01T10:00:00.000Z")
        );
        assert_eq!(
            coerce(
                &json!("2024-01-01T10:00:00.000Z"),
                SqlType::Timestamp,
                &Tz::Asia__Jakarta
            ),
            json!("2024-01-01T17:00:00.000+07:00")
        );
        assert_eq!(coerce(&json!(7.9), SqlType::Bigint, &utc), json!(7));
        assert_eq!(
            coerce_native(&Value::Null, SqlType::Varchar, &utc),
            json!("")
        );
        assert_eq!(coerce(&Value::Null, SqlType::Varchar, &utc), Value::Null);
        assert_eq!(
            coerce(&json!(["a", "b"]), SqlType::Varchar, &utc),
            json!(r#"["a","b"]"#)
        );
        assert_eq!(coerce(&json!(2), SqlType::Double, &utc), json!(2.0));
        assert_eq!(coerce(&json!("NaN"), SqlType::Double, &utc), json!("NaN"));
        assert_eq!(coerce(&json!(1), SqlType::Boolean, &utc), json!(true));
    }
}
