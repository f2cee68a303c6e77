//! The admin endpoints every long-running command serves ([`admin_routes`]): `GET /metrics`,
//! the process's series in the OpenMetrics text format that Prometheus scrapes, and
//! `GET /health`, the command's own JSON health answer.
//!
//! The series are the core's (`tranquility_events_received_total`, `..._sent_total`,
//! `..._dropped_total{reason}`, `..._failed_total`, `tranquility_events_pending`,
//! `tranquility_tasks_active`, ...), each labelled `dataSource`, so every binary exposes the
//! same names.

use std::future::Future;
use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tranquility::metrics::Metrics;

/// The content type of `prometheus_client`'s text encoding.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics` over `metrics` and `GET /health` answered by `health`, for the server
/// and the `kafka` command alike.
pub fn admin_routes<S, H, F>(metrics: Arc<Metrics>, health: H) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    H: Fn() -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let exposition = move || {
        let text = metrics.encode();
        async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response() }
    };
    Router::new()
        .route("/metrics", get(exposition))
        .route("/health", get(health))
}
