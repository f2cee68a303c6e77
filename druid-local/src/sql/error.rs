//! SQL failures and the one place that gives them Druid's HTTP face, per Druid version.
//!
//! Druid 27 moved SQL errors to the `DruidException` body
//! (`{"error":"druidException","errorCode","persona","category","errorMessage","context"}`, status
//! from the category); a legacy `QueryException` raised while running (here: the native engine's
//! errors) keeps its `error`/`errorClass`/`host` and is wrapped with `errorCode`
//! `legacyQueryException` (Druid's `ErrorResponse` and `QueryExceptionCompat`). Older versions
//! answer the classic `{"error","errorMessage","errorClass","host"}` body.

use crate::query::QueryError;
use axum::http::StatusCode;
use serde_json::{json, Map, Value};

/// A place in the SQL text, 1-based, end inclusive (as Calcite reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// Line of the first character.
    pub line: u64,
    /// Column of the first character.
    pub column: u64,
    /// Line of the last character.
    pub end_line: u64,
    /// Column of the last character.
    pub end_column: u64,
}

/// Why a SQL request failed.
#[derive(Debug, Clone)]
pub enum SqlError {
    /// The body does not map onto Druid's `SqlQuery` (Jackson mapping error: 400 `{"error"}`).
    Request(String),
    /// The body is not JSON (500, plain text, like druid-local's Overlord answers it).
    Body(String),
    /// The SQL does not parse.
    Parse {
        /// Where the unexpected token starts and ends.
        pos: Pos,
        /// The unexpected token.
        token: String,
        /// What the parser expected instead.
        expected: Vec<String>,
    },
    /// Druid's validator rejects it: unknown table or column, wrong types, ungrouped columns,
    /// unbound parameters.
    Invalid {
        /// Calcite's message, without the position.
        message: String,
        /// Where, when known.
        pos: Option<Pos>,
    },
    /// Druid's planner cannot turn it into a native query (its "Query could not be planned").
    CannotPlan(String),
    /// Druid runs it, druid-local does not: the message names what is unsupported.
    Unsupported(String),
    /// The native engine failed while running the planned query.
    Native(QueryError),
}

impl SqlError {
    /// A validation error at `pos`.
    pub fn invalid(message: impl Into<String>, pos: Option<Pos>) -> SqlError {
        SqlError::Invalid {
            message: message.into(),
            pos,
        }
    }

    /// A feature druid-local does not implement.
    pub fn unsupported(message: impl Into<String>) -> SqlError {
        SqlError::Unsupported(message.into())
    }

    /// The human message alone (tests and logs).
    pub fn message(&self) -> String {
        match response(30, self).2 {
            Body::Json(v) => v["errorMessage"]
                .as_str()
                .or_else(|| v["error"].as_str())
                .unwrap_or_default()
                .to_owned(),
            Body::Text(t) => t,
        }
    }
}

/// A response body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// `application/json`.
    Json(Value),
    /// `text/plain`.
    Text(String),
}

/// The status and body Druid `major` answers for `e`; the headers are the caller's.
pub fn response(major: u32, e: &SqlError) -> (StatusCode, &'static str, Body) {
    match e {
        SqlError::Request(m) => (
            StatusCode::BAD_REQUEST,
            "request",
            Body::Json(json!({ "error": m })),
        ),
        SqlError::Body(m) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "body",
            Body::Text(format!(
                "Unexpected token or characters in request body: {m}"
            )),
        ),
        _ if major >= 27 => druid_exception(e),
        _ => legacy(e),
    }
}

fn pos_context(ctx: &mut Map<String, Value>, p: &Pos) {
    for (k, v) in [
        ("line", p.line),
        ("column", p.column),
        ("endLine", p.end_line),
        ("endColumn", p.end_column),
    ] {
        // DruidException keeps context values as strings.
        ctx.insert(k.into(), Value::String(v.to_string()));
    }
}

fn exception_body(
    code: &str,
    persona: &str,
    category: &str,
    message: String,
    context: Map<String, Value>,
) -> Value {
    json!({"error": "druidException", "errorCode": code, "persona": persona,
           "category": category, "errorMessage": message, "context": context})
}

fn druid_exception(e: &SqlError) -> (StatusCode, &'static str, Body) {
    let sql_ctx = || {
        let mut c = Map::new();
        c.insert("sourceType".into(), json!("sql"));
        c
    };
    match e {
        SqlError::Parse {
            pos,
            token,
            expected,
        } => {
            let mut ctx = sql_ctx();
            pos_context(&mut ctx, pos);
            ctx.insert("token".into(), json!(token));
            ctx.insert(
                "expected".into(),
                json!(format!("[{}]", expected.join(", "))),
            );
            let message = format!(
                "Received an unexpected token [{token}] (line [{}], column [{}]), acceptable options: [{}]",
                pos.line,
                pos.column,
                expected.join(", ")
            );
            (
                StatusCode::BAD_REQUEST,
                "parse",
                Body::Json(exception_body(
                    "invalidInput",
                    "USER",
                    "INVALID_INPUT",
                    message,
                    ctx,
                )),
            )
        }
        SqlError::Invalid { message, pos } => {
            let mut ctx = sql_ctx();
            let message = match pos {
                Some(p) => {
                    pos_context(&mut ctx, p);
                    format!("{message} (line [{}], column [{}])", p.line, p.column)
                }
                None => message.clone(),
            };
            (
                StatusCode::BAD_REQUEST,
                "invalid",
                Body::Json(exception_body(
                    "invalidInput",
                    "USER",
                    "INVALID_INPUT",
                    message,
                    ctx,
                )),
            )
        }
        SqlError::CannotPlan(reason) => (
            StatusCode::BAD_REQUEST,
            "cannot plan",
            Body::Json(exception_body(
                "general",
                "ADMIN",
                "INVALID_INPUT",
                format!("Query could not be planned. A possible reason is [{reason}]"),
                Map::new(),
            )),
        ),
        SqlError::Unsupported(m) => (
            StatusCode::NOT_IMPLEMENTED,
            "unsupported",
            Body::Json(exception_body(
                "general",
                "OPERATOR",
                "UNSUPPORTED",
                m.clone(),
                Map::new(),
            )),
        ),
        SqlError::Native(q) => {
            let (status, code, message, class) = q.parts();
            let category = match status {
                StatusCode::BAD_REQUEST => "INVALID_INPUT",
                StatusCode::NOT_IMPLEMENTED => "UNSUPPORTED",
                _ => "UNCATEGORIZED",
            };
            let body = json!({
                "error": code, "errorClass": class, "host": null,
                "errorCode": "legacyQueryException", "persona": "OPERATOR", "category": category,
                "errorMessage": message,
                "context": {"host": null, "errorClass": class, "legacyErrorCode": code},
            });
            (status, "native", Body::Json(body))
        }
        SqlError::Request(_) | SqlError::Body(_) => legacy(e),
    }
}

fn classic(code: &str, message: String, class: &str) -> Body {
    Body::Json(json!({"error": code, "errorMessage": message, "errorClass": class, "host": null}))
}

fn legacy(e: &SqlError) -> (StatusCode, &'static str, Body) {
    match e {
        SqlError::Parse {
            pos,
            token,
            expected,
        } => (
            StatusCode::BAD_REQUEST,
            "parse",
            classic(
                "SQL parse failed",
                format!(
                    "Encountered \"{token}\" at line {}, column {}.\nWas expecting one of:\n    {}",
                    pos.line,
                    pos.column,
                    expected.join("\n    ")
                ),
                "org.apache.calcite.sql.parser.SqlParseException",
            ),
        ),
        SqlError::Invalid { message, pos } => {
            let message = match pos {
                Some(p) => format!(
                    "org.apache.calcite.runtime.CalciteContextException: From line {}, column {} to line {}, column {}: {message}",
                    p.line, p.column, p.end_line, p.end_column
                ),
                None => message.clone(),
            };
            (
                StatusCode::BAD_REQUEST,
                "invalid",
                classic(
                    "Plan validation failed",
                    message,
                    "org.apache.calcite.tools.ValidationException",
                ),
            )
        }
        SqlError::CannotPlan(reason) => (
            StatusCode::BAD_REQUEST,
            "cannot plan",
            classic(
                "SQL query is unsupported",
                format!("Query not supported. Possible error: {reason}"),
                "org.apache.druid.sql.calcite.planner.UnsupportedSQLQueryException",
            ),
        ),
        SqlError::Unsupported(m) => (
            StatusCode::NOT_IMPLEMENTED,
            "unsupported",
            classic(
                "Unsupported operation",
                m.clone(),
                "org.apache.druid.query.QueryUnsupportedException",
            ),
        ),
        SqlError::Native(q) => {
            let (status, code, message, class) = q.parts();
            (status, "native", classic(code, message.to_owned(), class))
        }
        SqlError::Request(_) | SqlError::Body(_) => response(30, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos() -> Pos {
        Pos {
            line: 1,
            column: 15,
            end_line: 1,
            end_column: 18,
        }
    }

    #[test]
    fn druid_30_shapes() {
        let (status, _, body) = response(
            30,
            &SqlError::invalid("Object 'nope' not found", Some(pos())),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            Body::Json(
                json!({"error": "druidException", "errorCode": "invalidInput",
                "persona": "USER", "category": "INVALID_INPUT",
                "errorMessage": "Object 'nope' not found (line [1], column [15])",
                "context": {"sourceType": "sql", "line": "1", "column": "15", "endLine": "1", "endColumn": "18"}})
            )
        );
        let (status, _, body) = response(30, &SqlError::unsupported("JOIN is not supported"));
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
        let Body::Json(v) = body else { panic!() };
        assert_eq!(v["category"], "UNSUPPORTED");
        let (status, _, body) = response(
            30,
            &SqlError::Native(QueryError::unsupported("filter type [search]")),
        );
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
        let Body::Json(v) = body else { panic!() };
        assert_eq!(v["errorCode"], "legacyQueryException");
        assert_eq!(v["error"], "Unsupported operation");
        assert_eq!(v["context"]["legacyErrorCode"], "Unsupported operation");
    }

    #[test]
    fn older_versions_answer_the_classic_body() {
        let (status, _, body) = response(
            26,
            &SqlError::invalid("Object 'nope' not found", Some(pos())),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let Body::Json(v) = body else { panic!() };
        assert_eq!(v["error"], "Plan validation failed");
        assert_eq!(
            v["errorClass"],
            "org.apache.calcite.tools.ValidationException"
        );
        assert!(v["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("From line 1, column 15 to line 1, column 18: Object 'nope' not found"));
        assert!(v.get("persona").is_none());
    }
}
