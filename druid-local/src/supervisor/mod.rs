//! Kafka supervisors (`/druid/indexer/v1/supervisor`), as Druid's Kafka indexing service runs
//! them: a supervisor per spec reads its topic's partitions in `taskCount` groups of
//! `replicas` tasks, each task a Kafka consumer with `assign()`ed partitions and no consumer
//! group; rows are queryable as soon as read, and every `taskDuration` a group commits its
//! segments and end offsets together in druid-local's metadata log (`crate::metadata`), so a
//! restart resumes where the last publish ended: nothing lost, nothing twice.
//!
//! Parts: `spec` (validation and Druid's written-back form), `state` (health), `consumer`
//! (Kafka client settings), `group` (a task group's cycle), `task` (how reading tasks look in
//! the task API) and `api` (the HTTP endpoints).

pub mod api;
pub mod consumer;
pub mod group;
pub mod spec;
pub mod state;
pub mod task;

use crate::ingest::Rows;
use crate::metadata::StreamOffsets;
use crate::time::{self, Millis};
use crate::Shared;
use group::{Context, Group, GroupCmd, Outcome};
use parking_lot::Mutex;
use rdkafka::consumer::BaseConsumer;
use serde_json::{json, Value};
use spec::KafkaSpec;
use state::{State, StateManager};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Druid's class for errors reaching the stream.
const STREAM_EXCEPTION: &str = "org.apache.druid.indexing.seekablestream.common.StreamException";

/// How a supervisor is told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Run,
    /// Tasks publish first (update, suspend, terminate).
    Graceful,
    /// Tasks stop without publishing (druid-local is stopping).
    Immediate,
}

/// A running supervisor.
#[derive(Debug)]
pub struct Supervisor {
    /// The spec it runs.
    pub spec: Arc<KafkaSpec>,
    state: Mutex<StateManager>,
    groups: Mutex<BTreeMap<u32, Arc<Group>>>,
    partitions: Mutex<Vec<i32>>,
    latest: Mutex<Option<(BTreeMap<i32, i64>, Millis)>>,
    stop: watch::Sender<Stop>,
    wake: Notify,
    stopped: watch::Sender<bool>,
    ctx: Context,
}

/// All supervisors of this druid-local.
#[derive(Debug, Default)]
pub struct Manager {
    supervisors: Mutex<BTreeMap<String, Arc<Supervisor>>>,
    ops: tokio::sync::Mutex<()>,
}

/// Why a supervisor call is refused.
#[derive(Debug)]
pub enum ApiError {
    /// 404 `Cannot find any supervisor with id: [id]` (text).
    NotFound(String),
    /// 400 `{"error": msg}`.
    BadRequest(String),
    /// 500, Jetty's answer to an unmapped exception (text).
    Internal(String),
}

impl Manager {
    /// Ids of the running supervisors.
    pub fn ids(&self) -> Vec<String> {
        self.supervisors.lock().keys().cloned().collect()
    }

    /// A supervisor by id.
    pub fn get(&self, id: &str) -> Option<Arc<Supervisor>> {
        self.supervisors.lock().get(id).cloned()
    }

    /// Starts the supervisors whose latest stored spec is not a tombstone (druid-local start).
    pub async fn restore(&self, shared: &Arc<Shared>) {
        for (id, versions) in shared.metadata.histories() {
            let Some(latest) = versions.first() else {
                continue;
            };
            if latest.spec.get("type").and_then(Value::as_str) != Some("kafka") {
                continue;
            }
            match spec::parse(&latest.spec, &shared.version, &shared.service_name) {
                Ok(s) => {
                    let sup = Supervisor::start(shared, Arc::new(s));
                    self.supervisors.lock().insert(id, sup);
                }
                Err(e) => {
                    tracing::error!(supervisor = %id, error = ?e, "stored supervisor spec no longer maps")
                }
            }
        }
    }

    /// Creates or updates a supervisor (`POST /supervisor`); returns its id.
    pub async fn submit(
        &self,
        shared: &Arc<Shared>,
        v: &Value,
        skip_if_unmodified: bool,
    ) -> Result<String, ApiError> {
        let parsed =
            spec::parse(v, &shared.version, &shared.service_name).map_err(|e| match e {
                spec::SpecError::BadRequest(m) => ApiError::BadRequest(m),
            })?;
        if parsed.io.pattern.is_some() {
            return Err(ApiError::BadRequest(
                "druid-local does not run multi-topic (topicPattern) supervisors; name one topic"
                    .into(),
            ));
        }
        let _op = self.ops.lock().await;
        let id = parsed.id.clone();
        let old = self.get(&id);
        let changed = old
            .as_ref()
            .is_none_or(|o| o.spec.written != parsed.written);
        if skip_if_unmodified && shared.version.honours_skip_restart() && !changed {
            return Ok(id);
        }
        if let Some(o) = &old {
            if changed && shared.version.supervisor_id_and_stream_lock() {
                spec::check_update(&o.spec, &parsed).map_err(|m| {
                    ApiError::Internal(format!("org.apache.druid.error.DruidException: {m}"))
                })?;
            }
        }
        // Before 33 every POST stored a new version; from 33 only a changed spec does.
        if changed || !shared.version.honours_skip_restart() {
            shared
                .metadata
                .store_spec(&id, parsed.written.clone())
                .map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        if let Some(o) = old {
            o.shutdown(Stop::Graceful).await;
        }
        let sup = Supervisor::start(shared, Arc::new(parsed));
        self.supervisors.lock().insert(id.clone(), sup);
        Ok(id)
    }

    /// Suspends or resumes; returns the new spec as written.
    pub async fn set_suspended(
        &self,
        shared: &Arc<Shared>,
        id: &str,
        suspend: bool,
    ) -> Result<Value, ApiError> {
        let _op = self.ops.lock().await;
        let old = self
            .get(id)
            .ok_or_else(|| ApiError::NotFound(id.to_owned()))?;
        if old.spec.suspended == suspend {
            return Err(ApiError::BadRequest(format!(
                "[{id}] is already {}",
                if suspend { "suspended" } else { "running" }
            )));
        }
        let new = old.spec.with_suspended(suspend);
        shared
            .metadata
            .store_spec(id, new.written.clone())
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        old.shutdown(Stop::Graceful).await;
        let written = new.written.clone();
        let sup = Supervisor::start(shared, Arc::new(new));
        self.supervisors.lock().insert(id.to_owned(), sup);
        Ok(written)
    }

    /// Terminates: tasks publish, a tombstone is stored, stored offsets stay.
    pub async fn terminate(&self, shared: &Arc<Shared>, id: &str) -> Result<(), ApiError> {
        let _op = self.ops.lock().await;
        let old = self
            .get(id)
            .ok_or_else(|| ApiError::NotFound(id.to_owned()))?;
        shared
            .metadata
            .store_spec(id, spec::tombstone(&old.spec.data_schema.data_source))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        self.supervisors.lock().remove(id);
        old.shutdown(Stop::Graceful).await;
        Ok(())
    }

    /// `reset`: stored offsets deleted, running tasks stopped without publishing.
    pub async fn reset(&self, shared: &Arc<Shared>, id: &str) -> Result<(), ApiError> {
        let _op = self.ops.lock().await;
        let sup = self
            .get(id)
            .ok_or_else(|| ApiError::NotFound(id.to_owned()))?;
        sup.abort_groups(None).await;
        shared
            .metadata
            .set_offsets(sup.spec.offsets_key(), None)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        sup.wake.notify_one();
        Ok(())
    }

    /// `resetOffsets`: the given partitions restart from the given offsets.
    pub async fn reset_offsets(
        &self,
        shared: &Arc<Shared>,
        id: &str,
        body: &Value,
    ) -> Result<(), ApiError> {
        let _op = self.ops.lock().await;
        let sup = self
            .get(id)
            .ok_or_else(|| ApiError::NotFound(id.to_owned()))?;
        let parts = body.get("partitions").ok_or_else(|| {
            ApiError::BadRequest("resetOffsets needs {\"type\":\"kafka\",\"partitions\":{\"type\":\"end\",\"stream\":...,\"partitionOffsetMap\":{...}}}".into())
        })?;
        let stream = parts
            .get("stream")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if stream != sup.spec.io.stream {
            return Err(ApiError::Internal(format!(
                "org.apache.druid.error.DruidException: Stream[{stream}] doesn't exist in the supervisor[KafkaSupervisor-{id}]. Supervisor is consuming stream[{}].",
                sup.spec.io.stream
            )));
        }
        let map = parts
            .get("partitionOffsetMap")
            .or_else(|| parts.get("partitionSequenceNumberMap"))
            .and_then(Value::as_object)
            .ok_or_else(|| {
                ApiError::BadRequest("resetOffsets: partitionOffsetMap is required".into())
            })?;
        let mut given = BTreeMap::new();
        for (p, o) in map {
            let p: i32 = p
                .parse()
                .map_err(|_| ApiError::BadRequest(format!("resetOffsets: bad partition [{p}]")))?;
            let o = o.as_i64().ok_or_else(|| {
                ApiError::BadRequest(format!("resetOffsets: bad offset for partition [{p}]"))
            })?;
            given.insert(p, o);
        }
        sup.abort_groups(Some(&given.keys().copied().collect::<Vec<_>>()))
            .await;
        let key = sup.spec.offsets_key();
        let mut stored = shared
            .metadata
            .offsets(key)
            .filter(|s| s.stream == sup.spec.io.stream)
            .unwrap_or(StreamOffsets {
                stream: sup.spec.io.stream.clone(),
                partitions: BTreeMap::new(),
            });
        stored.partitions.extend(given);
        shared
            .metadata
            .set_offsets(key, Some(stored))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        sup.wake.notify_one();
        Ok(())
    }

    /// `taskGroups/handoff` (31+): the named groups publish now.
    pub fn handoff(&self, id: &str, groups: &[u32]) -> Result<(), ApiError> {
        let sup = self
            .get(id)
            .ok_or_else(|| ApiError::NotFound(id.to_owned()))?;
        for g in sup.groups.lock().values() {
            if groups.contains(&g.id) {
                g.command(GroupCmd::Publish);
            }
        }
        Ok(())
    }

    /// Stops every supervisor; `graceful` lets tasks publish (druid-local stopping does not).
    pub async fn stop_all(&self, graceful: bool) {
        let all: Vec<Arc<Supervisor>> = std::mem::take(&mut *self.supervisors.lock())
            .into_values()
            .collect();
        for s in all {
            s.shutdown(if graceful {
                Stop::Graceful
            } else {
                Stop::Immediate
            })
            .await;
        }
    }

    /// `suspendAll` / `resumeAll`.
    pub async fn set_all_suspended(&self, shared: &Arc<Shared>, suspend: bool) {
        for id in self.ids() {
            let _ = self.set_suspended(shared, &id, suspend).await;
        }
    }

    /// `terminateAll`.
    pub async fn terminate_all(&self, shared: &Arc<Shared>) {
        for id in self.ids() {
            let _ = self.terminate(shared, &id).await;
        }
    }
}

impl Supervisor {
    fn start(shared: &Arc<Shared>, spec: Arc<KafkaSpec>) -> Arc<Supervisor> {
        let rows = Arc::new(Rows::new(&spec.data_schema));
        let sup = Arc::new(Supervisor {
            state: Mutex::new(StateManager::new(spec.suspended)),
            groups: Mutex::default(),
            partitions: Mutex::default(),
            latest: Mutex::default(),
            stop: watch::channel(Stop::Run).0,
            wake: Notify::new(),
            stopped: watch::channel(false).0,
            ctx: Context {
                shared: shared.clone(),
                spec: spec.clone(),
                rows,
            },
            spec,
        });
        tokio::spawn(run(sup.clone()));
        sup
    }

    /// Stops the run loop and its groups, and waits for them.
    async fn shutdown(&self, how: Stop) {
        self.state.lock().stopping();
        self.stop.send_replace(how);
        self.wake.notify_one();
        let mut rx = self.stopped.subscribe();
        let _ = rx.wait_for(|s| *s).await;
        let groups: Vec<Arc<Group>> = std::mem::take(&mut *self.groups.lock())
            .into_values()
            .collect();
        for g in &groups {
            g.command(if how == Stop::Immediate {
                GroupCmd::Abort
            } else {
                GroupCmd::Publish
            });
        }
        for g in groups {
            g.finished().await;
        }
    }

    /// Stops the groups holding `partitions` (all with `None`) without publishing.
    async fn abort_groups(&self, partitions: Option<&[i32]>) {
        let hit: Vec<Arc<Group>> = {
            let mut groups = self.groups.lock();
            let ids: Vec<u32> = groups
                .values()
                .filter(|g| {
                    partitions.is_none_or(|ps| g.start.partitions.keys().any(|p| ps.contains(p)))
                })
                .map(|g| g.id)
                .collect();
            ids.iter().filter_map(|i| groups.remove(i)).collect()
        };
        for g in &hit {
            g.command(GroupCmd::Abort);
        }
        for g in hit {
            g.finished().await;
        }
    }

    /// Detailed state, basic state and health.
    pub fn state(&self) -> (State, bool) {
        let s = self.state.lock();
        (s.state(), s.healthy())
    }

    /// `GET /supervisor/{id}/status`.
    pub fn status(&self) -> Value {
        let spec = &self.spec;
        let now = time::now_millis();
        let latest = self.latest.lock().clone();
        let mut active = Vec::new();
        let mut publishing = Vec::new();
        let mut min_lag: BTreeMap<i32, i64> = BTreeMap::new();
        for g in self.groups.lock().values() {
            let is_publishing = g.publishing.load(std::sync::atomic::Ordering::Relaxed);
            for r in &g.replicas {
                let current = r.current.lock().clone();
                let lag: BTreeMap<String, i64> = match &latest {
                    Some((l, _)) => current
                        .iter()
                        .map(|(p, c)| (p.to_string(), (l.get(p).copied().unwrap_or(*c) - c).max(0)))
                        .collect(),
                    None => BTreeMap::new(),
                };
                for (p, l) in &lag {
                    if let Ok(p) = p.parse::<i32>() {
                        let e = min_lag.entry(p).or_insert(*l);
                        *e = (*e).min(*l);
                    }
                }
                let entry = json!({
                    "id": r.task.spec.id,
                    "startingOffsets": offsets_map(&g.start.partitions),
                    "startTime": time::iso(g.started),
                    "remainingSeconds": ((g.started + spec.io.task_duration - now) / 1000).max(0),
                    "type": if is_publishing { "PUBLISHING" } else { "ACTIVE" },
                    "currentOffsets": offsets_map(&current),
                    "lag": lag,
                });
                if is_publishing {
                    publishing.push(entry);
                } else {
                    active.push(entry);
                }
            }
        }
        let (st, healthy) = self.state();
        let mut payload = serde_json::Map::new();
        payload.insert("dataSource".into(), json!(spec.data_schema.data_source));
        payload.insert("stream".into(), json!(spec.io.stream));
        payload.insert("partitions".into(), json!(self.partitions.lock().len()));
        payload.insert("replicas".into(), json!(spec.io.replicas));
        payload.insert(
            "durationSeconds".into(),
            json!(spec.io.task_duration / 1000),
        );
        payload.insert("activeTasks".into(), Value::Array(active));
        payload.insert("publishingTasks".into(), Value::Array(publishing));
        if let Some((l, _)) = &latest {
            payload.insert("latestOffsets".into(), offsets_map(l));
        }
        payload.insert("minimumLag".into(), offsets_map(&min_lag));
        payload.insert("aggregateLag".into(), json!(min_lag.values().sum::<i64>()));
        if let Some((_, t)) = &latest {
            payload.insert("offsetsLastUpdated".into(), json!(time::iso(*t)));
        }
        payload.insert("suspended".into(), json!(spec.suspended));
        payload.insert("healthy".into(), json!(healthy));
        payload.insert("state".into(), json!(st.basic().name()));
        payload.insert("detailedState".into(), json!(st.name()));
        payload.insert("recentErrors".into(), self.state.lock().recent_errors());
        json!({"id": spec.id, "generationTime": time::iso(now), "payload": payload})
    }

    /// `GET /supervisor/{id}/stats`: per group, per task, the row counters.
    pub fn stats(&self) -> Value {
        let mut out = serde_json::Map::new();
        for g in self.groups.lock().values() {
            let mut tasks = serde_json::Map::new();
            for r in &g.replicas {
                let totals = r.stats.totals();
                let secs = r.elapsed_secs();
                let rate = |k: &str| totals[k].as_f64().unwrap_or(0.0) / secs;
                let avg = json!({"processed": rate("processed"), "processedBytes": rate("processedBytes"),
                    "unparseable": rate("unparseable"), "thrownAway": rate("thrownAway"),
                    "processedWithError": rate("processedWithError")});
                tasks.insert(
                    r.task.spec.id.clone(),
                    json!({"movingAverages": {"buildSegments": {"5m": avg, "15m": avg, "1m": avg}},
                        "totals": {"buildSegments": totals}}),
                );
            }
            out.insert(g.id.to_string(), Value::Object(tasks));
        }
        Value::Object(out)
    }
}

fn offsets_map(m: &BTreeMap<i32, i64>) -> Value {
    Value::Object(m.iter().map(|(p, o)| (p.to_string(), json!(o))).collect())
}

/// Waits `d`, waking early on a stop request or a notice; true when asked to stop.
async fn pause(sup: &Supervisor, stop: &mut watch::Receiver<Stop>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = sup.wake.notified() => {}
        _ = stop.wait_for(|s| *s != Stop::Run) => {}
    }
    *stop.borrow() != Stop::Run
}

/// The supervisor's loop: a run every `period` (Druid's `RunNotice`).
async fn run(sup: Arc<Supervisor>) {
    let mut stop = sup.stop.subscribe();
    let spec = sup.spec.clone();
    let mut client: Option<Arc<BaseConsumer>> = None;
    let mut stopping = pause(
        &sup,
        &mut stop,
        Duration::from_millis(spec.io.start_delay.max(0) as u64),
    )
    .await;
    while !stopping {
        run_once(&sup, &mut client).await;
        let period = Duration::from_millis(spec.io.period.max(100) as u64);
        stopping = pause(&sup, &mut stop, period).await;
    }
    sup.stopped.send_replace(true);
}

async fn run_once(sup: &Supervisor, client: &mut Option<Arc<BaseConsumer>>) {
    let spec = sup.spec.clone();
    let shared = sup.ctx.shared.clone();
    sup.state.lock().propose(State::ConnectingToStream);
    let c = match client {
        Some(c) => c.clone(),
        None => {
            let (config, skipped) = consumer::client_config(&spec.io.consumer_properties);
            if !skipped.is_empty() {
                tracing::warn!(supervisor = %spec.id, ?skipped, "consumerProperties the Kafka client here does not know are ignored");
            }
            match consumer::metadata_client(&config) {
                Ok(c) => {
                    let c = Arc::new(c);
                    *client = Some(c.clone());
                    c
                }
                Err(e) => {
                    let mut st = sup.state.lock();
                    st.record_error(STREAM_EXCEPTION, &e, true);
                    st.run_finished();
                    return;
                }
            }
        }
    };
    let timeout = Duration::from_millis(spec.io.period.clamp(1_000, 10_000) as u64);
    let topic = spec.io.stream.clone();
    let found = {
        let c = c.clone();
        tokio::task::spawn_blocking(move || {
            let parts = consumer::partitions(&c, &topic, timeout)?;
            let marks = consumer::watermarks(&c, &topic, &parts, timeout)?;
            Ok::<_, String>((parts, marks))
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
    };
    let (parts, marks) = match found {
        Ok(x) => x,
        Err(e) => {
            let mut st = sup.state.lock();
            st.record_error(STREAM_EXCEPTION, &e, true);
            if !st.at_least_one_success() {
                st.run_finished();
                return;
            }
            drop(st);
            let known = sup.partitions.lock().clone();
            (known, BTreeMap::new())
        }
    };
    *sup.partitions.lock() = parts.clone();
    if !marks.is_empty() {
        *sup.latest.lock() = Some((
            marks.iter().map(|(p, (_, hi))| (*p, *hi)).collect(),
            time::now_millis(),
        ));
    }
    sup.state.lock().propose(State::DiscoveringInitialTasks);
    // Groups whose cycle ended make room for the next one.
    let ended: Vec<Arc<Group>> = {
        let mut groups = sup.groups.lock();
        let ids: Vec<u32> = groups
            .values()
            .filter(|g| g.outcome().is_some())
            .map(|g| g.id)
            .collect();
        ids.iter().filter_map(|i| groups.remove(i)).collect()
    };
    for g in ended {
        let ok = g.outcome() == Some(Outcome::Published);
        let mut st = sup.state.lock();
        for r in &g.replicas {
            let task_ok = r.task.state.lock().status == crate::task::StatusCode::Success;
            st.record_task(ok && task_ok);
            if !task_ok {
                st.record_task_error(&format!(
                    "org.apache.druid.rpc.ServiceClosedException: Service [{}] is closed",
                    r.task.spec.id
                ));
            }
        }
    }
    if spec.suspended {
        let groups: Vec<Arc<Group>> = sup.groups.lock().values().cloned().collect();
        for g in groups {
            g.command(GroupCmd::Publish);
        }
    } else if !marks.is_empty() && spec.io.task_count > 0 {
        sup.state.lock().propose(State::CreatingTasks);
        let stored = shared
            .metadata
            .offsets(spec.offsets_key())
            .filter(|s| s.stream == spec.io.stream);
        for gid in 0..spec.io.task_count {
            if sup.groups.lock().contains_key(&gid) {
                continue;
            }
            let mine: Vec<i32> = parts
                .iter()
                .copied()
                .filter(|p| u32::try_from(*p).is_ok_and(|p| p % spec.io.task_count == gid))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let mut start = BTreeMap::new();
            for p in mine {
                let from_store = stored.as_ref().and_then(|s| s.partitions.get(&p).copied());
                let o = match from_store {
                    Some(o) => o,
                    None => match marks.get(&p) {
                        Some((lo, hi)) => {
                            if spec.io.use_earliest {
                                *lo
                            } else {
                                *hi
                            }
                        }
                        None => continue,
                    },
                };
                start.insert(p, o);
            }
            let g = group::start(
                &sup.ctx,
                gid,
                StreamOffsets {
                    stream: spec.io.stream.clone(),
                    partitions: start,
                },
            );
            sup.groups.lock().insert(gid, g);
        }
    }
    sup.state.lock().run_finished();
}
