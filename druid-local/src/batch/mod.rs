//! Native batch tasks with an `inline` input source (`index_parallel`, `index`), as Druid runs
//! them: with `intervals` the task waits for its time-chunk locks before it starts (runner
//! status WAITING, then PENDING), without them it reads its input first and fails if a chunk
//! it found is locked by another group; JSON input is line-split; rows outside `intervals`
//! are thrown away; all segments are published together or none; appends take the chunk's
//! version and the next partition numbers, a replace (`appendToExisting: false`) a new
//! version that overshadows the chunks it writes (with `dropExisting`, every chunk of its
//! `intervals`). Published segments become queryable after the configured load delay (a real
//! cluster takes tens of seconds); `awaitSegmentAvailabilityTimeoutMillis` waits for that.

pub mod spec;

use crate::http::json;
use crate::ingest::{Event, RowStats, Rows};
use crate::locks;
use crate::storage::{Segment, SegmentKey};
use crate::task::rollup::Index;
use crate::task::{StatusCode as TaskStatus, Task};
use crate::time::{self, Granularity, Interval};
use crate::Shared;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use parking_lot::{Mutex, RwLock};
use serde_json::{json, Value};
use spec::BatchSpec;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// A batch task's report (`/task/{id}/reports`).
#[derive(Debug)]
struct Report {
    stats: Arc<RowStats>,
    state: &'static str,
    error: Option<String>,
    published: Option<usize>,
    confirmed: bool,
    waited_ms: i64,
    context: Value,
}

/// Reports of the batch tasks run since druid-local started.
#[derive(Debug, Default)]
pub struct Reports {
    map: Mutex<HashMap<String, Report>>,
}

impl Reports {
    fn update(&self, id: &str, f: impl FnOnce(&mut Report)) {
        if let Some(r) = self.map.lock().get_mut(id) {
            f(r);
        }
    }

    /// Druid's report JSON of a task, if it is a batch task run here.
    pub fn json(&self, id: &str) -> Option<Value> {
        let map = self.map.lock();
        let r = map.get(id)?;
        let zero = json!({"processed": 0, "processedBytes": 0, "processedWithError": 0, "thrownAway": 0, "unparseable": 0});
        let mut payload = json!({
            "ingestionState": r.state,
            "unparseableEvents": {},
            "rowStats": {"determinePartitions": zero, "buildSegments": r.stats.totals()},
            "errorMsg": r.error,
            "segmentAvailabilityConfirmed": r.confirmed,
            "segmentAvailabilityWaitTimeMs": r.waited_ms,
            "recordsProcessed": {},
        });
        if let Some(n) = r.published {
            payload["segmentsPublished"] = json!(n);
        }
        Some(json!({
            "ingestionStatsAndErrors": {"type": "ingestionStatsAndErrors", "taskId": id, "payload": payload},
            "taskContext": {"type": "taskContext", "taskId": id, "payload": r.context},
        }))
    }
}

/// `GET /druid/indexer/v1/task/{id}/reports`.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/druid/indexer/v1/task/{id}/reports", get(reports))
}

async fn reports(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match shared.reports.json(&id) {
        Some(v) => json(StatusCode::OK, v),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain")],
            format!("Cannot find any task with id: [{id}]"),
        )
            .into_response(),
    }
}

/// Why a task failed, with the state its report shows.
struct Failure(&'static str, String);

/// Runs a batch task to its end.
pub async fn run(shared: Arc<Shared>, task: Arc<Task>) {
    let id = task.spec.id.clone();
    let spec = match spec::of_payload(&task.spec.payload) {
        Ok(s) => s,
        Err(e) => {
            task.finish(TaskStatus::Failed, Some(e));
            shared.save_task(&task);
            return;
        }
    };
    let stats = Arc::new(RowStats::default());
    shared.reports.map.lock().insert(
        id.clone(),
        Report {
            stats: stats.clone(),
            state: "NOT_STARTED",
            error: None,
            published: None,
            confirmed: false,
            waited_ms: 0,
            context: Value::Object(spec.context.clone()),
        },
    );
    let outcome = execute(&shared, &task, &spec, &stats).await;
    shared.locks.release(&id);
    match outcome {
        Ok(()) => {
            shared.reports.update(&id, |r| r.state = "COMPLETED");
            task.finish(TaskStatus::Success, None);
        }
        Err(Failure(state, e)) => {
            shared.reports.update(&id, |r| {
                r.state = state;
                r.error = Some(e.clone());
            });
            task.finish(TaskStatus::Failed, Some(e));
        }
    }
    shared.save_task(&task);
    tracing::info!(task = %id, status = ?task.state.lock().status, "batch task finished");
}

fn request<'a>(
    spec: &'a BatchSpec,
    data_source: &'a str,
    interval: Interval,
) -> locks::Request<'a> {
    locks::Request {
        task: &spec.id,
        group: &spec.group_id,
        data_source,
        interval,
        kind: spec.lock_request(),
        priority: spec.priority,
    }
}

/// Takes the locks of every chunk or none.
fn lock_all(shared: &Shared, spec: &BatchSpec, chunks: &[Interval]) -> Option<Vec<String>> {
    let ds = &spec.data_schema.data_source;
    let mut versions = Vec::new();
    for c in chunks {
        match shared.locks.try_lock(&request(spec, ds, *c)) {
            Some(v) => versions.push(v),
            None => {
                shared.locks.release(&spec.id);
                return None;
            }
        }
    }
    Some(versions)
}

async fn execute(
    shared: &Arc<Shared>,
    task: &Task,
    spec: &BatchSpec,
    stats: &RowStats,
) -> Result<(), Failure> {
    let ds = spec.data_schema.data_source.clone();
    let mut kill = task.kill_signal();
    let stopped = || Failure("NOT_STARTED", "Shutdown request from user".into());
    // With intervals, Druid's isReady takes every chunk lock before the task runs.
    let declared = spec::chunks_of_intervals(&spec.data_schema);
    if !declared.is_empty() {
        task.state.lock().runner = Some("WAITING");
        loop {
            if lock_all(shared, spec, &declared).is_some() {
                break;
            }
            tokio::select! {
                _ = shared.locks.released() => {}
                _ = kill.wait_for(|k| *k) => return Err(stopped()),
            }
        }
    }
    {
        let mut st = task.state.lock();
        st.runner = None;
        st.location = Some((shared.host.clone(), shared.port));
    }
    if *kill.borrow() {
        return Err(stopped());
    }
    shared
        .reports
        .update(&spec.id, |r| r.state = "BUILD_SEGMENTS");

    // Read the input: one JSON object per line.
    let schema = &spec.data_schema;
    if let Some(why) = &schema.unusable {
        return Err(Failure("BUILD_SEGMENTS", why.clone()));
    }
    let data = spec
        .input
        .read(&reqwest::Client::new())
        .await
        .map_err(|e| Failure("BUILD_SEGMENTS", e))?;
    let rows = Rows::new(schema);
    let mut chunks: BTreeMap<Interval, Index> = BTreeMap::new();
    RowStats::bump(&stats.processed_bytes, data.len() as u64);
    let parse_failure = |stats: &RowStats| {
        let n = stats.unparseable.load(Ordering::Relaxed)
            + stats.processed_with_error.load(Ordering::Relaxed);
        (n > spec.max_parse_exceptions).then(|| {
            Failure(
                "BUILD_SEGMENTS",
                format!(
                    "org.apache.druid.java.util.common.RE: Max parse exceptions[{}] exceeded",
                    spec.max_parse_exceptions
                ),
            )
        })
    };
    for line in data.split('\n') {
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str::<Value>(line)
            .map_err(|e| e.to_string())
            .and_then(|v| rows.event(v));
        match event {
            Err(_) => {
                RowStats::bump(&stats.unparseable, 1);
                if let Some(f) = parse_failure(stats) {
                    return Err(f);
                }
            }
            Ok(Event::Filtered) => RowStats::bump(&stats.thrown_away, 1),
            Ok(Event::Row(row, with_error)) => {
                if !spec::in_intervals(schema, row.ts) {
                    RowStats::bump(&stats.thrown_away, 1);
                    continue;
                }
                let iv = schema.segment_granularity.bucket(row.ts);
                let idx = chunks.entry(iv).or_insert_with(|| {
                    Index::new(&schema.dimension_names(), &schema.metrics, schema.rollup)
                });
                let truncated = match schema.query_granularity {
                    Granularity::All => iv.start,
                    ref g => g.bucket_start(row.ts),
                };
                idx.add(truncated, row.ts, row.dims, &row.metrics);
                RowStats::bump(&stats.processed, 1);
                if with_error {
                    RowStats::bump(&stats.processed_with_error, 1);
                    if let Some(f) = parse_failure(stats) {
                        return Err(f);
                    }
                }
            }
        }
    }

    // Without intervals the locks are taken now, and a conflict fails the task.
    let found: Vec<Interval> = chunks.keys().copied().collect();
    if declared.is_empty() && !found.is_empty() && lock_all(shared, spec, &found).is_none() {
        let list: Vec<String> = found.iter().map(Interval::to_string).collect();
        return Err(Failure(
            "BUILD_SEGMENTS",
            format!(
                "org.apache.druid.java.util.common.ISE: Failed to get locks for intervals[[{}]]",
                list.join(", ")
            ),
        ));
    }

    // Segment identities.
    let mut segments = Vec::new();
    for (iv, index) in chunks {
        let (version, partition) = if spec.append {
            locks::allocate(shared, &request(spec, &ds, iv)).ok_or_else(|| {
                Failure("BUILD_SEGMENTS", format!("org.apache.druid.java.util.common.ISE: Failed to get locks for intervals[[{iv}]]"))
            })?
        } else {
            let version = shared
                .locks
                .try_lock(&request(spec, &ds, iv))
                .ok_or_else(|| Failure("BUILD_SEGMENTS", format!("org.apache.druid.java.util.common.ISE: Failed to get locks for intervals[[{iv}]]")))?;
            let version = newer_than_chunk(shared, &ds, iv, version);
            let partition = shared.store.allocate_partition(&ds, iv, &version);
            (version, partition)
        };
        segments.push(Arc::new(Segment {
            data_source: ds.clone(),
            interval: iv,
            version,
            partition,
            index: RwLock::new(index),
        }));
    }
    // A dropExisting replace empties the chunks of its intervals it writes nothing into.
    let mut dropped: Vec<(String, SegmentKey)> = Vec::new();
    if !spec.append && spec.drop_existing {
        let written: Vec<Interval> = segments.iter().map(|s| s.interval).collect();
        for seg in shared.store.published(&ds) {
            let in_scope = schema.intervals.iter().any(|i| i.overlaps(&seg.interval));
            if in_scope && !written.contains(&seg.interval) {
                dropped.push((
                    ds.clone(),
                    (seg.interval, seg.version.clone(), seg.partition),
                ));
            }
        }
    }
    if *kill.borrow() {
        return Err(stopped());
    }
    if segments
        .iter()
        .any(|s| shared.locks.revoked(&spec.id, s.interval))
    {
        return Err(Failure(
            "BUILD_SEGMENTS",
            "org.apache.druid.java.util.common.ISE: The lock of this task was revoked by a higher-priority task (a Kafka supervisor's tasks, priority 75); nothing was published".into(),
        ));
    }
    shared
        .metadata
        .publish(&segments, &dropped, None)
        .map_err(|e| Failure("BUILD_SEGMENTS", e.to_string()))?;
    shared
        .reports
        .update(&spec.id, |r| r.published = Some(segments.len()));
    let waited = load(shared, segments, dropped, spec.await_availability_ms).await;
    if let Some((confirmed, ms)) = waited {
        shared.reports.update(&spec.id, |r| {
            r.confirmed = confirmed;
            r.waited_ms = ms;
        });
    }
    Ok(())
}

/// A replace's version must sort after the chunk's (Druid's lock versions only grow).
fn newer_than_chunk(shared: &Shared, ds: &str, iv: Interval, version: String) -> String {
    match locks::chunk_version(shared, ds, iv) {
        Some(v) if v >= version => {
            let t = time::parse_iso(&v).unwrap_or(0) + 1;
            time::iso(t.max(time::now_millis()))
        }
        _ => version,
    }
}

/// Serves published segments after the load delay; with `await_ms > 0` waits for that (up to
/// the timeout) and says whether they became available and how long it waited.
async fn load(
    shared: &Arc<Shared>,
    segments: Vec<Arc<Segment>>,
    dropped: Vec<(String, SegmentKey)>,
    await_ms: i64,
) -> Option<(bool, i64)> {
    let delay = shared.segment_load_delay;
    if delay.is_zero() {
        shared.store.publish(None, &segments, &dropped);
        return (await_ms > 0).then_some((true, 0));
    }
    let started = time::now_millis();
    let loaded_at = started + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    shared.metadata.add_loading(&segments, loaded_at);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let s = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        s.store.publish(None, &segments, &dropped);
        s.metadata.remove_loading(&segments);
        let _ = tx.send(());
    });
    if await_ms <= 0 {
        return None;
    }
    let confirmed = tokio::time::timeout(Duration::from_millis(await_ms as u64), rx)
        .await
        .is_ok();
    Some((confirmed, time::now_millis() - started))
}
