//! druid-local in its own process: plain for the server figure (so it can have cores of its
//! own), and slow for the overload figure (so the bench process's RSS is Tranquility's alone).
//!
//! The slow child runs druid-local plus a throttling proxy in front of it: every push-events
//! request waits for the single push slot and holds it for `push_ms`, so druid-local accepts
//! at most one chunk per `push_ms`. Overlord answers are rewritten so task locations point
//! at the proxy; everything else passes through untouched.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;

/// Printed by the child once it serves: `<PREFIX><proxy url> <druid-local url>`.
const READY: &str = "druid-local ready: ";

#[derive(Debug)]
struct Proxy {
    upstream: SocketAddr,
    own_port: u16,
    push_slot: Semaphore,
    push_hold: Duration,
    http: reqwest::Client,
}

/// Serves druid-local behind the throttling proxy until the process is killed (the child's
/// side). Prints the ready line on stdout.
pub async fn serve(push_ms: u64) -> anyhow::Result<()> {
    let mut slow = InProcess::start(push_ms).await?;
    println!("{READY}{} {}", slow.url, slow.druid.url());
    let _ = (&mut slow.proxy).await;
    Ok(())
}

/// Serves a plain druid-local until the process is killed (the child's side of the server
/// figure). Prints the ready line on stdout.
pub async fn serve_plain() -> anyhow::Result<()> {
    let druid = druid_local::DruidLocal::start(druid_local::DruidLocalConfig::ephemeral()).await?;
    println!("{READY}{url} {url}", url = druid.url());
    std::future::pending::<()>().await;
    Ok(())
}

/// druid-local and the throttling proxy in this process (when no child command is given).
#[derive(Debug)]
pub struct InProcess {
    /// The proxy's URL.
    pub url: String,
    druid: druid_local::DruidLocal,
    proxy: tokio::task::JoinHandle<()>,
}

impl InProcess {
    /// Starts both on free loopback ports.
    pub async fn start(push_ms: u64) -> anyhow::Result<Self> {
        let druid =
            druid_local::DruidLocal::start(druid_local::DruidLocalConfig::ephemeral()).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Proxy {
            upstream: SocketAddr::from(([127, 0, 0, 1], druid.port())),
            own_port: addr.port(),
            push_slot: Semaphore::new(1),
            push_hold: Duration::from_millis(push_ms),
            http: reqwest::Client::builder().no_proxy().build()?,
        });
        let app = axum::Router::new().fallback(forward).with_state(state);
        let proxy = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "throttling proxy stopped");
            }
        });
        Ok(Self {
            url: format!("http://{addr}"),
            druid,
            proxy,
        })
    }

    /// druid-local's own URL (for queries).
    pub fn druid_url(&self) -> String {
        self.druid.url()
    }

    /// Stops both.
    pub async fn stop(self) {
        self.proxy.abort();
        self.druid.shutdown().await;
    }
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return (StatusCode::BAD_REQUEST, "unreadable body").into_response();
    };
    let _slot = if path.contains("/push-events") {
        let slot = proxy.push_slot.acquire().await.ok();
        tokio::time::sleep(proxy.push_hold).await;
        slot
    } else {
        None
    };
    let mut headers = parts.headers;
    headers.remove("host");
    let answer = proxy
        .http
        .request(parts.method, format!("http://{}{path}", proxy.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = answer.status();
    let content_type = answer.headers().get("content-type").cloned();
    let bytes = answer.bytes().await.unwrap_or_default();
    let bytes = if path.starts_with("/druid/indexer/v1/") {
        relocate(bytes, proxy.upstream.port(), proxy.own_port)
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

/// Points every task `location` on port `from` at port `to`.
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

/// The parent's handle on the child; the child is killed when this drops.
#[derive(Debug)]
pub struct DruidChild {
    /// The proxy (druid-local itself for a plain child): give this to Tranquility as the
    /// Overlord.
    pub url: String,
    /// druid-local itself, for queries.
    pub druid_url: String,
    child: Child,
}

impl DruidChild {
    /// Starts `command` (a program and its arguments that ends up calling [`serve`]) and waits
    /// for its ready line.
    pub async fn spawn(command: &[String]) -> anyhow::Result<Self> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| anyhow::anyhow!("empty druid-local command"))?;
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {program}: {e}"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout from {program}"))?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.strip_prefix(READY) {
                    return Ok::<_, std::io::Error>(Some(rest.to_string()));
                }
            }
            Ok(None)
        })
        .await
        .map_err(|_| anyhow::anyhow!("{program} did not get ready within 30 s"))??
        .ok_or_else(|| anyhow::anyhow!("{program} exited before getting ready"))?;
        let (url, druid_url) = ready
            .split_once(' ')
            .ok_or_else(|| anyhow::anyhow!("unexpected ready line: {ready}"))?;
        Ok(Self {
            url: url.to_string(),
            druid_url: druid_url.to_string(),
            child,
        })
    }

    /// The child's resident set, in MiB.
    pub fn rss_mib(&self) -> Option<f64> {
        self.child.id().and_then(crate::rss::rss_mib_of)
    }

    /// Kills the child.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
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
