//! The request body of `POST /druid/v2/sql`, mapped the way Druid's `SqlQuery` is: `query`
//! (required), `resultFormat` (case-insensitive, default `object`), `header`, `typesHeader`,
//! `sqlTypesHeader` (the last two only with `header`), `context`, `parameters` (`{type,value}`).
//! Unknown fields are ignored, as Druid does.

use super::error::SqlError;
use serde_json::{Map, Value};

/// How result rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFormat {
    /// A JSON array of objects.
    Object,
    /// A JSON array of arrays.
    Array,
    /// One JSON object a line, then a blank line.
    ObjectLines,
    /// One JSON array a line, then a blank line.
    ArrayLines,
    /// CSV, then a blank line.
    Csv,
}

impl ResultFormat {
    /// Parses a format name the way Druid does (`valueOf` of the upper-cased name).
    pub fn parse(name: &str) -> Option<ResultFormat> {
        Some(match name.to_ascii_uppercase().as_str() {
            "OBJECT" => ResultFormat::Object,
            "ARRAY" => ResultFormat::Array,
            "OBJECTLINES" => ResultFormat::ObjectLines,
            "ARRAYLINES" => ResultFormat::ArrayLines,
            "CSV" => ResultFormat::Csv,
            _ => return None,
        })
    }
}

/// A `?` parameter value.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// The SQL type name as sent (`VARCHAR`, `BIGINT`, `TIMESTAMP`, ...), upper-cased.
    pub ty: String,
    /// The value (`null` binds NULL).
    pub value: Value,
}

/// A parsed SQL request.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlRequest {
    /// The SQL text.
    pub query: String,
    /// Result format.
    pub format: ResultFormat,
    /// Write the column names first.
    pub header: bool,
    /// Add the native types to the header.
    pub types_header: bool,
    /// Add the SQL types to the header.
    pub sql_types_header: bool,
    /// The query context.
    pub context: Map<String, Value>,
    /// Values for the `?` marks, in order.
    pub parameters: Vec<Parameter>,
}

const SQL_QUERY: &str = "Cannot construct instance of `org.apache.druid.sql.http.SqlQuery`";

fn flag(o: &Map<String, Value>, key: &str) -> Result<bool, SqlError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        // Jackson coerces these textual booleans.
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        Some(other) => Err(SqlError::Request(format!(
            "Cannot deserialize value of type `boolean` from {other} (field [{key}])"
        ))),
    }
}

impl SqlRequest {
    /// Maps a JSON body; a body Druid would not map answers what Jackson says.
    pub fn from_json(v: &Value) -> Result<SqlRequest, SqlError> {
        let o = v.as_object().ok_or_else(|| {
            SqlError::Request(format!(
                "Cannot deserialize value of type `org.apache.druid.sql.http.SqlQuery` from {}",
                kind(v)
            ))
        })?;
        let query = match o.get("query") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => {
                return Err(SqlError::Request(format!("{SQL_QUERY}, problem: query")))
            }
            Some(other) => {
                return Err(SqlError::Request(format!(
                    "Cannot deserialize value of type `java.lang.String` from {} (field [query])",
                    kind(other)
                )))
            }
        };
        let format = match o.get("resultFormat") {
            None | Some(Value::Null) => ResultFormat::Object,
            Some(Value::String(s)) => ResultFormat::parse(s).ok_or_else(|| {
                SqlError::Request(format!(
                    "Cannot construct instance of `org.apache.druid.sql.http.ResultFormat`, problem: No enum constant org.apache.druid.sql.http.ResultFormat.{}",
                    s.to_ascii_uppercase()
                ))
            })?,
            Some(other) => {
                return Err(SqlError::Request(format!(
                    "Cannot deserialize value of type `org.apache.druid.sql.http.ResultFormat` from {}",
                    kind(other)
                )))
            }
        };
        let header = flag(o, "header")?;
        let types_header = flag(o, "typesHeader")?;
        let sql_types_header = flag(o, "sqlTypesHeader")?;
        for (set, name) in [
            (types_header, "typesHeader"),
            (sql_types_header, "sqlTypesHeader"),
        ] {
            if set && !header {
                return Err(SqlError::Request(format!(
                    "{SQL_QUERY}, problem: Cannot include '{name}' without 'header'"
                )));
            }
        }
        let context = match o.get("context") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(c)) => c.clone(),
            Some(other) => {
                return Err(SqlError::Request(format!(
                    "Cannot deserialize value of type `java.util.LinkedHashMap` from {} (field [context])",
                    kind(other)
                )))
            }
        };
        let parameters = match o.get("parameters") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|p| {
                    let ty = p.get("type").and_then(Value::as_str).ok_or_else(|| {
                        SqlError::Request(format!(
                            "Cannot construct instance of `org.apache.druid.sql.http.SqlParameter`, problem: type (parameter {p})"
                        ))
                    })?;
                    Ok(Parameter {
                        ty: ty.to_ascii_uppercase(),
                        value: p.get("value").cloned().unwrap_or(Value::Null),
                    })
                })
                .collect::<Result<_, SqlError>>()?,
            Some(other) => {
                return Err(SqlError::Request(format!(
                    "Cannot deserialize value of type `java.util.ArrayList` from {} (field [parameters])",
                    kind(other)
                )))
            }
        };
        Ok(SqlRequest {
            query,
            format,
            header,
            types_header,
            sql_types_header,
            context,
            parameters,
        })
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "Boolean value",
        Value::Number(_) => "Number value",
        Value::String(_) => "String value",
        Value::Array(_) => "Array value",
        Value::Object(_) => "Object value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_druids_fields() {
        let r = SqlRequest::from_json(&json!({
            "query": "SELECT 1", "resultFormat": "arrayLines", "header": true,
            "typesHeader": true, "context": {"sqlTimeZone": "Etc/UTC"},
            "parameters": [{"type": "varchar", "value": "en"}], "unknown": 1
        }))
        .unwrap();
        assert_eq!(r.format, ResultFormat::ArrayLines);
        assert!(r.header && r.types_header && !r.sql_types_header);
        assert_eq!(r.parameters[0].ty, "VARCHAR");
        assert_eq!(r.context["sqlTimeZone"], "Etc/UTC");
        let d = SqlRequest::from_json(&json!({"query": "SELECT 1"})).unwrap();
        assert_eq!(d.format, ResultFormat::Object);
    }

    #[test]
    fn refuses_what_jackson_refuses() {
        let msg = |v: Value| match SqlRequest::from_json(&v) {
            Err(SqlError::Request(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(msg(json!({})).ends_with("problem: query"));
        assert!(msg(json!({"query": "x", "resultFormat": "tsv"})).contains("ResultFormat.TSV"));
        assert!(msg(json!({"query": "x", "typesHeader": true}))
            .contains("Cannot include 'typesHeader' without 'header'"));
        assert!(msg(json!({"query": "x", "parameters": [{"value": 1}]})).contains("type"));
        assert!(msg(json!(["x"])).contains("Array value"));
    }
}
