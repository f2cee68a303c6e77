//! An HTTP proxy in front of a Druid (druid-local or a real one) that slows, loses or refuses
//! what passes through it, as a struggling Druid would.
//!
//! Task locations in the Overlord's answers are rewritten to the proxy, so clients that find
//! tasks through the Overlord push through it too. Everything else passes through untouched.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

/// A running proxy on a free loopback port; stops when dropped.
///
/// Faults, all off at the start and changeable while it runs:
/// - [`DruidProxy::slow_pushes`]: pushes go through one at a time, each held a while (a
///   Druid that accepts at most one chunk per hold);
/// - [`DruidProxy::lose_next_acks`]: a push reaches the task, its answer is replaced by a 500;
/// - [`DruidProxy::hold_answers`]: pushes reach the task, their answers wait;
/// - [`DruidProxy::refuse_task_submits`]: task submissions are answered 500 without reaching
///   the Overlord.
#[derive(Debug)]
pub struct DruidProxy {
    addr: SocketAddr,
    state: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    proxy_port: u16,
    lose_acks: AtomicUsize,
    lost: AtomicUsize,
    pushes: AtomicUsize,
    push_slot: tokio::sync::Semaphore,
    push_hold_ms: AtomicU64,
    /// True while answers to pushes are held back.
    answers_held: tokio::sync::watch::Sender<bool>,
    held: AtomicUsize,
    /// Task submissions to refuse: (task id suffix, how many more times).
    refuse_submits: Mutex<Option<(String, usize)>>,
    http: reqwest::Client,
}

impl DruidProxy {
    /// Proxies `upstream` (plain HTTP) on a free loopback port, passing everything through
    /// until a fault is switched on.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the Druid proxy to a free loopback port")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Shared {
            upstream,
            proxy_port: addr.port(),
            lose_acks: AtomicUsize::new(0),
            lost: AtomicUsize::new(0),
            pushes: AtomicUsize::new(0),
            push_slot: tokio::sync::Semaphore::new(1),
            push_hold_ms: AtomicU64::new(0),
            answers_held: tokio::sync::watch::channel(false).0,
            held: AtomicUsize::new(0),
            refuse_submits: Mutex::new(None),
            // Loopback only: an HTTP proxy from the environment must not get in between.
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .context("building the Druid proxy's HTTP client")?,
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "Druid proxy stopped");
            }
        });
        Ok(DruidProxy { addr, state, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next `n` pushes reach the task but their answers are replaced by a 500.
    pub fn lose_next_acks(&self, n: usize) {
        self.state.lose_acks.store(n, Ordering::SeqCst);
    }

    /// From now on pushes go through one at a time, each held `hold` before it is
    /// forwarded: a slow Druid. Zero turns it off.
    pub fn slow_pushes(&self, hold: Duration) {
        let ms = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX);
        self.state.push_hold_ms.store(ms, Ordering::SeqCst);
    }

    /// From now on pushes reach the task, but their answers wait until
    /// [`DruidProxy::release_answers`]: pushes that Druid has taken and the sender does not
    /// know of yet.
    pub fn hold_answers(&self) {
        self.state.answers_held.send_replace(true);
    }

    /// Sends the held answers, and answers at once again.
    pub fn release_answers(&self) {
        self.state.answers_held.send_replace(false);
    }

    /// Answers held back so far (released ones included).
    pub fn held(&self) -> usize {
        self.state.held.load(Ordering::SeqCst)
    }

    /// The next `times` task submissions whose id ends with `id_suffix` are answered 500
    /// without reaching the Overlord.
    pub fn refuse_task_submits(&self, id_suffix: &str, times: usize) {
        *self
            .state
            .refuse_submits
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((id_suffix.to_string(), times));
    }

    /// Acknowledgements lost so far.
    pub fn lost(&self) -> usize {
        self.state.lost.load(Ordering::SeqCst)
    }

    /// Push requests seen so far.
    pub fn pushes(&self) -> usize {
        self.state.pushes.load(Ordering::SeqCst)
    }
}

impl Drop for DruidProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(state): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    if parts.method == Method::POST && path == "/druid/indexer/v1/task" {
        if let Some(refused) = refused_submit(&state, &body) {
            return refused;
        }
    }
    let is_push = path.contains("/push-events");
    let hold = state.push_hold_ms.load(Ordering::SeqCst);
    // The slot is held until the answer is back: one push at a time reaches the task.
    let _slot = if hold > 0 && is_push {
        let slot = state.push_slot.acquire().await.ok();
        tokio::time::sleep(Duration::from_millis(hold)).await;
        slot
    } else {
        None
    };
    let mut headers = parts.headers;
    headers.remove("host");
    let upstream = state
        .http
        .request(parts.method, format!("http://{}{path}", state.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let upstream = match upstream {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = upstream.status();
    let content_type = upstream.headers().get("content-type").cloned();
    let bytes = upstream.bytes().await.unwrap_or_default();
    if is_push {
        state.pushes.fetch_add(1, Ordering::SeqCst);
        let lose = state
            .lose_acks
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if lose {
            state.lost.fetch_add(1, Ordering::SeqCst);
            return (StatusCode::INTERNAL_SERVER_ERROR, "lost acknowledgement").into_response();
        }
        let mut gate = state.answers_held.subscribe();
        if *gate.borrow_and_update() {
            state.held.fetch_add(1, Ordering::SeqCst);
            let _ = gate.wait_for(|held| !*held).await;
        }
    }
    let bytes = if path.contains("/druid/indexer/v1/") {
        relocate(bytes, state.upstream.port(), state.proxy_port)
    } else {
        bytes
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    if let Some(ct) = content_type {
        response.headers_mut().insert("content-type", ct);
    }
    response
}

/// The 500 for a task submission the test wants refused, counting it; `None` to pass it on.
fn refused_submit(state: &Shared, body: &[u8]) -> Option<Response> {
    let id = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|t| t["id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut refuse = state
        .refuse_submits
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let (suffix, left) = refuse.as_mut()?;
    if *left > 0 && id.ends_with(suffix.as_str()) {
        *left -= 1;
        return Some(
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("task {id} refused by the test"),
            )
                .into_response(),
        );
    }
    None
}

/// Points every task `location` on port `from` at port `to`; anything but JSON is returned
/// as it is.
fn relocate(bytes: Bytes, from: u16, to: u16) -> Bytes {
    fn walk(v: &mut Value, from: u16, to: u16) {
        match v {
            Value::Object(map) => {
                if let Some(Value::Object(location)) = map.get_mut("location") {
                    if location.get("port").and_then(Value::as_u64) == Some(u64::from(from)) {
                        location.insert("port".into(), Value::from(to));
                    }
                }
                map.values_mut().for_each(|c| walk(c, from, to));
            }
            Value::Array(items) => items.iter_mut().for_each(|c| walk(c, from, to)),
            _ => {}
        }
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return bytes;
    };
    walk(&mut value, from, to);
    serde_json::to_vec(&value).map(Bytes::from).unwrap_or(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_locations_are_pointed_at_the_proxy() {
        let body = Bytes::from_static(
            br#"[{"id":"t","location":{"host":"127.0.0.1","port":8090,"tlsPort":-1}},
                {"id":"u","location":{"host":"127.0.0.1","port":9999}}]"#,
        );
        let out: Value = serde_json::from_slice(&relocate(body, 8090, 7000)).unwrap();
        assert_eq!(out[0]["location"]["port"], 7000);
        assert_eq!(out[1]["location"]["port"], 9999);
        let text = Bytes::from_static(b"not json");
        assert_eq!(relocate(text.clone(), 1, 2), text);
    }
}
