//! The HTTP endpoints: `POST /v1/post[/{dataSource}]`, `GET /`, `GET /health`, `GET /metrics`.
//!
//! A post is decoded whole before any event is handed in, so a request refused as a whole
//! (bad content type, malformed body, unknown dataSource) sends nothing. Events that cannot be
//! parsed on their own (not an object, a bad text line, a bad timestamp) are dropped with
//! reason `unparseable` while the others go on.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use tranquility::beam::{Outcome, SendError};
use tranquility::event::{Destination, RawEvent};
use tranquility::metrics::Tally;

use crate::config::ResponseShape;
use crate::decode::{self, BodyFormat, Item};
use crate::error::RequestError;
use crate::state::{AppState, Ingest, OutcomesFuture};

/// Query parameters of a post.
#[derive(Debug, Deserialize)]
pub struct PostQuery {
    /// `?async=`: answer after the hand-off instead of after the outcomes.
    #[serde(rename = "async")]
    pub async_: Option<String>,
}

/// The success body: the original's `received` and `sent`, plus where the others went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostResult {
    /// Events in the request.
    pub received: u64,
    /// Events accepted by Druid (always 0 for `?async=true`).
    pub sent: u64,
    /// Events dropped, for any reason.
    pub dropped: u64,
    /// Events whose sending failed.
    pub failed: u64,
    /// Dropped events by reason; absent when nothing was dropped.
    #[serde(
        rename = "droppedReasons",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub dropped_reasons: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
struct Envelope<T> {
    result: T,
}

/// The original's success body, field for field (`http.responseShape=original`).
#[derive(Debug, Serialize)]
struct OriginalResult {
    received: u64,
    sent: u64,
}

/// `POST /v1/post`: each object goes to the dataSource named by its `dataSource` or `feed`.
pub async fn post_routed(
    State(state): State<AppState>,
    Query(query): Query<PostQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RequestError> {
    post(state, None, query, headers, body).await
}

/// `POST /v1/post/{dataSource}`: everything goes to `dataSource`.
pub async fn post_to(
    State(state): State<AppState>,
    Path(data_source): Path<String>,
    Query(query): Query<PostQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RequestError> {
    post(state, Some(data_source), query, headers, body).await
}

/// Events of one request bound for one dataSource.
struct Batch {
    name: String,
    ingest: Arc<dyn Ingest>,
    events: Vec<RawEvent>,
    unparseable: u64,
}

async fn post(
    state: AppState,
    data_source: Option<String>,
    query: PostQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RequestError> {
    let header_str = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let format = BodyFormat::from_content_type(header_str(header::CONTENT_TYPE))?;
    let is_async = decode::parse_async(query.async_.as_deref())?;
    if format == BodyFormat::Text && data_source.is_none() {
        return Err(RequestError::TextNeedsDataSource);
    }
    if let Some(name) = &data_source {
        if state.data_source(name).is_none() {
            return Err(RequestError::UnknownDataSource(name.clone()));
        }
    }
    let limit = state.config().max_body_bytes;
    let raw = read_body(body, limit).await?;
    let body = decode::decompress(header_str(header::CONTENT_ENCODING), raw, limit)?;
    let batches = match (&data_source, format) {
        (Some(name), BodyFormat::Text) => vec![text_batch(&state, name, &body)?],
        (Some(name), _) => {
            let items = decode::decode(format, &body)?;
            decode::require_an_object(&items)?;
            vec![direct_batch(&state, name, items)?]
        }
        (None, _) => routed_batches(&state, decode::decode(format, &body)?)?,
    };

    let mut result = PostResult {
        received: 0,
        sent: 0,
        dropped: 0,
        failed: 0,
        dropped_reasons: BTreeMap::new(),
    };
    let mut pending: Vec<(String, Arc<dyn Ingest>, OutcomesFuture)> = Vec::new();
    for batch in batches {
        if batch.unparseable > 0 {
            batch.ingest.drop_unparseable(batch.unparseable);
            result.received += batch.unparseable;
            result.dropped += batch.unparseable;
            *result
                .dropped_reasons
                .entry("unparseable".to_string())
                .or_default() += batch.unparseable;
        }
        result.received += batch.events.len() as u64;
        let outcomes = batch.ingest.hand_in(batch.events).await;
        pending.push((batch.name, batch.ingest, outcomes));
    }

    if is_async {
        for (_, _, outcomes) in pending {
            state.spawn_background(outcomes);
        }
        tracing::debug!(received = result.received, "events handed in (async)");
        return Ok(respond(format, state.config().response_shape, &result));
    }

    let ingests: Vec<Arc<dyn Ingest>> = pending.iter().map(|(_, i, _)| i.clone()).collect();
    let flushes = futures::future::join_all(ingests.iter().map(|i| i.flush()));
    let answers = futures::future::join_all(
        pending
            .into_iter()
            .map(|(name, _, outcomes)| async move { (name, outcomes.await) }),
    );
    let (_, answers) = futures::join!(flushes, answers);
    let mut first_error: Option<Arc<SendError>> = None;
    for (name, outcomes) in &answers {
        let tally = Tally::of(outcomes);
        result.sent += tally.sent;
        result.failed += tally.failed;
        result.dropped += tally.dropped_total();
        for (reason, count) in tally.drop_reasons() {
            *result
                .dropped_reasons
                .entry(reason.as_str().to_string())
                .or_default() += count;
        }
        for outcome in outcomes {
            if let Outcome::Failed(e) = outcome {
                if matches!(**e, SendError::BufferFull { .. }) {
                    return Err(RequestError::BufferFull(name.clone()));
                }
                first_error.get_or_insert_with(|| e.clone());
            }
        }
    }
    if let Some(error) = first_error {
        return Err(RequestError::SendFailed {
            received: result.received,
            sent: result.sent,
            dropped: result.dropped,
            failed: result.failed,
            first_error: error.to_string(),
        });
    }
    Ok(respond(format, state.config().response_shape, &result))
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, RequestError> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(RequestError::BodyTooLarge { limit })
        }
        Err(e) => Err(RequestError::BodyRead(e.to_string())),
    }
}

fn entry_for(state: &AppState, name: &str) -> Result<Arc<dyn Ingest>, RequestError> {
    state
        .data_source(name)
        .map(|e| e.ingest.clone())
        .ok_or_else(|| RequestError::UnknownDataSource(name.to_string()))
}

fn direct_batch(state: &AppState, name: &str, items: Vec<Item>) -> Result<Batch, RequestError> {
    let mut batch = Batch {
        name: name.to_string(),
        ingest: entry_for(state, name)?,
        events: Vec::with_capacity(items.len()),
        unparseable: 0,
    };
    for item in items {
        match item {
            Item::Object(raw) => batch.events.push(raw),
            Item::NotObject(_) => batch.unparseable += 1,
        }
    }
    Ok(batch)
}

fn text_batch(state: &AppState, name: &str, body: &Bytes) -> Result<Batch, RequestError> {
    let entry = state
        .data_source(name)
        .ok_or_else(|| RequestError::UnknownDataSource(name.to_string()))?;
    let parser = entry
        .parser
        .as_ref()
        .map_err(|e| RequestError::TextNotSupported {
            data_source: name.to_string(),
            reason: e.to_string(),
        })?;
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = 1 + body[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        RequestError::MalformedString {
            line,
            message: "not valid UTF-8".to_string(),
        }
    })?;
    let mut batch = Batch {
        name: name.to_string(),
        ingest: entry.ingest.clone(),
        events: Vec::new(),
        unparseable: 0,
    };
    let mut first_error = None;
    for parsed in parser.parse_text(text) {
        match parsed.result {
            Ok(raw) => batch.events.push(RawEvent::unchecked(raw)),
            Err(e) => {
                tracing::debug!(dataSource = name, line = parsed.line, error = %e, "unparseable line dropped");
                first_error.get_or_insert((parsed.line, e.to_string()));
                batch.unparseable += 1;
            }
        }
    }
    // Lines but not one that parses: the producer is broken, not an event.
    if let (true, Some((line, message))) = (batch.events.is_empty(), first_error) {
        return Err(RequestError::MalformedString {
            line,
            message: format!("{message} (no line of the body parses)"),
        });
    }
    Ok(batch)
}

/// Groups `/v1/post` objects by target, in first-seen order. Any object without a known
/// target refuses the whole request, before anything is sent.
fn routed_batches(state: &AppState, items: Vec<Item>) -> Result<Vec<Batch>, RequestError> {
    let mut batches: Vec<Batch> = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let raw = match item {
            Item::Object(raw) => raw,
            Item::NotObject(kind) => {
                return Err(RequestError::MalformedJson(format!(
                    "element {index} is a {kind}; /v1/post takes objects naming their dataSource"
                )))
            }
        };
        let name = Destination::of(raw.bytes())
            .data_source()
            .ok_or(RequestError::MissingDataSource)?;
        match batches.iter_mut().find(|b| b.name == name) {
            Some(batch) => batch.events.push(raw),
            None => batches.push(Batch {
                ingest: entry_for(state, &name)?,
                name,
                events: vec![raw],
                unparseable: 0,
            }),
        }
    }
    Ok(batches)
}

/// The success response, in Smile for Smile requests and JSON otherwise.
fn respond(format: BodyFormat, shape: ResponseShape, result: &PostResult) -> Response {
    match shape {
        ResponseShape::Full => encode(format, &Envelope { result }),
        ResponseShape::Original => encode(
            format,
            &Envelope {
                result: OriginalResult {
                    received: result.received,
                    sent: result.sent,
                },
            },
        ),
    }
}

/// The body in Smile when the request was Smile, else JSON.
fn encode(format: BodyFormat, envelope: &impl Serialize) -> Response {
    if format == BodyFormat::Smile {
        if let Ok(body) = serde_smile::to_vec(envelope) {
            return (
                [(header::CONTENT_TYPE, "application/x-jackson-smile")],
                body,
            )
                .into_response();
        }
    }
    Json(envelope).into_response()
}

/// `GET /`: liveness, as the original answered.
pub async fn root() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Tranquility Server is running.\nPOST events to /v1/post/<dataSource>; see /health and /metrics.\n",
    )
}

/// `GET /health`: 200 with the dataSources while serving, 503 once a stop has begun; with
/// each dataSource's backend (`realtime`, `supervisor`, `batch`, or `undecided` until
/// `druid.ingestion=auto` has read Druid's version).
pub async fn health(state: AppState) -> Response {
    let mut names: Vec<&str> = state.data_sources().map(|(n, _)| n).collect();
    names.sort_unstable();
    let backends: BTreeMap<&str, &str> = state
        .data_sources()
        .filter_map(|(n, entry)| Some((n, entry.ingest.backend()?)))
        .collect();
    let stopping = state.is_stopping();
    let body = serde_json::json!({
        "status": if stopping { "stopping" } else { "ok" },
        "dataSources": names,
        "backends": backends,
    });
    let status = if stopping {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(body)).into_response()
}

/// Anything else: the original's 404.
pub async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Not found\n",
    )
}
