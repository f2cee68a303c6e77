//! The Coordinator's segment views, so clients and tests can count segments and versions:
//! `GET /druid/coordinator/v1/metadata/datasources/{ds}/segments` lists the used (published)
//! segments, loaded or not, overshadowed ones included until they are dropped (as Druid lists
//! them until its Coordinator marks them unused); `GET /druid/coordinator/v1/datasources/{ds}`
//! summarises the loaded ones.

use crate::http::json;
use crate::metadata::segment_json;
use crate::storage::Segment;
use crate::time;
use crate::Shared;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The routes.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/druid/coordinator/v1/metadata/datasources/{ds}/segments",
            get(used_segments),
        )
        .route("/druid/coordinator/v1/datasources/{ds}", get(served))
}

fn used(shared: &Shared, ds: &str) -> Vec<Arc<Segment>> {
    let mut all = shared.store.published(ds);
    all.extend(shared.metadata.loading(ds).into_iter().map(|u| u.segment));
    all.sort_by_key(|s| s.id());
    all.dedup_by_key(|s| s.id());
    all
}

async fn used_segments(
    State(shared): State<Arc<Shared>>,
    Path(ds): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let segs = used(&shared, &ds);
    if segs.is_empty() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let body: Vec<Value> = if q.contains_key("full") {
        segs.iter().map(|s| segment_json(s, None)).collect()
    } else {
        segs.iter().map(|s| json!(s.id())).collect()
    };
    json(StatusCode::OK, Value::Array(body))
}

async fn served(State(shared): State<Arc<Shared>>, Path(ds): Path<String>) -> Response {
    let segs = shared.store.published(&ds);
    if segs.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let size: u64 = segs
        .iter()
        .map(|s| segment_json(s, None)["size"].as_u64().unwrap_or(0))
        .sum();
    let min = segs.iter().map(|s| s.interval.start).min().unwrap_or(0);
    let max = segs.iter().map(|s| s.interval.end).max().unwrap_or(0);
    json(
        StatusCode::OK,
        json!({
            "tiers": {"_default_tier": {"size": size, "replicatedSize": size, "segmentCount": segs.len()}},
            "segments": {"maxTime": time::iso(max), "size": size, "minTime": time::iso(min),
                "count": segs.len(), "replicatedSize": size},
        }),
    )
}
