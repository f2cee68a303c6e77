//! Tranquility Server: send events to Druid over HTTP.
//!
//! The original's API, unchanged: `POST /v1/post` (each object routed by its `dataSource` or
//! `feed` field) and `POST /v1/post/{dataSource}`, with JSON, Smile or text bodies, answered
//! with `{"result":{"received":N,"sent":M,...}}`. Added: `GET /health`, `GET /metrics`
//! (Prometheus), a body size limit, and a graceful stop that flushes pending events.
//!
//! ```no_run
//! # async fn run(state: tranquility_server::AppState) -> std::io::Result<()> {
//! use tranquility_server::{shutdown_signal, Server};
//! let server = Server::bind(state).await?;
//! let report = server.run(shutdown_signal()).await?;
//! # let _ = report; Ok(()) }
//! ```
//!
//! See the crate's README for bodies, responses, errors and properties. Start reading at
//! [`app`] (the routes), then `routes.rs` (a POST from body to outcomes), `decode.rs` (bodies
//! into events) and `state.rs` (the pipelines behind each dataSource).

pub mod auth;
pub mod config;
pub mod decode;
pub mod error;
pub mod idle;
pub mod metrics;
pub mod properties;
pub mod routes;
pub mod state;
pub mod tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::limit::GlobalConcurrencyLimitLayer;
use tracing::{info, warn};
use tranquility::metrics::Tally;

pub use config::{ResponseShape, ServerConfig};
pub use error::RequestError;
pub use properties::ServerProperties;
pub use routes::PostResult;
pub use state::{AppState, DataSourceEntry, Ingest, OutcomesFuture};

/// The router: posts (at most `http.threads` at once), `/`, `/health`, `/metrics`, and the
/// original's 404 for anything else.
pub fn app(state: AppState) -> Router {
    let posts = Router::new()
        .route("/v1/post", post(routes::post_routed))
        .route("/v1/post/", post(routes::post_routed))
        .route("/v1/post/{data_source}", post(routes::post_to))
        .layer(GlobalConcurrencyLimitLayer::new(
            state.config().max_concurrent_requests,
        ));
    let basic_auth = state.config().basic_auth.clone();
    let health = {
        let state = state.clone();
        move || routes::health(state.clone())
    };
    let router = Router::new()
        .route("/", get(routes::root))
        .merge(metrics::admin_routes(state.metrics().clone(), health))
        .merge(posts)
        .fallback(routes::not_found)
        .with_state(state);
    match basic_auth {
        Some(creds) => router.layer(axum::middleware::from_fn_with_state(creds, auth::require)),
        None => router,
    }
}

/// Final counts of one dataSource after a stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSourceReport {
    /// The dataSource.
    pub name: String,
    /// Its totals since the process started.
    pub tally: Tally,
    /// Events whose outcome was still unknown when the stop gave up waiting (normally 0).
    pub pending: i64,
}

/// A server bound to its listeners (plaintext HTTP, HTTPS or both), ready to run.
#[derive(Debug)]
pub struct Server {
    listener: Option<TcpListener>,
    tls: Option<(TcpListener, Arc<rustls::ServerConfig>)>,
    state: AppState,
}

impl Server {
    /// Binds `http.bindAddress:http.port` (unless `http.port.enable` is false) and, with
    /// `https.port.enable`, `http.bindAddress:https.port` with the PEM certificate and key.
    pub async fn bind(state: AppState) -> io::Result<Self> {
        let config = state.config();
        let listener = match config.http_enabled {
            true => Some(TcpListener::bind(config.listen).await?),
            false => None,
        };
        let tls = match &config.tls {
            Some(t) => {
                let rustls_config = tls::server_config(&t.cert_path, &t.key_path)?;
                Some((TcpListener::bind(t.listen).await?, rustls_config))
            }
            None => None,
        };
        Ok(Self {
            listener,
            tls,
            state,
        })
    }

    /// A server on an already bound listener (tests and embedders bind port 0).
    pub fn from_listener(listener: TcpListener, state: AppState) -> Self {
        Self {
            listener: Some(listener),
            tls: None,
            state,
        }
    }

    /// Adds an HTTPS listener on an already bound socket with a rustls configuration
    /// (see [`tls::server_config`]).
    pub fn with_tls_listener(
        mut self,
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
    ) -> Self {
        self.tls = Some((listener, config));
        self
    }

    /// The address plaintext HTTP listens on (an error when only HTTPS is served).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.listener {
            Some(l) => l.local_addr(),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "plaintext HTTP is disabled (http.port.enable=false)",
            )),
        }
    }

    /// The address HTTPS listens on, if it is served.
    pub fn tls_local_addr(&self) -> Option<io::Result<SocketAddr>> {
        self.tls.as_ref().map(|(l, _)| l.local_addr())
    }

    /// Serves until `shutdown` resolves, then stops gracefully: no new connections, in-flight
    /// requests finish, `?async=true` hand-offs and every dataSource are flushed (for at most
    /// the drain timeout) and closed, and the final counts are logged and returned.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<Vec<DataSourceReport>> {
        let state = self.state;
        let idle = state.config().idle_timeout;
        let stop = CancellationToken::new();
        let plain = match self.listener {
            Some(l) => {
                let addr = l.local_addr()?;
                info!(%addr, dataSources = state.data_sources().count(), "Tranquility Server listening (HTTP)");
                let serve =
                    axum::serve(idle::IdleTimeoutListener::new(l, idle), app(state.clone()))
                        .with_graceful_shutdown(stop.clone().cancelled_owned());
                Some(serve)
            }
            None => None,
        };
        let secure = match self.tls {
            Some((l, config)) => {
                let addr = l.local_addr()?;
                info!(%addr, dataSources = state.data_sources().count(), "Tranquility Server listening (HTTPS)");
                let listener =
                    tls::TlsListener::new(idle::IdleTimeoutListener::new(l, idle), config)?;
                let serve = axum::serve(listener, app(state.clone()))
                    .with_graceful_shutdown(stop.clone().cancelled_owned());
                Some(serve)
            }
            None => None,
        };
        let servers = async {
            let plain = async {
                match plain {
                    Some(s) => s.await,
                    None => Ok(()),
                }
            };
            let secure = async {
                match secure {
                    Some(s) => s.await,
                    None => Ok(()),
                }
            };
            tokio::try_join!(plain, secure).map(|_| ())
        };
        let stop_state = state.clone();
        let signal = async move {
            shutdown.await;
            stop_state.begin_stop();
            info!("stopping: refusing new connections, finishing requests in flight");
            stop.cancel();
        };
        tokio::pin!(servers);
        tokio::select! {
            r = &mut servers => r?,
            () = signal => servers.await?,
        }
        Ok(drain(&state).await)
    }
}

/// Waits for background hand-offs, flushes and closes every dataSource, logs final counts.
async fn drain(state: &AppState) -> Vec<DataSourceReport> {
    state.begin_stop();
    state.background().close();
    // Async hand-offs are already in the pipelines, so one flush answers them too.
    let flush_all = async {
        futures::future::join_all(state.data_sources().map(|(_, e)| e.ingest.flush())).await;
        state.background().wait().await;
    };
    let limit = state.config().drain_timeout;
    if tokio::time::timeout(limit, flush_all).await.is_err() {
        warn!(
            timeout = ?limit,
            "gave up waiting for pending events; they are counted as pending"
        );
    }
    futures::future::join_all(state.data_sources().map(|(_, e)| e.ingest.close())).await;
    let mut reports: Vec<DataSourceReport> = state
        .data_sources()
        .map(|(name, entry)| {
            let metrics = entry.ingest.metrics();
            DataSourceReport {
                name: name.to_string(),
                tally: metrics.snapshot(),
                pending: metrics.pending(),
            }
        })
        .collect();
    reports.sort_by(|a, b| a.name.cmp(&b.name));
    for r in &reports {
        info!(
            dataSource = %r.name,
            received = r.tally.received,
            sent = r.tally.sent,
            dropped = r.tally.dropped_total(),
            failed = r.tally.failed,
            pending = r.pending,
            "final counts"
        );
    }
    reports
}

/// Resolves on SIGTERM or CTRL-C (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!(error = %e, "cannot listen for CTRL-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("CTRL-C received"),
        () = term => info!("SIGTERM received"),
    }
}
