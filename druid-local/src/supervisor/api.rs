//! `/druid/indexer/v1/supervisor`: the endpoints of Druid's `SupervisorResource`, with the
//! answers Druid 33.0.0 gives (a missing supervisor is a plain-text 404 from the resource
//! filter, `{"error": ...}` bodies for refused specs and state changes).

use super::{ApiError, Manager};
use crate::http::{self, json};
use crate::Shared;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

type Params = Query<HashMap<String, String>>;

/// The supervisor routes.
pub fn routes() -> Router<Arc<Shared>> {
    let base = "/druid/indexer/v1/supervisor";
    Router::new()
        .route(base, post(create).get(list))
        .route(&format!("{base}/history"), get(all_history))
        .route(&format!("{base}/suspendAll"), post(suspend_all))
        .route(&format!("{base}/resumeAll"), post(resume_all))
        .route(&format!("{base}/terminateAll"), post(terminate_all))
        .route(&format!("{base}/{{id}}"), get(spec))
        .route(&format!("{base}/{{id}}/status"), get(status))
        .route(&format!("{base}/{{id}}/health"), get(health))
        .route(&format!("{base}/{{id}}/stats"), get(stats))
        .route(&format!("{base}/{{id}}/parseErrors"), get(parse_errors))
        .route(&format!("{base}/{{id}}/history"), get(history))
        .route(&format!("{base}/{{id}}/suspend"), post(suspend))
        .route(&format!("{base}/{{id}}/resume"), post(resume))
        .route(&format!("{base}/{{id}}/reset"), post(reset))
        .route(&format!("{base}/{{id}}/resetOffsets"), post(reset_offsets))
        .route(&format!("{base}/{{id}}/terminate"), post(terminate))
        .route(&format!("{base}/{{id}}/shutdown"), post(terminate))
        .route(&format!("{base}/{{id}}/taskGroups/handoff"), post(handoff))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::NotFound(id) => text(
                StatusCode::NOT_FOUND,
                format!("Cannot find any supervisor with id: [{id}]"),
            ),
            ApiError::BadRequest(m) => http::error(StatusCode::BAD_REQUEST, m),
            ApiError::Internal(m) => text(StatusCode::INTERNAL_SERVER_ERROR, m),
        }
    }
}

fn text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

fn manager(shared: &Shared) -> &Manager {
    &shared.supervisors
}

/// Reads a JSON body as Druid's supervisor resource does (JSON only; 415 with no body).
fn body(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, Box<Response>> {
    if http::media(headers) != Some(http::Media::Json) {
        return Err(Box::new(StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response()));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        Box::new(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("com.fasterxml.jackson.core.JsonParseException: {e}"),
        ))
    })
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Query(q): Params,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let v = match body(&headers, &bytes) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let skip = q
        .get("skipRestartIfUnmodified")
        .is_some_and(|s| s.eq_ignore_ascii_case("true"));
    match manager(&shared).submit(&shared, &v, skip).await {
        Ok(id) => json(StatusCode::OK, json!({ "id": id })),
        Err(e) => e.into_response(),
    }
}

async fn list(State(shared): State<Arc<Shared>>, Query(q): Params) -> Response {
    let m = manager(&shared);
    let full = q.contains_key("full");
    let state = q
        .get("state")
        .is_some_and(|s| s.eq_ignore_ascii_case("true"));
    let system = q.contains_key("system");
    if !full && !state && !system {
        return json(StatusCode::OK, json!(m.ids()));
    }
    let with_ds = shared.version.supervisor_id_and_stream_lock();
    let items: Vec<Value> = m
        .ids()
        .into_iter()
        .filter_map(|id| m.get(&id))
        .map(|s| {
            let (st, healthy) = s.state();
            let mut o = serde_json::Map::new();
            o.insert("id".into(), json!(s.spec.id));
            if with_ds {
                o.insert("dataSource".into(), json!(s.spec.data_schema.data_source));
            }
            o.insert("state".into(), json!(st.basic().name()));
            o.insert("detailedState".into(), json!(st.name()));
            o.insert("healthy".into(), json!(healthy));
            if system {
                o.insert("specString".into(), json!(s.spec.written.to_string()));
                o.insert("type".into(), json!("kafka"));
                o.insert("source".into(), json!(s.spec.io.stream));
            } else if full {
                o.insert("spec".into(), s.spec.written.clone());
            }
            o.insert("suspended".into(), json!(s.spec.suspended));
            Value::Object(o)
        })
        .collect();
    json(StatusCode::OK, Value::Array(items))
}

fn found(shared: &Shared, id: &str) -> Result<Arc<super::Supervisor>, ApiError> {
    manager(shared)
        .get(id)
        .ok_or_else(|| ApiError::NotFound(id.to_owned()))
}

async fn spec(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match found(&shared, &id) {
        Ok(s) => json(StatusCode::OK, s.spec.written.clone()),
        Err(e) => e.into_response(),
    }
}

async fn status(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match found(&shared, &id) {
        Ok(s) => json(StatusCode::OK, s.status()),
        Err(e) => e.into_response(),
    }
}

async fn health(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match found(&shared, &id) {
        Ok(s) => {
            let healthy = s.state().1;
            let code = if healthy {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json(code, json!({ "healthy": healthy }))
        }
        Err(e) => e.into_response(),
    }
}

async fn stats(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match found(&shared, &id) {
        Ok(s) => json(StatusCode::OK, s.stats()),
        Err(e) => e.into_response(),
    }
}

/// `maxSavedParseExceptions` defaults to 0 for supervisors, so Druid keeps none either.
async fn parse_errors(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match found(&shared, &id) {
        Ok(_) => json(StatusCode::OK, json!([])),
        Err(e) => e.into_response(),
    }
}

async fn history(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Response {
    let all = shared.metadata.histories();
    let Some(versions) = all.get(&id) else {
        return http::error(StatusCode::NOT_FOUND, format!("No history for [{id}]."));
    };
    let count = match q.get("count").map(|c| c.parse::<i64>()) {
        _ if !shared.version.limits_history() => None,
        None => None,
        Some(Ok(c)) if c > 0 => Some(c),
        Some(Ok(c)) => {
            return http::error(
                StatusCode::BAD_REQUEST,
                format!("Count must be greater than zero if set (count was {c})"),
            )
        }
        Some(Err(_)) => return StatusCode::NOT_FOUND.into_response(),
    };
    let list: Vec<Value> = versions
        .iter()
        .take(count.map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX)))
        .map(|v| json!({"spec": v.spec, "version": v.version}))
        .collect();
    json(StatusCode::OK, Value::Array(list))
}

async fn all_history(State(shared): State<Arc<Shared>>) -> Response {
    let out: serde_json::Map<String, Value> = shared
        .metadata
        .histories()
        .into_iter()
        .map(|(id, versions)| {
            (
                id,
                versions
                    .iter()
                    .map(|v| json!({"spec": v.spec, "version": v.version}))
                    .collect(),
            )
        })
        .collect();
    json(StatusCode::OK, Value::Object(out))
}

async fn suspend(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match manager(&shared).set_suspended(&shared, &id, true).await {
        Ok(spec) => json(StatusCode::OK, spec),
        Err(e) => e.into_response(),
    }
}

async fn resume(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match manager(&shared).set_suspended(&shared, &id, false).await {
        Ok(spec) => json(StatusCode::OK, spec),
        Err(e) => e.into_response(),
    }
}

async fn reset(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match manager(&shared).reset(&shared, &id).await {
        Ok(()) => json(StatusCode::OK, json!({ "id": id })),
        Err(e) => e.into_response(),
    }
}

async fn reset_offsets(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    if manager(&shared).get(&id).is_none() {
        return ApiError::NotFound(id).into_response();
    }
    let v = match body(&headers, &bytes) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    match manager(&shared).reset_offsets(&shared, &id, &v).await {
        Ok(()) => json(StatusCode::OK, json!({ "id": id })),
        Err(e) => e.into_response(),
    }
}

async fn terminate(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match manager(&shared).terminate(&shared, &id).await {
        Ok(()) => json(StatusCode::OK, json!({ "id": id })),
        Err(e) => e.into_response(),
    }
}

async fn handoff(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    if shared.version.has_realtime_tasks() {
        // The endpoint arrived in 31 (#16310).
        return StatusCode::NOT_FOUND.into_response();
    }
    if manager(&shared).get(&id).is_none() {
        return ApiError::NotFound(id).into_response();
    }
    let v = match body(&headers, &bytes) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let groups: Vec<u32> = v
        .get("taskGroupIds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|g| g.as_u64().and_then(|g| u32::try_from(g).ok()))
        .collect();
    if groups.is_empty() {
        return http::error(
            StatusCode::BAD_REQUEST,
            "List of task groups to handoff can't be empty",
        );
    }
    match manager(&shared).handoff(&id, &groups) {
        Ok(()) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")]).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn suspend_all(State(shared): State<Arc<Shared>>) -> Response {
    manager(&shared).set_all_suspended(&shared, true).await;
    json(StatusCode::OK, json!({"status": "success"}))
}

async fn resume_all(State(shared): State<Arc<Shared>>) -> Response {
    manager(&shared).set_all_suspended(&shared, false).await;
    json(StatusCode::OK, json!({"status": "success"}))
}

async fn terminate_all(State(shared): State<Arc<Shared>>) -> Response {
    manager(&shared).terminate_all(&shared).await;
    json(StatusCode::OK, json!({"status": "success"}))
}
