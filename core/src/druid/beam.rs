//! The realtime-task way into Druid: [`DruidBeamMaker`] creates a partition's replica tasks
//! through the Overlord; [`DruidBeam`] pushes to them.
//!
//! A batch is cut into chunks of `druidBeam.firehoseChunkSize` events, each encoded once (JSON
//! array or Smile array) and pushed to every replica that is still running. Per chunk the
//! replica outcomes merge as [`Outcome::merge_replicas`] says: sent if any replica took it.
//! A replica whose task finished or failed is given up ("loss of Druid redundancy"); when no
//! replica is left, the chunk is `Dropped(BeamDefunct)`, which makes the ClusteredBeam close
//! the interval for good.
//!
//! Events read from a source (Kafka, Fluvio) carry their partition and offset, and go through
//! [`positioned`]: pushed in offset order under the partition's producer id with the chunk's
//! last offset as the sequence, so that a task skips a message it already has.
//!
//! A partition whose creation fails half-way (a replica's task created, the next one refused)
//! keeps the tasks already created running, as the original did: the retry adopts them (a task
//! this maker created and that still runs is taken as it is; one another instance created is
//! found through the Overlord's "already exists"), so the interval is not lost. Shutting them
//! down instead would leave the retry only FAILED tasks under the same ids.
//!
//! Each beam writes its events the way its tasks read timestamps ([`EventShape`]): tasks this
//! process created are of the original's shape; for tasks found in the shared metadata the
//! Overlord is asked once for their spec, since they may come from the original or from an
//! earlier Tranquility-RS.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::join_all;
use parking_lot::Mutex;
use tracing::{info, warn};

use super::event_shape::EventShape;
use super::locator::{TaskLocator, TaskTarget};
use super::overlord::{CallError, OverlordClient, OverlordError, TaskState};
use super::receiver::{PushBody, ReceiverClient, ReceiverError, TaskCheck};
use super::task_spec::realtime_task;
use crate::beam::{Beam, BeamMaker, CloseError, DropReason, Outcome, SendError};
use crate::coord::meta::{RealtimeTasks, TaskRef};
use crate::coord::BeamDescriptor;
use crate::event::{Event, TimestampExtractor};
use crate::metrics::events::TaskEvent;
use crate::metrics::DataSourceMetrics;
use crate::source::Ownership;
use crate::spec::properties::{CoreProperties, SerializationFormat};
use crate::spec::IngestionSpec;
use crate::time::Interval;

pub mod positioned;

/// What every beam of one dataSource shares: clients, locator and settings.
#[derive(Debug)]
pub struct DruidBeamContext {
    /// The dataSource.
    pub data_source: String,
    /// The push client.
    pub receiver: ReceiverClient,
    /// Finds a task's receiver.
    pub locator: Arc<dyn TaskLocator>,
    /// The Overlord (task creation and "is this task finished?").
    pub overlord: OverlordClient,
    /// Events per push request.
    pub chunk_size: usize,
    /// Body format of pushes.
    pub format: SerializationFormat,
    /// `druid.selectors.indexing.serviceName` with `/` mangled to `:`.
    pub indexing_service_key: String,
    /// The dataSource's series.
    pub metrics: DataSourceMetrics,
}

/// Makes realtime-task beams: one `index_realtime` task per replicant for each interval and
/// partition.
#[derive(Debug)]
pub struct DruidBeamMaker {
    spec: IngestionSpec,
    props: CoreProperties,
    context: Arc<DruidBeamContext>,
    /// How this instance reads event timestamps (the spec's timestampSpec).
    timestamps: Result<Arc<TimestampExtractor>, String>,
    /// Tasks this maker created and no beam has opened yet: their shape is known.
    created: Mutex<HashSet<String>>,
    /// Tasks this maker created per (interval start, partition, replicant) that no beam has
    /// opened yet: a retry of a half-created partition adopts them while they run.
    unopened: Mutex<HashMap<(i64, u32, u32), TaskRef>>,
}

/// Created tasks remembered at most (ids whose descriptor never got written are forgotten).
const CREATED_REMEMBERED: usize = 1024;

impl DruidBeamMaker {
    /// A maker for `spec` with the dataSource's properties.
    pub fn new(spec: IngestionSpec, props: CoreProperties, context: Arc<DruidBeamContext>) -> Self {
        let timestamps = TimestampExtractor::new(&spec.data_schema.timestamp_spec())
            .map(Arc::new)
            .map_err(|e| e.to_string());
        Self {
            spec,
            props,
            context,
            timestamps,
            created: Mutex::new(HashSet::new()),
            unopened: Mutex::new(HashMap::new()),
        }
    }

    /// A task this maker created for this slot earlier and that still runs (a retry after a
    /// half-created partition). One that is gone is forgotten, so a new one is submitted.
    async fn still_running(
        &self,
        interval: Interval,
        slot: (i64, u32, u32),
    ) -> Result<Option<TaskRef>, SendError> {
        let Some(task) = self.unopened.lock().get(&slot).cloned() else {
            return Ok(None);
        };
        match self.context.overlord.task_status(&task.id).await {
            Ok(Some(status)) if status.state == TaskState::Running => {
                info!(
                    dataSource = %self.context.data_source,
                    task = %task.id,
                    "adopting the running task created before this partition's creation failed"
                );
                Ok(Some(task))
            }
            Ok(_) => {
                self.unopened.lock().remove(&slot);
                Ok(None)
            }
            Err(e) => Err(self.creation_error(
                interval,
                format!("could not check task {} created earlier: {e}", task.id),
            )),
        }
    }

    /// The Overlord already has a task of this id: one this process (or another without our
    /// shared metadata, e.g. after a restart with the in-process coordinator) created. A
    /// running one is taken over; any other state keeps the error.
    async fn adopt(&self, id: &str, error: OverlordError) -> Result<String, OverlordError> {
        match self.context.overlord.task_status(id).await {
            Ok(Some(status)) if status.state == TaskState::Running => {
                info!(
                    task = id,
                    "adopting the running task the Overlord already has"
                );
                Ok(id.to_string())
            }
            _ => Err(error),
        }
    }

    fn creation_error(&self, interval: Interval, message: String) -> SendError {
        SendError::TaskCreation {
            data_source: self.context.data_source.clone(),
            interval: interval.to_string(),
            message,
        }
    }
}

#[async_trait]
impl BeamMaker for DruidBeamMaker {
    async fn create(
        &self,
        interval: Interval,
        partition: u32,
    ) -> Result<BeamDescriptor, SendError> {
        let mut tasks = Vec::new();
        for replicant in 0..self.props.task_replicants.max(1) {
            let slot = (interval.start, partition, replicant);
            if let Some(task) = self.still_running(interval, slot).await? {
                tasks.push(task);
                continue;
            }
            let task = realtime_task(&self.spec, &self.props, interval, partition, replicant)
                .map_err(|e| self.creation_error(interval, e.to_string()))?;
            let submitted = match self.context.overlord.submit_task(&task.json).await {
                Err(e) if already_exists(&e) => self.adopt(&task.id, e).await,
                other => other,
            };
            match submitted {
                Ok(id) => {
                    TaskEvent::Created(&id).emit(&self.context.metrics);
                    let mut created = self.created.lock();
                    if created.len() >= CREATED_REMEMBERED {
                        created.clear();
                    }
                    created.insert(id.clone());
                    drop(created);
                    let task = TaskRef {
                        id,
                        firehose_id: task.firehose_id,
                    };
                    let mut unopened = self.unopened.lock();
                    if unopened.len() >= CREATED_REMEMBERED {
                        unopened.clear();
                    }
                    unopened.insert(slot, task.clone());
                    drop(unopened);
                    tasks.push(task);
                }
                Err(e) => {
                    // The replicas already created keep running for the retry to adopt.
                    if !tasks.is_empty() {
                        warn!(
                            dataSource = %self.context.data_source,
                            interval = %interval,
                            partition,
                            created = ?tasks.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
                            error = %e,
                            "partition half-created; its running tasks are kept for the retry"
                        );
                    }
                    return Err(self.creation_error(interval, e.to_string()));
                }
            }
        }
        // Like the original, `timestamp` is written when the interval is exactly one bucket.
        let one_bucket = self
            .spec
            .data_schema
            .granularity_spec
            .segment_granularity
            .bucket(interval.start)
            == interval;
        Ok(BeamDescriptor {
            interval: Some(interval),
            timestamp: one_bucket.then_some(interval.start),
            partition,
            details: RealtimeTasks(tasks).to_details(),
        })
    }

    fn open(&self, descriptor: &BeamDescriptor) -> Result<Arc<dyn Beam>, SendError> {
        let tasks = RealtimeTasks::from_descriptor(descriptor)
            .map_err(|e| SendError::Other(e.to_string()))?;
        // The partition is in the shared metadata now: nothing left to adopt for it.
        if let Some(start) = descriptor.interval.map(|i| i.start) {
            self.unopened
                .lock()
                .retain(|(s, p, _), _| !(*s == start && *p == descriptor.partition));
        }
        let timestamps = self.timestamps.clone().map_err(SendError::Other)?;
        let ours = {
            let mut created = self.created.lock();
            tasks
                .0
                .iter()
                .fold(!tasks.0.is_empty(), |all, t| created.remove(&t.id) && all)
        };
        let shape = ours.then(|| EventShape::created(&timestamps));
        let targets: Vec<TaskTarget> = tasks
            .0
            .into_iter()
            .map(|t| TaskTarget {
                service_name: format!(
                    "firehose:{}:{}",
                    self.context.indexing_service_key, t.firehose_id
                ),
                task_id: t.id,
            })
            .collect();
        Ok(Arc::new(DruidBeam::new(
            targets,
            self.context.clone(),
            timestamps,
            shape,
        )))
    }
}

/// Whether the Overlord refused a submission because the task id exists (Druid's 400, whose
/// wording changed across versions: "already exists" in all of them).
fn already_exists(error: &OverlordError) -> bool {
    matches!(
        error.call_error(),
        CallError::Status { status: 400, body, .. } if body.contains("already exists")
    )
}

/// One partition's replica tasks.
#[derive(Debug)]
pub struct DruidBeam {
    tasks: Vec<TaskTarget>,
    active: Mutex<Vec<bool>>,
    context: Arc<DruidBeamContext>,
    timestamps: Arc<TimestampExtractor>,
    /// How the tasks read events: known, or learnt from the Overlord on the first send (an
    /// answer that the shape cannot be written is kept too, so it is not asked again).
    shape: tokio::sync::OnceCell<Result<EventShape, String>>,
}

impl DruidBeam {
    /// A beam over these replica tasks, for events read with `timestamps`; `shape` is how the
    /// tasks read events, when known (else the Overlord is asked for their spec).
    pub fn new(
        tasks: Vec<TaskTarget>,
        context: Arc<DruidBeamContext>,
        timestamps: Arc<TimestampExtractor>,
        shape: Option<EventShape>,
    ) -> Self {
        for task in &tasks {
            TaskEvent::Attached(&task.task_id).emit(&context.metrics);
        }
        let active = Mutex::new(vec![true; tasks.len()]);
        Self {
            tasks,
            active,
            context,
            timestamps,
            shape: tokio::sync::OnceCell::new_with(shape.map(Ok)),
        }
    }

    /// How the tasks read events; a failure to ask the Overlord is not kept.
    async fn shape(&self) -> Result<&EventShape, SendError> {
        let shape = self.shape.get_or_try_init(|| self.learn_shape()).await?;
        shape.as_ref().map_err(|reason| {
            SendError::Other(format!(
                "cannot write events for tasks {:?}: {reason}",
                self.task_ids()
            ))
        })
    }

    /// Reads the tasks' timestampSpec from the Overlord (replicas share one spec).
    async fn learn_shape(&self) -> Result<Result<EventShape, String>, SendError> {
        for task in &self.tasks {
            match self.context.overlord.task_payload(&task.task_id).await {
                Ok(Some(payload)) => {
                    let shape = EventShape::for_task_json(&payload, &self.timestamps);
                    info!(
                        dataSource = %self.context.data_source,
                        task = %task.task_id,
                        shape = ?shape,
                        "read how the task parses timestamps"
                    );
                    return Ok(shape);
                }
                Ok(None) => continue,
                Err(e) => return Err(SendError::Other(e.to_string())),
            }
        }
        // The Overlord knows none of them (they are gone; pushes will say so): the shape
        // every current instance creates.
        Ok(Ok(EventShape::created(&self.timestamps)))
    }

    fn task_ids(&self) -> Vec<&str> {
        self.tasks.iter().map(|t| t.task_id.as_str()).collect()
    }

    fn encode(&self, shape: &EventShape, chunk: &[Event]) -> Result<PushBody, SendError> {
        shape
            .encode(chunk, self.context.format)
            .map_err(SendError::Other)
    }

    /// Pushes events under pooled producer ids, chunk after chunk.
    async fn send_plain(&self, shape: &EventShape, events: &[Event]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(events.len());
        // Chunks go one after another so each task sees increasing producer sequence numbers.
        for chunk in events.chunks(self.context.chunk_size.max(1)) {
            let outcome = match self.encode(shape, chunk) {
                Ok(body) => self.push_chunk(&body, None).await,
                Err(e) => Outcome::failed(e),
            };
            outcomes.extend(std::iter::repeat_n(outcome, chunk.len()));
        }
        outcomes
    }

    fn give_up(&self, replica: usize, error: &ReceiverError) {
        let was_active = std::mem::replace(&mut self.active.lock()[replica], false);
        if was_active {
            let task = &self.tasks[replica].task_id;
            warn!(
                dataSource = %self.context.data_source,
                task = %task,
                error = %error,
                "loss of Druid redundancy: a replica task is gone"
            );
            TaskEvent::Released(task).emit(&self.context.metrics);
        }
    }

    /// The replicas still taking events, by index.
    fn active(&self) -> Vec<usize> {
        let active = self.active.lock();
        (0..self.tasks.len()).filter(|i| active[*i]).collect()
    }

    /// Pushes a chunk to every active replica: under a pooled producer id, or (`positioned`)
    /// under a source partition's id and a sequence (see [`positioned`]).
    async fn push_chunk(&self, body: &PushBody, positioned: Option<(&Ownership, i64)>) -> Outcome {
        let active = self.active();
        if active.is_empty() {
            return Outcome::Dropped(DropReason::BeamDefunct);
        }
        let check: &dyn TaskCheck = &self.context.overlord;
        let pushes = active.iter().map(|&i| async move {
            let (task, locator) = (&self.tasks[i], self.context.locator.as_ref());
            let receiver = &self.context.receiver;
            let result = match positioned {
                None => receiver.push(task, locator, check, body).await,
                Some((ownership, seq)) => {
                    let result = receiver
                        .push_as(task, locator, check, body, ownership, seq)
                        .await;
                    positioned::note(ownership, &task.task_id, seq, body.events, &result);
                    result
                }
            };
            (i, result)
        });
        let answers = join_all(pushes)
            .await
            .into_iter()
            .map(|(i, result)| match result {
                Ok(_) => Outcome::Sent,
                Err(e) if e.is_task_gone() => {
                    self.give_up(i, &e);
                    Outcome::Dropped(DropReason::BeamDefunct)
                }
                Err(e) => Outcome::failed(SendError::Push {
                    target: self.tasks[i].task_id.clone(),
                    message: e.to_string(),
                }),
            });
        Outcome::merge_replicas(answers.collect::<Vec<_>>())
    }
}

#[async_trait]
impl Beam for DruidBeam {
    async fn send_batch(&self, events: Vec<Event>) -> Vec<Outcome> {
        let shape = match self.shape().await {
            Ok(shape) => shape,
            Err(e) => return vec![Outcome::failed(e); events.len()],
        };
        if events.iter().any(|e| e.origin().is_some()) {
            return self.send_positioned(shape, events).await;
        }
        self.send_plain(shape, &events).await
    }

    async fn close(&self) -> Result<(), CloseError> {
        let mut active = self.active.lock();
        for (task, alive) in self.tasks.iter().zip(active.iter_mut()) {
            if std::mem::replace(alive, false) {
                TaskEvent::Released(&task.task_id).emit(&self.context.metrics);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::{Method, StatusCode};
    use serde_json::{json, Value};

    use super::*;
    use crate::druid::locator::OverlordTaskLocator;
    use crate::druid::overlord::{OverlordConfig, OverlordEndpoint};
    use crate::druid::receiver::ReceiverConfig;
    use crate::druid::testing::{json, Recorded, Scripted};
    use crate::metrics::Metrics;
    use crate::retry::RetryPolicy;
    use crate::spec::properties::Properties;

    fn maker(url: &str, replicants: &str) -> DruidBeamMaker {
        let spec: IngestionSpec = serde_json::from_value(json!({
            "dataSchema": {
                "dataSource": "wiki",
                "parser": {"type": "string", "parseSpec": {"format": "json",
                    "timestampSpec": {"column": "ts", "format": "iso"},
                    "dimensionsSpec": {"dimensions": ["page"]}}},
                "metricsSpec": [{"type": "count", "name": "count"}],
                "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"}
            },
            "tuningConfig": {"type": "realtime"}
        }))
        .expect("spec");
        let mut p = Properties::new();
        p.insert("task.replicants", replicants);
        // Random suffixes: a second submission could not be recognised as the same task.
        p.insert("druidBeam.randomizeTaskId", "true");
        let props = CoreProperties::from_properties(&p).expect("props");
        // One attempt per call, so a refusal fails the creation at once.
        let overlord = OverlordClient::new(
            OverlordEndpoint::Url(url.to_string()),
            OverlordConfig {
                retry: RetryPolicy {
                    max_attempts: Some(1),
                    ..RetryPolicy::overlord()
                },
                ..OverlordConfig::default()
            },
        );
        let context = Arc::new(DruidBeamContext {
            data_source: "wiki".into(),
            receiver: ReceiverClient::new(ReceiverConfig::default()),
            locator: Arc::new(OverlordTaskLocator::new(
                overlord.clone(),
                Duration::from_secs(60),
            )),
            overlord,
            chunk_size: 100,
            format: SerializationFormat::Json,
            indexing_service_key: "druid:overlord".into(),
            metrics: Metrics::new().data_source("wiki"),
        });
        DruidBeamMaker::new(spec, props, context)
    }

    /// An Overlord that refuses the second submission, and reports every task it took as
    /// running.
    async fn overlord_refusing_the_second_submit() -> Scripted {
        let submits = Arc::new(parking_lot::Mutex::new(0usize));
        Scripted::start(move |_, req: &Recorded| {
            let path = req.path.trim_start_matches("/druid/indexer/v1");
            if req.method == Method::POST && path == "/task" {
                let n = {
                    let mut submits = submits.lock();
                    *submits += 1;
                    *submits
                };
                if n == 2 {
                    return json(StatusCode::BAD_REQUEST, r#"{"error":"refused, once"}"#);
                }
                let task: Value = serde_json::from_slice(&req.body).expect("task json");
                return json(StatusCode::OK, &json!({"task": task["id"]}).to_string());
            }
            if let Some(id) = path
                .strip_prefix("/task/")
                .and_then(|p| p.strip_suffix("/status"))
            {
                let body = json!({"task": id, "status": {"id": id, "status": "RUNNING"}});
                return json(StatusCode::OK, &body.to_string());
            }
            json(StatusCode::NOT_FOUND, "{}")
        })
        .await
    }

    fn posts(server: &Scripted, suffix: &str) -> usize {
        server
            .requests
            .lock()
            .iter()
            .filter(|r| r.method == Method::POST && r.path.ends_with(suffix))
            .count()
    }

    #[tokio::test]
    async fn the_retry_of_a_half_created_partition_adopts_the_running_replica() {
        let server = overlord_refusing_the_second_submit().await;
        let maker = maker(&server.url, "2");
        let interval: Interval = "2024-01-01T10:00:00Z/2024-01-01T11:00:00Z"
            .parse()
            .expect("interval");
        let err = maker.create(interval, 0).await.expect_err("half-created");
        assert!(err.to_string().contains("refused, once"), "{err}");
        let first: Value = serde_json::from_slice(&server.get(0).body).expect("json");
        let first_id = first["id"].as_str().expect("id").to_string();

        let descriptor = maker.create(interval, 0).await.expect("retried");
        let tasks = RealtimeTasks::from_descriptor(&descriptor)
            .expect("tasks")
            .0;
        assert_eq!(tasks.len(), 2);
        assert_eq!(
            tasks[0].id, first_id,
            "replica 0 adopted, not submitted again"
        );
        assert_ne!(tasks[1].id, first_id);
        assert_eq!(posts(&server, "/task"), 3);
        assert_eq!(posts(&server, "/shutdown"), 0, "nothing shut down");
    }

    #[tokio::test]
    async fn a_partition_created_whole_is_reused_until_a_beam_opens_it() {
        let server = Scripted::start(|_, req: &Recorded| {
            if req.method == Method::POST {
                let task: Value = serde_json::from_slice(&req.body).expect("task json");
                return json(StatusCode::OK, &json!({"task": task["id"]}).to_string());
            }
            let status = if req.path.contains("_gone") {
                "FAILED"
            } else {
                "RUNNING"
            };
            json(
                StatusCode::OK,
                &json!({"status": {"id": "x", "status": status}}).to_string(),
            )
        })
        .await;
        let maker = maker(&server.url, "1");
        let interval: Interval = "2024-01-01T10:00:00Z/2024-01-01T11:00:00Z"
            .parse()
            .expect("interval");
        // Partition 0 made, then (say) partition 1 failed: the bucket's retry asks again.
        let a = maker.create(interval, 0).await.expect("created");
        let b = maker.create(interval, 0).await.expect("asked again");
        assert_eq!(a.details, b.details, "the same running task");
        assert_eq!(posts(&server, "/task"), 1);
        // Once a beam opened it (it is in the shared metadata), a new creation is new.
        maker.open(&a).expect("opens");
        let c = maker.create(interval, 0).await.expect("created");
        assert_ne!(a.details, c.details);
        assert_eq!(posts(&server, "/task"), 2);
    }
}
