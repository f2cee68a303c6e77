//! The Overlord API (`/druid/indexer/v1`), in Druid 0.13+ shapes (Druid 30 where versions
//! differ), plus `/status` endpoints.

pub mod chat;

use crate::http::{self, json, media, Media};
use crate::task::{StatusCode as TaskStatus, Task};
use crate::time;
use crate::Shared;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The runner status a list or status endpoint shows. The single-task status always shows the
/// epoch as `queueInsertionTime`; lists show the creation time for a task still queued or
/// running. `tls`: the task's port is its TLS port.
fn status_plus(t: &Task, runner: &str, listed: bool, tls: bool) -> Value {
    let st = t.state.lock().clone();
    let code = match st.status {
        TaskStatus::Running => "RUNNING",
        TaskStatus::Success => "SUCCESS",
        TaskStatus::Failed => "FAILED",
    };
    // A finished task keeps the location it ran at, as Druid's stored status does.
    let location = match &st.location {
        Some((h, p)) if tls => json!({"host": h, "port": -1, "tlsPort": p}),
        Some((h, p)) => json!({"host": h, "port": p, "tlsPort": -1}),
        None => json!({"host": null, "port": -1, "tlsPort": -1}),
    };
    json!({
        "id": t.spec.id,
        "groupId": t.spec.group_id,
        "type": t.spec.kind.name(),
        "createdTime": time::iso(t.created),
        "queueInsertionTime": if listed && st.status == TaskStatus::Running {
            time::iso(t.created)
        } else {
            "1970-01-01T00:00:00.000Z".to_owned()
        },
        "statusCode": code,
        "status": code,
        "runnerStatusCode": runner,
        "duration": st.duration.unwrap_or(-1),
        "location": location,
        "dataSource": t.spec.data_source,
        "errorMsg": st.error,
    })
}

fn runner_code(t: &Task) -> &'static str {
    let st = t.state.lock();
    match st.status {
        TaskStatus::Running => st.runner.unwrap_or("RUNNING"),
        _ => "NONE",
    }
}

/// `POST /druid/indexer/v1/task`.
pub async fn submit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(m) = media(&headers) else {
        return http::unsupported_media();
    };
    let v = match http::parse_body(m, &body) {
        Ok(v) => v,
        // A parse error is not a mapping error: Jetty answers it with its 500 page.
        Err(e) => {
            return http::jetty_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "/druid/indexer/v1/task",
                &format!(
                    "javax.servlet.ServletException: com.fasterxml.jackson.core.JsonParseException: {e}"
                ),
            )
        }
    };
    let spec = match crate::tasks::parse(&shared, &v) {
        Ok(s) => s,
        Err(refusal) => return refusal.into_response(),
    };
    let id = spec.id.clone();
    let task = {
        let mut tasks = shared.tasks.write();
        if tasks.contains_key(&id) {
            return json(
                StatusCode::BAD_REQUEST,
                json!({"error":"druidException","errorCode":"entryAlreadyExists","persona":"USER","category":"INVALID_INPUT","errorMessage": format!("Task[{id}] already exists"),"context":{}}),
            );
        }
        let t = Task::new(spec, time::now_millis());
        tasks.insert(id.clone(), t.clone());
        t
    };
    shared.save_task(&task);
    tracing::info!(task = %id, "task submitted");
    tokio::spawn(crate::tasks::run(shared.clone(), task));
    let body = json!({ "task": id });
    match m {
        Media::Smile => smile(StatusCode::OK, &body),
        Media::Json => json(StatusCode::OK, body),
    }
}

fn smile(status: StatusCode, v: &Value) -> Response {
    match serde_smile::to_vec(v) {
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
    }
}

fn find(shared: &Shared, id: &str) -> Option<Arc<Task>> {
    shared.tasks.read().get(id).cloned()
}

/// What Druid's task resource filter answers, before any `/task/{id}` endpoint runs, for an id
/// it does not know (0.13 to at least 0.21 answered the same text with a 400).
fn unknown_task(id: &str) -> Response {
    http::text(
        StatusCode::NOT_FOUND,
        format!("Cannot find any task with id: [{id}]"),
    )
}

/// `GET /druid/indexer/v1/task/{id}`.
pub async fn payload(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match find(&shared, &id) {
        Some(t) => json(
            StatusCode::OK,
            json!({"task": id, "payload": t.spec.payload}),
        ),
        None => unknown_task(&id),
    }
}

/// `GET /druid/indexer/v1/task/{id}/status`.
pub async fn status(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match find(&shared, &id) {
        Some(t) => {
            // Druid's quirk: a completed task no longer tracked by the runner shows WAITING here.
            let runner = {
                let st = t.state.lock();
                if st.status == TaskStatus::Running {
                    st.runner.unwrap_or("RUNNING")
                } else {
                    "WAITING"
                }
            };
            json(
                StatusCode::OK,
                json!({"task": id, "status": status_plus(&t, runner, false, shared.tls)}),
            )
        }
        None => unknown_task(&id),
    }
}

/// `POST /druid/indexer/v1/task/{id}/shutdown`: 200 for a known task (finished ones too),
/// which fails without handoff if it was running; 404 for an unknown one.
pub async fn shutdown(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let Some(t) = find(&shared, &id) else {
        return unknown_task(&id);
    };
    if t.kill("Shutdown request from user") {
        shared.save_task(&t);
    }
    json(StatusCode::OK, json!({ "task": id }))
}

/// `GET /druid-local/v1/task/{id}/metrics`: the task's counters (druid-local only).
pub async fn metrics(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match find(&shared, &id) {
        Some(t) => {
            let c = &t.counters;
            json(
                StatusCode::OK,
                json!({
                    "processed": c.processed.load(Ordering::Relaxed),
                    "thrownAway": c.thrown_away.load(Ordering::Relaxed),
                    "clipped": c.clipped.load(Ordering::Relaxed),
                    "skippedRequests": c.skipped_requests.load(Ordering::Relaxed),
                    "handOffCount": c.handoffs.load(Ordering::Relaxed),
                }),
            )
        }
        None => http::error(StatusCode::NOT_FOUND, format!("Task [{id}] not found")),
    }
}

fn list(
    shared: &Shared,
    want: impl Fn(&Task) -> bool,
    limit: Option<usize>,
    newest_first: bool,
) -> Vec<Value> {
    let tasks: Vec<Arc<Task>> = shared.tasks.read().values().cloned().collect();
    let mut out: Vec<Value> = Vec::new();
    let iter: Box<dyn Iterator<Item = &Arc<Task>>> = if newest_first {
        Box::new(tasks.iter().rev())
    } else {
        Box::new(tasks.iter())
    };
    for t in iter {
        if want(t) {
            out.push(status_plus(t, runner_code(t), true, shared.tls));
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
    }
    out
}

fn is_running(t: &Task) -> bool {
    t.state.lock().status == TaskStatus::Running
}

/// `GET /druid/indexer/v1/runningTasks`.
pub async fn running(State(shared): State<Arc<Shared>>) -> Response {
    json(
        StatusCode::OK,
        Value::Array(list(&shared, is_running, None, false)),
    )
}

/// `GET /druid/indexer/v1/pendingTasks` and `waitingTasks`: tasks start at once here.
pub async fn pending() -> Response {
    json(StatusCode::OK, json!([]))
}

/// `GET /druid/indexer/v1/completeTasks?n=`.
pub async fn complete(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let n = q.get("n").and_then(|n| n.parse().ok());
    json(
        StatusCode::OK,
        Value::Array(list(&shared, |t| !is_running(t), n, true)),
    )
}

/// `GET /druid/indexer/v1/tasks?state=&datasource=&type=&max=`.
pub async fn tasks(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let state = q.get("state").map(|s| s.to_ascii_lowercase());
    let running_wanted = match state.as_deref() {
        None => None,
        Some("running") => Some(true),
        Some("complete") => Some(false),
        Some("pending") | Some("waiting") => return json(StatusCode::OK, json!([])),
        Some(other) => {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                "Invalid state : {other}, valid values are: [pending, waiting, running, complete]"
            ),
            )
                .into_response()
        }
    };
    let ds = q.get("datasource").cloned();
    let ty = q.get("type").cloned();
    let max = q.get("max").and_then(|n| n.parse().ok());
    let want = |t: &Task| {
        ty.as_ref().is_none_or(|ty| ty == t.spec.kind.name())
            && ds.as_ref().is_none_or(|d| *d == t.spec.data_source)
            && running_wanted.is_none_or(|r| r == is_running(t))
    };
    json(
        StatusCode::OK,
        Value::Array(list(&shared, want, max, false)),
    )
}

/// `GET /druid/indexer/v1/leader`: plain `http://host:port`.
pub async fn leader(State(shared): State<Arc<Shared>>) -> Response {
    (StatusCode::OK, shared.url()).into_response()
}

/// `GET /druid/indexer/v1/isLeader`.
pub async fn is_leader() -> Response {
    json(StatusCode::OK, json!({"leader": true}))
}

/// `GET /status/health`.
pub async fn health() -> Response {
    json(StatusCode::OK, json!(true))
}

/// `GET /status`: the played release, its modules and this process's memory.
pub async fn process_status(State(shared): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, shared.version.status_body())
}
