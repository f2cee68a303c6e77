//! Druid SQL at `POST /druid/v2/sql` (and `/druid/v2/sql/`): the request, the answer and the
//! errors as Druid 30 gives them, a planner from the `sqlparser` AST onto the native engine,
//! and the `INFORMATION_SCHEMA` and `sys` tables from druid-local's own state.
//!
//! # What Druid does (read from its `SqlResource`, `SqlQuery`, `ResultFormat` and writers,
//! `QueryResultPusher`, `ErrorResponse`, `QueryExceptionCompat`, `InvalidSqlInput`,
//! `DruidSqlParser`, `InformationSchema`, `SystemSchema`, and the "Druid SQL API" docs)
//!
//! **Request.** A JSON object (`Content-Type: application/json`; other types 415 in Druid 30,
//! which has `@Consumes(APPLICATION_JSON)`; raw SQL bodies came in 2025, apache/druid#17937):
//! `query` (required), `resultFormat` (`object`
//! default, `array`, `objectLines`, `arrayLines`, `csv`, matched case-insensitively),
//! `header`, `typesHeader` and `sqlTypesHeader` (the last two refused without `header`),
//! `context` (`sqlQueryId`, `sqlTimeZone`, `sqlOuterLimit`, `sqlCurrentTimestamp` ...),
//! `parameters` (`[{"type":"VARCHAR","value":"en"}]`, bound to the `?` marks in order; too few
//! answers `No value bound for parameter (position [n])`). Unknown fields are ignored. A body
//! Jackson cannot map (missing `query`, unknown format, `typesHeader` without `header`)
//! answers 400 `{"error": <Jackson's message>}` (Druid's `CustomExceptionMapper`).
//!
//! **Answer.** 200 with `Content-Type: application/json` for every format: Druid 30's pusher
//! is built with `APPLICATION_JSON` whatever the format, and a live Druid measured that way,
//! although the docs say `text/plain` for the lines formats and `text/csv` for CSV. `object`:
//! `[{...},...]` then a line feed; `array`: `[[...],...]` then a line feed; `objectLines` and
//! `arrayLines`: one row a line, then an empty line (`\n\n` at the end, just `\n\n` for no
//! rows) so a cut-off answer shows; `csv`: opencsv rows (quoted when a field holds `"`, `,` or
//! a line break; a row of one empty field quoted), then an empty line. With `header` the first
//! row holds the names (`object`: `{"name":null}`), with `typesHeader` the native types
//! (`LONG`, `DOUBLE`, `FLOAT`, `STRING`; `__time` is `LONG`), with `sqlTypesHeader` the SQL
//! types; objects hold `{"type":..,"sqlType":..}` per name. Headers `X-Druid-SQL-Query-Id` and
//! `X-Druid-Query-Id` (both the `sqlQueryId`), and `X-Druid-SQL-Header-Included: yes` with
//! `header`. Values: `TIMESTAMP` as ISO text with milliseconds, `Z` or the `sqlTimeZone`
//! offset; `BIGINT` numbers (an `AVG` of longs is a `BIGINT`, truncated); `DOUBLE` numbers,
//! non-finite ones as strings; `VARCHAR` strings, a multi-value one as the JSON text of its
//! array, and in legacy null handling (druid-local's) a null string from a native query as
//! `""` (Druid's `nullToEmptyIfNeeded`), while system tables keep their nulls. Unnamed
//! expressions are named `EXPR$<position>`. Timestamp text follows Calcite: `TIMESTAMP
//! 'yyyy-MM-dd HH:mm:ss[.fff]'` (an ISO `T` or a zone is an "Illegal TIMESTAMP literal"), a
//! string compared with `__time` may also be a bare date, both read in `sqlTimeZone`;
//! `TIME_PARSE` takes ISO-8601.
//!
//! **Errors.** Druid 27 and later answer the `DruidException` body (see [`error`]):
//! a parse error is 400 `invalidInput`/`USER`/`INVALID_INPUT` `Received an unexpected token
//! [t] (line [l], column [c]), acceptable options: [...]` with `context` `sourceType`, `line`,
//! `column`, `endLine`, `endColumn`, `token`, `expected`; an unknown table is 400
//! `invalidInput` `Object 'x' not found (line [l], column [c])` (`... not found within
//! 'druid'` when qualified), an unknown column "Column 'x' not found in any table", an
//! ungrouped column "Expression 'x' is not being grouped", an unknown function "No match found
//! for function signature F(...)"; a statement the planner cannot map is 400 `general`/`ADMIN`
//! "Query could not be planned. A possible reason is [...]" (Druid's answer to `ORDER BY` a
//! non-time column without grouping); an unsupported operation is 501 `UNSUPPORTED`. An error
//! of the native engine (a legacy `QueryException`) keeps `error`, `errorClass` and `host` and
//! adds `errorCode: legacyQueryException`, `persona: OPERATOR` and the category of its fail
//! type. Versions before 27 answer `{"error","errorMessage","errorClass","host"}`
//! (`SQL parse failed`, `Plan validation failed` with Calcite's "From line l, column c to ...:"
//! message, `Unsupported operation`). Error answers carry the same id headers.
//!
//! **Metadata.** Schemas `INFORMATION_SCHEMA`, `druid`, `lookup`, `sys`, `view` in catalog
//! `druid`. `TABLES` has `TABLE_CATALOG`, `TABLE_SCHEMA`, `TABLE_NAME`, `TABLE_TYPE` (`TABLE`,
//! `SYSTEM_TABLE`), `IS_JOINABLE`, `IS_BROADCAST`. `COLUMNS` has the SQL standard columns plus
//! `JDBC_TYPE` (a `BIGINT`, the `java.sql.Types` code); every other column is `VARCHAR`,
//! `ORDINAL_POSITION` too (the 0-based field index as text), `IS_NULLABLE` `YES` for strings
//! and `NO` for `__time` and (legacy null handling) numbers. A dataSource's columns are
//! `__time` (`TIMESTAMP`), its dimensions (`VARCHAR`) and its metrics (`BIGINT`, `DOUBLE`,
//! `FLOAT`); druid-local lists them in segment order. `sys.segments` and `sys.tasks` have
//! Druid 30's columns.
//!
//! # What druid-local does
//!
//! [`parse`] reads the SQL with `sqlparser`, [`bind`] resolves it against one table,
//! [`native`] maps a dataSource statement onto one native query run by the existing engine,
//! [`eval`] runs system-table statements in memory, [`mod@format`] writes the rows. What cannot be
//! mapped answers the unsupported error naming the feature, never a guessed result. The
//! supported SQL is tabulated in the crate README.

pub mod bind;
pub mod catalog;
pub mod error;
pub mod eval;
pub mod filter;
pub mod format;
pub mod native;
pub mod parse;
pub mod request;
pub mod types;

#[cfg(test)]
mod tests;

use crate::http::{self, media, Media};
use crate::Shared;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use catalog::TableRef;
use chrono_tz::Tz;
use error::{Body, SqlError};
use eval::Output;
use request::SqlRequest;
use serde_json::Value;
use std::sync::Arc;

/// The Druid major version whose SQL answers druid-local gives.
pub const PLAYED_DRUID_MAJOR: u32 = 30;

fn context_str<'a>(req: &'a SqlRequest, key: &str) -> Option<&'a str> {
    req.context.get(key).and_then(Value::as_str)
}

/// Runs one request to its typed rows.
pub fn run(shared: &Shared, req: &SqlRequest, query_id: &str) -> Result<Output, SqlError> {
    let tz: Tz = match context_str(req, "sqlTimeZone") {
        None => Tz::UTC,
        Some(z) => z
            .parse()
            .map_err(|_| SqlError::invalid(format!("Invalid sqlTimeZone [{z}]"), None))?,
    };
    let now = match req.context.get("sqlCurrentTimestamp") {
        None | Some(Value::Null) => crate::time::now_millis(),
        Some(v) => crate::time::parse_instant(v)
            .ok_or_else(|| SqlError::invalid(format!("Invalid sqlCurrentTimestamp [{v}]"), None))?,
    };
    let stmt = parse::parse(&req.query, &req.parameters)?;
    let bound = bind::bind(shared, &stmt, &bind::Env { now, tz })?;
    let mut out = match &bound.table {
        TableRef::DataSource(ds) => {
            let ctx = native::Ctx {
                tz: &tz,
                context: &req.context,
                query_id,
            };
            let plan = native::plan(&bound, ds, &ctx)?;
            native::execute(shared, &plan, &tz)?
        }
        table => eval::run(&bound, catalog::rows(shared, table), &tz)?,
    };
    if let Some(l) = req.context.get("sqlOuterLimit").and_then(Value::as_u64) {
        out.rows.truncate(l as usize);
    }
    Ok(out)
}

fn with_ids(mut r: Response, query_id: &str, header_included: bool) -> Response {
    if let Ok(v) = HeaderValue::from_str(query_id) {
        r.headers_mut().insert("X-Druid-SQL-Query-Id", v.clone());
        r.headers_mut().insert("X-Druid-Query-Id", v);
    }
    if header_included {
        r.headers_mut().insert(
            "X-Druid-SQL-Header-Included",
            HeaderValue::from_static("yes"),
        );
    }
    r
}

fn error_response(e: &SqlError) -> Response {
    let (status, kind, body) = error::response(PLAYED_DRUID_MAJOR, e);
    tracing::debug!(kind, %status, "SQL request failed");
    match body {
        Body::Json(v) => http::json(status, v),
        Body::Text(t) => (status, t).into_response(),
    }
}

/// `POST /druid/v2/sql`.
pub async fn handle(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if media(&headers) != Some(Media::Json) {
        return http::unsupported_media();
    }
    let req = serde_json::from_slice::<Value>(&body)
        .map_err(|e| SqlError::Body(e.to_string()))
        .and_then(|v| SqlRequest::from_json(&v));
    let req = match req {
        Ok(r) => r,
        Err(e) => {
            let id = uuid::Uuid::new_v4().to_string();
            return with_ids(error_response(&e), &id, false);
        }
    };
    let query_id = context_str(&req, "sqlQueryId")
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let (shared2, req2, id2) = (shared.clone(), req.clone(), query_id.clone());
    let result = tokio::task::spawn_blocking(move || run(&shared2, &req2, &id2)).await;
    let response = match result {
        Ok(Ok(out)) => {
            let bytes = format::write(&req, &out.columns, &out.rows);
            let mut r = (StatusCode::OK, bytes).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Ok(Err(e)) => error_response(&e),
        Err(e) => error_response(&SqlError::Native(crate::query::QueryError::internal(
            e.to_string(),
        ))),
    };
    with_ids(response, &query_id, req.header)
}
