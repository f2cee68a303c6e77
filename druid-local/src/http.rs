//! The HTTP surface: one router for the Overlord, worker chat and query APIs.

use crate::{overlord, query, sql, Shared};
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// Builds the router.
pub fn app(shared: Arc<Shared>) -> Router {
    // From 31 no receiver can exist, and the Overlord has no chat resource: 404, as there.
    let chat = if shared.version.has_realtime_tasks() {
        Router::new()
            .route(
                "/druid/worker/v1/chat/{name}/push-events",
                post(overlord::chat::push_events),
            )
            .route(
                "/druid/worker/v1/chat/{name}/push-events/",
                post(overlord::chat::push_events),
            )
            .route(
                "/druid/worker/v1/chat/{name}/shutdown",
                post(overlord::chat::shutdown),
            )
    } else {
        Router::new()
    };
    Router::new()
        .route("/druid/indexer/v1/task", post(overlord::submit))
        .route("/druid/indexer/v1/task/{id}", get(overlord::payload))
        .route("/druid/indexer/v1/task/{id}/status", get(overlord::status))
        .route(
            "/druid/indexer/v1/task/{id}/shutdown",
            post(overlord::shutdown),
        )
        .route("/druid-local/v1/task/{id}/metrics", get(overlord::metrics))
        .route("/druid/indexer/v1/runningTasks", get(overlord::running))
        .route("/druid/indexer/v1/pendingTasks", get(overlord::pending))
        .route("/druid/indexer/v1/waitingTasks", get(overlord::pending))
        .route("/druid/indexer/v1/completeTasks", get(overlord::complete))
        .route("/druid/indexer/v1/tasks", get(overlord::tasks))
        .route("/druid/indexer/v1/leader", get(overlord::leader))
        .route("/druid/indexer/v1/isLeader", get(overlord::is_leader))
        .route("/status", get(overlord::process_status))
        .route("/status/health", get(overlord::health))
        .merge(chat)
        .route("/druid/v2", post(query::handle))
        .route("/druid/v2/", post(query::handle))
        .route("/druid/v2/sql", post(sql::handle))
        .route("/druid/v2/sql/", post(sql::handle))
        .route("/druid/v2/datasources", get(query::data_sources))
        .route("/druid/v2/datasources/{ds}", get(query::data_source))
        .merge(crate::supervisor::api::routes())
        .merge(crate::batch::routes())
        .merge(crate::coordinator::routes())
        // Druid's Jetty sets no request-body limit (a task over
        // `druid.indexer.queue.maxTaskPayloadSize` is refused by the Overlord itself, 400), so
        // axum's 2 MB default would refuse inline batch tasks Druid takes.
        .layer(DefaultBodyLimit::disable())
        .with_state(shared)
}

/// A JSON response with a status.
pub fn json(status: StatusCode, v: serde_json::Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Druid's `{"error": msg}` body.
pub fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    json(status, serde_json::json!({ "error": msg.into() }))
}

/// Body media type of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/json`.
    Json,
    /// `application/x-jackson-smile`.
    Smile,
}

/// Reads the request's content type; `None` for anything Druid would answer 415 to.
pub fn media(headers: &HeaderMap) -> Option<Media> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let base = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match base.as_str() {
        "application/json" => Some(Media::Json),
        "application/x-jackson-smile" => Some(Media::Smile),
        _ => None,
    }
}

/// Jersey's 415 answer: no body (the accepted types are `application/json` and
/// `application/x-jackson-smile`).
pub fn unsupported_media() -> Response {
    StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response()
}

/// A `text/plain` answer, as Druid's resources give for some errors.
pub fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut r = (status, msg.into()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// Jetty's error page, which Druid sends for an exception no resource maps (a malformed task
/// body, an unparseable event): HTML naming the URI, the status and the Java exception, here
/// without Jetty's stack trace.
pub fn jetty_error(status: StatusCode, uri: &str, exception: &str) -> Response {
    let code = status.as_u16();
    let message = escape_html(exception);
    let uri = escape_html(uri);
    let body = format!(
        "<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=ISO-8859-1\"/>\n\
         <title>Error {code} {message}</title>\n</head>\n<body><h2>HTTP ERROR {code} {message}</h2>\n\
         <table>\n<tr><th>URI:</th><td>{uri}</td></tr>\n<tr><th>STATUS:</th><td>{code}</td></tr>\n\
         <tr><th>MESSAGE:</th><td>{message}</td></tr>\n</table>\n\n</body>\n</html>\n"
    );
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html;charset=iso-8859-1"),
    );
    r
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Parses a JSON or Smile body into a JSON value.
pub fn parse_body(media: Media, body: &[u8]) -> Result<serde_json::Value, String> {
    match media {
        Media::Json => serde_json::from_slice(body).map_err(|e| e.to_string()),
        Media::Smile => serde_smile::from_slice(body).map_err(|e| e.to_string()),
    }
}
