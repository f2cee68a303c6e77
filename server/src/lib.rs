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
//! See the crate's README for bodies, responses, errors and properties.

pub mod config;
pub mod decode;
pub mod error;
pub mod idle;
pub mod metrics;
pub mod routes;
pub mod state;

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tower::limit::GlobalConcurrencyLimitLayer;
use tracing::{info, warn};
use tranquility::metrics::Tally;

pub use config::ServerConfig;
pub use error::RequestError;
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
    Router::new()
        .route("/", get(routes::root))
        .route("/health", get(routes::health))
        .route("/metrics", get(metrics::metrics))
        .merge(posts)
        .fallback(routes::not_found)
        .with_state(state)
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

/// A server bound to a listener, ready to run.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    state: AppState,
}

impl Server {
    /// Binds `http.bindAddress:http.port` from the state's options.
    pub async fn bind(state: AppState) -> io::Result<Self> {
        let listener = TcpListener::bind(state.config().listen).await?;
        Ok(Self::from_listener(listener, state))
    }

    /// A server on an already bound listener (tests and embedders bind port 0).
    pub fn from_listener(listener: TcpListener, state: AppState) -> Self {
        Self { listener, state }
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops gracefully: no new connections, in-flight
    /// requests finish, `?async=true` hand-offs and every dataSource are flushed (for at most
    /// the drain timeout) and closed, and the final counts are logged and returned.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<Vec<DataSourceReport>> {
        let state = self.state;
        let addr = self.listener.local_addr()?;
        let listener = idle::IdleTimeoutListener::new(self.listener, state.config().idle_timeout);
        info!(%addr, dataSources = state.data_sources().count(), "Tranquility Server listening");
        let stop_state = state.clone();
        axum::serve(listener, app(state.clone()))
            .with_graceful_shutdown(async move {
                shutdown.await;
                stop_state.begin_stop();
                info!("stopping: refusing new connections, finishing requests in flight");
            })
            .await?;
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
