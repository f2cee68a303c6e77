//! `GET /metrics`: the process's series in the OpenMetrics text format that Prometheus scrapes.
//!
//! The series are the core's (`tranquility_events_received_total`, `..._sent_total`,
//! `..._dropped_total{reason}`, `..._failed_total`, `tranquility_events_pending`,
//! `tranquility_tasks_active`, ...), each labelled `dataSource`, so every binary exposes the
//! same names.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

/// The content type of `prometheus_client`'s text encoding.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    encoded(state.metrics())
}

/// The `/metrics` answer for `metrics`: every command that serves metrics answers this way.
pub fn encoded(metrics: &tranquility::metrics::Metrics) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.encode())
}
