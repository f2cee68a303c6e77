//! Native queries at `/druid/v2`: request parsing, Druid's error bodies, and dispatch to the
//! engines (timeseries, topN, groupBy, scan, search, timeBoundary, segmentMetadata,
//! dataSourceMetadata).

pub mod agg;
mod engine;
pub mod expr;
pub mod filter;
pub mod join;

use crate::config::NullHandling;
use crate::http::{self, media};
use crate::time::{Granularity, Interval, ETERNITY};
use crate::Shared;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::sync::Arc;

/// A query failure with Druid's HTTP face.
#[derive(Debug, Clone)]
pub struct QueryError {
    status: StatusCode,
    error: &'static str,
    message: String,
    class: &'static str,
}

impl QueryError {
    /// The query does not map. The Broker lets Jackson's exception reach the top: 500 "Unknown
    /// exception" with the exception's class, and the fixed message "Unhandled exception made
    /// it to the top", where druid-local says what is wrong instead.
    pub fn invalid(msg: impl Into<String>) -> QueryError {
        QueryError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "Unknown exception",
            message: msg.into(),
            class: "com.fasterxml.jackson.databind.exc.ValueInstantiationException",
        }
    }
    /// An unknown `type` (query, aggregator, filter...): [`QueryError::invalid`] with
    /// Jackson's type-id exception.
    pub fn unknown_type(msg: impl Into<String>) -> QueryError {
        QueryError {
            class: "com.fasterxml.jackson.databind.exc.InvalidTypeIdException",
            ..QueryError::invalid(msg)
        }
    }
    /// A feature druid-local does not have (501 "Unsupported operation").
    pub fn unsupported(msg: impl Into<String>) -> QueryError {
        QueryError {
            status: StatusCode::NOT_IMPLEMENTED,
            error: "Unsupported operation",
            message: msg.into(),
            class: "org.apache.druid.query.QueryUnsupportedException",
        }
    }
    /// A failure inside druid-local (500 "Unknown exception").
    pub fn internal(msg: impl Into<String>) -> QueryError {
        QueryError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "Unknown exception",
            message: msg.into(),
            class: "java.lang.RuntimeException",
        }
    }
    /// Status, Druid error code, message and error class.
    pub fn parts(&self) -> (StatusCode, &'static str, &str, &'static str) {
        (self.status, self.error, &self.message, self.class)
    }
    /// The HTTP answer; `host` is the server's for errors raised while handling the query.
    fn response(&self, host: Option<&str>) -> Response {
        http::json(
            self.status,
            json!({"error": self.error, "errorMessage": self.message, "errorClass": self.class, "host": host}),
        )
    }
}

/// Fields every query type shares.
#[derive(Debug)]
pub struct Common {
    /// Table name (the leftmost table of a join).
    pub data_source: String,
    /// The full data source.
    pub source: join::DataSource,
    /// Expression virtual columns, in order.
    pub virtual_columns: Vec<join::VirtualColumn>,
    /// Query intervals (all time when absent, for the types that allow it).
    pub intervals: Vec<Interval>,
    /// Bucketing.
    pub granularity: Granularity,
    /// Row filter.
    pub filter: Option<filter::Filter>,
    /// The `context` object.
    pub context: Value,
    /// How null numbers aggregate.
    pub null_handling: NullHandling,
}

fn parse_intervals(v: Option<&Value>, required: bool) -> Result<Vec<Interval>, QueryError> {
    let list: Vec<&Value> = match v {
        None | Some(Value::Null) => {
            if required {
                return Err(QueryError::invalid("Missing fields [intervals]"));
            }
            return Ok(vec![ETERNITY]);
        }
        Some(Value::String(_)) => vec![v.unwrap_or(&Value::Null)],
        Some(Value::Array(a)) => a.iter().collect(),
        Some(Value::Object(o)) => match o.get("intervals").and_then(Value::as_array) {
            Some(a) => a.iter().collect(),
            None => match o.get("segments") {
                Some(_) => {
                    return Err(QueryError::unsupported(
                        "segment-spec intervals (`segments`) are not supported by druid-local",
                    ))
                }
                None => {
                    return Err(QueryError::invalid(format!(
                        "invalid intervals {}",
                        Value::Object(o.clone())
                    )))
                }
            },
        },
        Some(other) => return Err(QueryError::invalid(format!("invalid intervals {other}"))),
    };
    list.into_iter()
        .map(|s| {
            s.as_str()
                .ok_or_else(|| QueryError::invalid(format!("interval {s} must be a string")))
                .and_then(|s| Interval::parse(s).map_err(QueryError::invalid))
        })
        .collect()
}

fn parse_common(q: &Value, intervals_required: bool) -> Result<Common, QueryError> {
    let source = join::DataSource::parse(
        q.get("dataSource")
            .ok_or_else(|| QueryError::invalid("Missing fields [dataSource]"))?,
    )?;
    let granularity = match q.get("granularity") {
        None | Some(Value::Null) => Granularity::All,
        Some(g) => Granularity::from_json(g).map_err(QueryError::invalid)?,
    };
    let filter = match q.get("filter") {
        None | Some(Value::Null) => None,
        Some(f) => Some(filter::Filter::parse(f)?),
    };
    let virtual_columns = match q.get("virtualColumns") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(join::VirtualColumn::parse)
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(QueryError::invalid(format!(
                "virtualColumns must be a list, got {other}"
            )))
        }
    };
    Ok(Common {
        data_source: source.base_table().to_owned(),
        source,
        virtual_columns,
        intervals: parse_intervals(q.get("intervals"), intervals_required)?,
        granularity,
        filter,
        context: q.get("context").cloned().unwrap_or(Value::Null),
        null_handling: NullHandling::default(),
    })
}

/// Runs one query JSON.
pub fn run(shared: &Shared, q: &Value) -> Result<Value, QueryError> {
    let ty = q.get("queryType").and_then(Value::as_str).ok_or_else(|| QueryError::unknown_type("Could not resolve subtype of [simple type, class org.apache.druid.query.Query]: missing type id property 'queryType'"))?;
    let known = [
        "timeseries",
        "topN",
        "groupBy",
        "scan",
        "timeBoundary",
        "segmentMetadata",
        "dataSourceMetadata",
        "search",
    ];
    if !known.contains(&ty) {
        if ["select", "windowOperator"].contains(&ty) {
            return Err(QueryError::unsupported(format!(
                "queryType [{ty}] is not supported by druid-local; supported: {}",
                known.join(", ")
            )));
        }
        return Err(QueryError::unknown_type(format!("Could not resolve type id '{ty}' as a subtype of `org.apache.druid.query.Query`: known type ids = [{}]", known.join(", "))));
    }
    let required = matches!(ty, "timeseries" | "topN" | "groupBy" | "scan" | "search");
    let mut common = parse_common(q, required)?;
    common.null_handling = shared.null_handling;
    let mut segments = shared.store.view(&common.data_source, &common.intervals);
    let joined = matches!(common.source, join::DataSource::Join(_));
    if joined || !common.virtual_columns.is_empty() {
        if !matches!(ty, "timeseries" | "topN" | "groupBy" | "scan") {
            return Err(QueryError::unsupported(format!(
                "queryType [{ty}] over a join or with virtualColumns is not supported by druid-local; timeseries, topN, groupBy and scan are"
            )));
        }
        segments = join::derive(segments, &common.source, &common.virtual_columns)?;
    }
    match ty {
        "timeseries" => engine::timeseries(q, &common, &segments),
        "topN" => engine::top_n(q, &common, &segments),
        "groupBy" => engine::group_by(q, &common, &segments),
        "scan" => engine::scan(q, &common, &segments),
        "timeBoundary" => engine::time_boundary(q, &common, &segments),
        "segmentMetadata" => engine::segment_metadata(q, &common, &segments),
        "search" => engine::search(q, &common, &segments),
        _ => engine::data_source_metadata(&segments),
    }
}

/// `POST /druid/v2`.
pub async fn handle(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(m) = media(&headers) else {
        return http::unsupported_media();
    };
    let q = match http::parse_body(m, &body) {
        Ok(q) => q,
        Err(e) => {
            return QueryError {
                status: StatusCode::BAD_REQUEST,
                error: "Json parse failed",
                message: e,
                class: "com.fasterxml.jackson.core.JsonParseException",
            }
            .response(None)
        }
    };
    let query_id = q
        .pointer("/context/queryId")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let shared2 = shared.clone();
    let result = tokio::task::spawn_blocking(move || run(&shared2, &q)).await;
    let mut resp = match result {
        Ok(Ok(v)) => http::json(StatusCode::OK, v),
        Ok(Err(e)) => e.response(Some(&shared.host)),
        Err(e) => QueryError::internal(e.to_string()).response(Some(&shared.host)),
    };
    if let Ok(v) = HeaderValue::from_str(&query_id) {
        resp.headers_mut().insert("X-Druid-Query-Id", v);
    }
    resp
}

/// `GET /druid/v2/datasources`.
pub async fn data_sources(State(shared): State<Arc<Shared>>) -> Response {
    http::json(StatusCode::OK, json!(shared.store.data_sources()))
}

/// `GET /druid/v2/datasources/{ds}`: dimensions and metrics, sorted, as the Broker reads
/// them from the segments announced (a realtime segment announces no dimensions).
pub async fn data_source(State(shared): State<Arc<Shared>>, Path(ds): Path<String>) -> Response {
    let segs = shared.store.view(&ds, &[ETERNITY]);
    if segs.is_empty() {
        return http::json(StatusCode::NOT_FOUND, json!({}));
    }
    let mut dims = std::collections::BTreeSet::new();
    let mut metrics = std::collections::BTreeSet::new();
    for s in &segs {
        let idx = s.index.read();
        if idx.handed_off {
            dims.extend(idx.dims.iter().cloned());
        }
        metrics.extend(idx.metrics.iter().map(|m| m.name.clone()));
    }
    http::json(
        StatusCode::OK,
        json!({"dimensions": dims, "metrics": metrics}),
    )
}
