//! A scripted HTTP server on a free loopback port for the clients' unit tests.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

type Script = dyn Fn(usize, &Recorded) -> Response + Send + Sync;

/// A running server: its base URL and everything it received.
#[derive(Clone)]
pub struct Scripted {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Scripted {
    /// Starts a server answering request number `n` (from 0) with `script(n, request)`.
    pub async fn start(
        script: impl Fn(usize, &Recorded) -> Response + Send + Sync + 'static,
    ) -> Scripted {
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let script: Arc<Script> = Arc::new(script);
        let seen = requests.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let seen = seen.clone();
            let script = script.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap_or_default();
                let rec = Recorded {
                    method: parts.method,
                    path: parts.uri.path().to_owned(),
                    headers: parts.headers,
                    body,
                };
                let n = {
                    let mut seen = seen.lock();
                    seen.push(rec.clone());
                    seen.len() - 1
                };
                script(n, &rec)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Scripted {
            url: format!("http://{addr}"),
            requests,
        }
    }

    pub fn count(&self) -> usize {
        self.requests.lock().len()
    }

    pub fn get(&self, n: usize) -> Recorded {
        self.requests.lock()[n].clone()
    }
}

/// A JSON response.
pub fn json(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_owned(),
    )
        .into_response()
}
