//! Worker chat handlers of the receiver firehose: `push-events` and `shutdown`.

use crate::http::{self, media, Media};
use crate::task::parse::ParseError;
use crate::task::receiver::SeqCheck;
use crate::time;
use crate::Shared;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const TASK_ID_HEADER: &str = "X-Druid-Task-Id";
const PRODUCER_ID: &str = "X-Firehose-Producer-Id";
const PRODUCER_SEQ: &str = "X-Firehose-Producer-Seq";

fn missing_handler(name: &str) -> Response {
    // Druid 0.15 to 30 (older versions: 404 with an empty body; the chat resource of releases
    // after the receiver firehose was removed: 503).
    http::error(
        StatusCode::BAD_REQUEST,
        format!("Can't find chatHandler for handler[{name}]"),
    )
}

/// An exception the push resource lets escape, as Jetty's 500 page.
fn escaped(name: &str, exception: &str) -> Response {
    http::jetty_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("/druid/worker/v1/chat/{name}/push-events"),
        exception,
    )
}

fn with_task_header(mut r: Response, task_id: &str) -> Response {
    // Druid's StringUtils.urlEncode: form encoding (with spaces as %20).
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'.')
        .remove(b'-')
        .remove(b'*')
        .remove(b'_');
    let enc = percent_encoding::utf8_percent_encode(task_id, SET).to_string();
    if let Ok(v) = HeaderValue::from_str(&enc) {
        r.headers_mut().insert(TASK_ID_HEADER, v);
    }
    r
}

fn requested_task(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(TASK_ID_HEADER)?.to_str().ok()?;
    Some(
        percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

fn reply(m: Media, status: StatusCode, v: Value) -> Response {
    match m {
        Media::Json => http::json(status, v),
        Media::Smile => match serde_smile::to_vec(&v) {
            Ok(b) => (
                status,
                [(
                    axum::http::header::CONTENT_TYPE,
                    "application/x-jackson-smile",
                )],
                b,
            )
                .into_response(),
            Err(e) => http::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
    }
}

/// `POST /druid/worker/v1/chat/{name}/push-events`.
pub async fn push_events(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let requested = requested_task(&headers);
    let Some(recv) = shared.handler(&name, requested.as_deref()) else {
        return missing_handler(&name);
    };
    let task_id = recv.task_id.clone();
    recv.touch();
    if let Some(req) = &requested {
        if *req != task_id {
            return with_task_header(
                http::error(
                    StatusCode::BAD_REQUEST,
                    format!("Requested taskId[{req}] doesn't match with taskId[{task_id}]"),
                ),
                &task_id,
            );
        }
    }
    let Some(m) = media(&headers) else {
        return with_task_header(http::unsupported_media(), &task_id);
    };
    let task = shared.tasks.read().get(&task_id).cloned();
    let producer = headers
        .get(PRODUCER_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|_| shared.version.dedups_producer_pushes());
    if let Some(producer) = producer {
        let seq = match headers
            .get(PRODUCER_SEQ)
            .map(|v| v.to_str().ok().and_then(|s| s.trim().parse::<i64>().ok()))
        {
            None => {
                return with_task_header(
                    reply(
                        m,
                        StatusCode::BAD_REQUEST,
                        json!({"error": "Producer sequence value is missing"}),
                    ),
                    &task_id,
                )
            }
            Some(None) => {
                return with_task_header(
                    reply(
                        m,
                        StatusCode::BAD_REQUEST,
                        json!({"error": "Producer sequence must be a number"}),
                    ),
                    &task_id,
                )
            }
            Some(Some(s)) => s,
        };
        match recv.check_sequence(producer, seq) {
            SeqCheck::Accept => {}
            SeqCheck::Skip => {
                if let Some(t) = &task {
                    t.counters.skipped_requests.fetch_add(1, Ordering::Relaxed);
                }
                return with_task_header(
                    reply(m, StatusCode::OK, json!({"eventCount": 0, "skipped": true})),
                    &task_id,
                );
            }
            SeqCheck::TooManyProducers => {
                return with_task_header(
                    reply(
                        m,
                        StatusCode::FORBIDDEN,
                        json!({"error": format!("Too many individual producer IDs for this firehose.  Max is {}", crate::task::receiver::MAX_PRODUCERS)}),
                    ),
                    &task_id,
                )
            }
        }
    }
    let parsed = match m {
        Media::Json => recv.parser.parse_json(&body),
        Media::Smile => recv.parser.parse_smile(&body),
    };
    let rows = match parsed {
        Ok(r) => r,
        Err(ParseError::Malformed(e)) => {
            return with_task_header(
                reply(m, StatusCode::INTERNAL_SERVER_ERROR, json!({"error": e})),
                &task_id,
            )
        }
        // Druid lets the parse exception escape unmapped: Jetty's 500 page.
        Err(ParseError::Unparseable(e)) => {
            return with_task_header(
                escaped(
                    &name,
                    &format!("org.apache.druid.java.util.common.parsers.ParseException: {e}"),
                ),
                &task_id,
            )
        }
    };
    let n = rows.len();
    match recv.push(rows).await {
        Ok(()) => with_task_header(reply(m, StatusCode::OK, json!({"eventCount": n})), &task_id),
        Err(e) => with_task_header(
            escaped(&name, &format!("java.lang.IllegalStateException: {e}")),
            &task_id,
        ),
    }
}

/// `POST /druid/worker/v1/chat/{name}/shutdown?shutoffTime=`: close with handoff.
pub async fn shutdown(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let requested = requested_task(&headers);
    let Some(recv) = shared.handler(&name, requested.as_deref()) else {
        return missing_handler(&name);
    };
    let at = match q.get("shutoffTime") {
        None => time::now_millis(),
        Some(s) => match time::parse_iso(s) {
            Ok(t) => t,
            Err(_) => {
                return with_task_header(
                    http::error(StatusCode::BAD_REQUEST, format!("Invalid format: \"{s}\"")),
                    &recv.task_id,
                )
            }
        },
    };
    recv.schedule_close(at);
    with_task_header(StatusCode::OK.into_response(), &recv.task_id)
}
