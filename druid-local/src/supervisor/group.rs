//! One task group's cycle, as Druid runs it: `replicas` reading tasks consume the group's
//! partitions from the same start offsets (each its own Kafka consumer, partitions
//! `assign()`ed), index rows into live segments that queries see at once, and at the end of
//! `taskDuration` (or on an early handoff or a graceful stop) agree on end offsets (the
//! furthest any replica read), read up to them, and one publish commits one replica's
//! segments together with the offsets.

use super::consumer;
use super::spec::{Format, KafkaSpec};
use crate::ingest::{concatenated_json, Event, RowStats, Rows};
use crate::locks;
use crate::metadata::{OffsetCommit, StreamOffsets};
use crate::storage::Segment;
use crate::task::rollup::Index;
use crate::task::{StatusCode, Task};
use crate::time::{self, Granularity, Interval, Millis};
use crate::Shared;
use futures::FutureExt;
use parking_lot::{Mutex, RwLock};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::BorrowedMessage;
use rdkafka::Message;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What the supervisor asks of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupCmd {
    /// Keep reading until the task duration ends.
    Read,
    /// Stop reading now and publish (early handoff, graceful stop).
    Publish,
    /// Stop without publishing (reset, druid-local stopping); the tasks fail.
    Abort,
}

/// How a group's cycle ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Segments and end offsets committed.
    Published,
    /// Nothing committed; why.
    Failed(String),
}

/// What a replica's reader is told.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ReplicaCmd {
    Read,
    /// Stop consuming and report the offsets reached (Druid pauses tasks before it sets their
    /// end offsets, so nothing read past the end ends up in the published segments).
    Pause,
    ReadTo(BTreeMap<i32, i64>),
    Abort,
}

/// A reading task of a group.
#[derive(Debug)]
pub struct Replica {
    /// The task in the task API.
    pub task: Arc<Task>,
    /// Its row counters.
    pub stats: RowStats,
    /// Next offset to read, per partition.
    pub current: Mutex<BTreeMap<i32, i64>>,
    started: Millis,
    paused: std::sync::atomic::AtomicBool,
}

impl Replica {
    /// Seconds the task has run (for moving averages).
    pub fn elapsed_secs(&self) -> f64 {
        ((time::now_millis() - self.started) as f64 / 1000.0).max(0.001)
    }
}

/// A running group.
#[derive(Debug)]
pub struct Group {
    /// Task group id (`partition % taskCount`).
    pub id: u32,
    /// Druid's `baseSequenceName`.
    pub base: String,
    /// Where the group started.
    pub start: StreamOffsets,
    /// When it started.
    pub started: Millis,
    /// Its tasks.
    pub replicas: Vec<Arc<Replica>>,
    /// Whether it is publishing (Druid lists such tasks under `publishingTasks`).
    pub publishing: std::sync::atomic::AtomicBool,
    cmd: watch::Sender<GroupCmd>,
    outcome: Mutex<Option<Outcome>>,
    done: watch::Sender<bool>,
}

impl Group {
    /// Asks the group to publish now or to abort.
    pub fn command(&self, c: GroupCmd) {
        self.cmd.send_if_modified(|cur| {
            // An abort is final; a publish does not undo it.
            if *cur == GroupCmd::Abort || *cur == c {
                false
            } else {
                *cur = c;
                true
            }
        });
    }

    /// How the cycle ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome.lock().clone()
    }

    /// Waits until the cycle has ended.
    pub async fn finished(&self) {
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }
}

/// Everything a group needs from its supervisor.
#[derive(Debug, Clone)]
pub struct Context {
    /// druid-local's shared state.
    pub shared: Arc<Shared>,
    /// The spec the supervisor runs.
    pub spec: Arc<KafkaSpec>,
    /// The row pipeline of the spec.
    pub rows: Arc<Rows>,
}

/// Starts a group cycle: registers its tasks and spawns their readers.
pub fn start(ctx: &Context, id: u32, start: StreamOffsets) -> Arc<Group> {
    let spec = &ctx.spec;
    let now = time::now_millis();
    let base = super::task::base_sequence_name(spec, id, &start);
    let mut replicas = Vec::new();
    for _ in 0..spec.io.replicas.max(1) {
        let task_id = format!("{base}_{}", super::task::random_suffix());
        let payload = super::task::payload(spec, &task_id, &base, id, &start, None);
        let task = Task::new(
            super::task::task_spec(&task_id, &spec.data_schema.data_source, payload),
            now,
        );
        task.state.lock().location = Some((ctx.shared.host.clone(), ctx.shared.port));
        ctx.shared
            .tasks
            .write()
            .insert(task_id.clone(), task.clone());
        ctx.shared.save_task(&task);
        replicas.push(Arc::new(Replica {
            task,
            stats: RowStats::default(),
            current: Mutex::new(start.partitions.clone()),
            started: now,
            paused: false.into(),
        }));
    }
    let group = Arc::new(Group {
        id,
        base,
        start,
        started: now,
        replicas,
        publishing: false.into(),
        cmd: watch::channel(GroupCmd::Read).0,
        outcome: Mutex::new(None),
        done: watch::channel(false).0,
    });
    tokio::spawn(run(ctx.clone(), group.clone()));
    group
}

/// The rejection window fixed at group creation (Druid's min/max message time).
fn window(spec: &KafkaSpec, started: Millis) -> (Millis, Millis) {
    let io = &spec.io;
    let min = match (io.late_rejection_start, io.late_rejection) {
        (Some(t), _) => t,
        (None, Some(p)) => started - p,
        (None, None) => Millis::MIN,
    };
    let max = match io.early_rejection {
        Some(p) => started + io.task_duration + p,
        None => Millis::MAX,
    };
    (min, max)
}

async fn run(ctx: Context, group: Arc<Group>) {
    let spec = ctx.spec.clone();
    let mut cmd = group.cmd.subscribe();
    let alloc: Arc<Mutex<HashMap<Interval, (String, u32)>>> = Arc::default();
    let (min_time, max_time) = window(&spec, group.started);
    let mut readers = Vec::new();
    let mut replica_cmds = Vec::new();
    for r in &group.replicas {
        let (tx, rx) = watch::channel(ReplicaCmd::Read);
        replica_cmds.push(tx);
        let reader = Reader {
            ctx: ctx.clone(),
            replica: r.clone(),
            alloc: alloc.clone(),
            sinks: HashMap::new(),
            min_time,
            max_time,
        };
        readers.push(tokio::spawn(reader.run(group.start.clone(), rx)));
    }
    let deadline = tokio::time::Instant::now()
        + Duration::from_millis(u64::try_from(spec.io.task_duration.max(0)).unwrap_or(0));
    let mut finished_early = false;
    let decision = loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break GroupCmd::Publish,
            changed = cmd.changed() => {
                let c = *cmd.borrow();
                if changed.is_err() || c != GroupCmd::Read {
                    break if changed.is_err() { GroupCmd::Abort } else { c };
                }
            }
            _ = async {
                for r in &readers {
                    while !r.is_finished() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            } => {
                finished_early = true;
                break GroupCmd::Publish;
            }
        }
    };
    let outcome = if decision == GroupCmd::Abort {
        for tx in &replica_cmds {
            let _ = tx.send(ReplicaCmd::Abort);
        }
        for r in readers {
            let _ = r.await;
        }
        for r in &group.replicas {
            ctx.shared.store.drop_live(&r.task.spec.id);
            end_task(
                &ctx,
                &r.task,
                StatusCode::Failed,
                Some("Task was stopped by its supervisor before publishing (reset or stop)".into()),
            );
        }
        Outcome::Failed("aborted".into())
    } else {
        group.publishing.store(true, Ordering::Relaxed);
        for tx in &replica_cmds {
            let _ = tx.send(ReplicaCmd::Pause);
        }
        while !group
            .replicas
            .iter()
            .zip(&readers)
            .all(|(r, h)| r.paused.load(Ordering::Acquire) || h.is_finished())
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The furthest any replica read becomes everyone's end.
        let mut end = group.start.partitions.clone();
        for r in &group.replicas {
            for (p, o) in r.current.lock().iter() {
                let e = end.entry(*p).or_insert(*o);
                *e = (*e).max(*o);
            }
        }
        if !finished_early {
            for tx in &replica_cmds {
                let _ = tx.send(ReplicaCmd::ReadTo(end.clone()));
            }
        }
        // A replica that cannot reach the end (the broker went away) is stopped after a
        // while (the task duration, between a second and a minute); the others can still
        // publish, and what nobody published is read again by the next group.
        let catch_up = Duration::from_millis(
            u64::try_from(spec.io.task_duration.clamp(1_000, 60_000)).unwrap_or(60_000),
        );
        let deadline = tokio::time::Instant::now() + catch_up;
        let mut results = Vec::new();
        for (mut r, tx) in readers.into_iter().zip(&replica_cmds) {
            let res = match tokio::time::timeout_at(deadline, &mut r).await {
                Ok(res) => res,
                Err(_) => {
                    let _ = tx.send(ReplicaCmd::Abort);
                    r.await
                }
            };
            results.push(match res {
                Ok(res) => res,
                Err(e) => Err(format!("reading task crashed: {e}")),
            });
        }
        publish(&ctx, &group, end, results)
    };
    *group.outcome.lock() = Some(outcome);
    group.done.send_replace(true);
}

fn end_task(ctx: &Context, task: &Task, status: StatusCode, error: Option<String>) {
    ctx.shared.locks.release(&task.spec.id);
    task.finish(status, error);
    ctx.shared.save_task(task);
}

/// Commits the first replica that read to the end; the others' copies are dropped.
fn publish(
    ctx: &Context,
    group: &Group,
    end: BTreeMap<i32, i64>,
    results: Vec<Result<HashMap<Interval, Arc<Segment>>, String>>,
) -> Outcome {
    let spec = &ctx.spec;
    let winner = results.iter().position(Result::is_ok);
    let outcome = match winner {
        None => {
            let why = results
                .iter()
                .find_map(|r| r.as_ref().err().cloned())
                .unwrap_or_else(|| "no reading task".into());
            Outcome::Failed(why)
        }
        Some(i) => {
            let segs: Vec<Arc<Segment>> = results[i]
                .as_ref()
                .map(|m| {
                    m.values()
                        .filter(|s| !s.index.read().is_empty())
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let commit = OffsetCommit {
                key: spec.offsets_key().to_owned(),
                start: group.start.clone(),
                end: StreamOffsets {
                    stream: spec.io.stream.clone(),
                    partitions: end.clone(),
                },
            };
            match ctx.shared.metadata.publish(&segs, &[], Some(commit)) {
                Ok(()) => {
                    let task_id = &group.replicas[i].task.spec.id;
                    ctx.shared.store.publish(Some(task_id), &segs, &[]);
                    tracing::info!(task = %task_id, segments = segs.len(), ?end, "kafka task group published");
                    Outcome::Published
                }
                Err(e) => Outcome::Failed(e.to_string()),
            }
        }
    };
    for (r, res) in group.replicas.iter().zip(&results) {
        ctx.shared.store.drop_live(&r.task.spec.id);
        match (&outcome, res) {
            (Outcome::Published, Ok(_)) => end_task(ctx, &r.task, StatusCode::Success, None),
            (_, Err(e)) => end_task(ctx, &r.task, StatusCode::Failed, Some(e.clone())),
            (Outcome::Failed(e), Ok(_)) => {
                end_task(ctx, &r.task, StatusCode::Failed, Some(e.clone()))
            }
        }
    }
    outcome
}

/// One replica's reading loop.
struct Reader {
    ctx: Context,
    replica: Arc<Replica>,
    alloc: Arc<Mutex<HashMap<Interval, (String, u32)>>>,
    sinks: HashMap<Interval, Arc<Segment>>,
    min_time: Millis,
    max_time: Millis,
}

/// Messages taken per wake-up of a reader when they are already fetched.
const DRAIN: usize = 1000;

/// Druid 32-33's task failure for a sub-minute `taskDuration` (see `DruidVersion`).
const SUB_MINUTE_FAILURE: &str = "Failed with exception [null]. See indexer logs for details.";

impl Reader {
    async fn run(
        mut self,
        start: StreamOffsets,
        mut cmd: watch::Receiver<ReplicaCmd>,
    ) -> Result<HashMap<Interval, Arc<Segment>>, String> {
        let spec = self.ctx.spec.clone();
        if self.ctx.shared.version.fails_sub_minute_kafka_tasks() && spec.io.task_duration < 60_000
        {
            return Err(SUB_MINUTE_FAILURE.into());
        }
        if let Some(why) = &spec.data_schema.unusable {
            return Err(why.clone());
        }
        match &spec.io.format {
            Some(Format::Json) => {}
            Some(Format::Unusable(why)) => return Err(why.clone()),
            None => return Err("no input format".into()),
        }
        let (config, _) = consumer::client_config(&spec.io.consumer_properties);
        let consumer: StreamConsumer = config
            .create()
            .map_err(|e| format!("cannot create the Kafka consumer: {e}"))?;
        let tpl = consumer::assignment(&spec.io.stream, &start.partitions)?;
        consumer
            .assign(&tpl)
            .map_err(|e| format!("cannot assign partitions: {e}"))?;
        let mut kill = self.replica.task.kill_signal();
        let mut end: Option<BTreeMap<i32, i64>> = None;
        let mut paused = false;
        let mut position_tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            if let Some(e) = &end {
                let cur = self.replica.current.lock();
                if e.iter().all(|(p, o)| cur.get(p).is_some_and(|c| c >= o)) {
                    break;
                }
            }
            tokio::select! {
                biased;
                _ = async { let _ = kill.wait_for(|k| *k).await; } => {
                    return Err("Shutdown request from user".into());
                }
                changed = cmd.changed() => {
                    if changed.is_err() {
                        return Err("supervisor gone".into());
                    }
                    let c = cmd.borrow().clone();
                    match c {
                        ReplicaCmd::Abort => return Err("aborted".into()),
                        ReplicaCmd::Pause => {
                            paused = true;
                            self.replica.paused.store(true, Ordering::Release);
                        }
                        ReplicaCmd::ReadTo(e) => {
                            paused = false;
                            end = Some(e);
                        }
                        ReplicaCmd::Read => {}
                    }
                }
                _ = position_tick.tick(), if !paused => {
                    // Control records (transactions) move the position without a message.
                    if let Ok(pos) = consumer.position() {
                        let mut cur = self.replica.current.lock();
                        for el in pos.elements() {
                            if let rdkafka::Offset::Offset(o) = el.offset() {
                                let c = cur.entry(el.partition()).or_insert(o);
                                *c = (*c).max(o);
                            }
                        }
                    }
                }
                msg = consumer.recv(), if !paused => match msg {
                    Ok(m) => {
                        self.message(&m, end.as_ref())?;
                        // Take what is already fetched without going round the select.
                        for _ in 0..DRAIN {
                            match consumer.recv().now_or_never() {
                                Some(Ok(m)) => self.message(&m, end.as_ref())?,
                                _ => break,
                            }
                        }
                    }
                    Err(KafkaError::MessageConsumption(RDKafkaErrorCode::OffsetOutOfRange)) => {
                        return Err(format!(
                            "Offsets out of range for topic [{}]: the stored offsets are no longer available in Kafka (retention?); reset the supervisor, or set resetOffsetAutomatically",
                            spec.io.stream
                        ));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, task = %self.replica.task.spec.id, "kafka consume error");
                        tokio::time::sleep(Duration::from_millis(spec.io.poll_timeout)).await;
                    }
                }
            }
        }
        Ok(std::mem::take(&mut self.sinks))
    }

    /// Indexes one message, unless it lies at or past the agreed end of its partition.
    fn message(
        &mut self,
        m: &BorrowedMessage<'_>,
        end: Option<&BTreeMap<i32, i64>>,
    ) -> Result<(), String> {
        let (p, o) = (m.partition(), m.offset());
        if end.and_then(|e| e.get(&p)).is_some_and(|e| o >= *e) {
            return Ok(());
        }
        if let Some(bytes) = m.payload() {
            self.record(bytes)?;
        }
        let mut cur = self.replica.current.lock();
        let c = cur.entry(p).or_insert(o + 1);
        *c = (*c).max(o + 1);
        Ok(())
    }

    /// Parses one record and indexes its rows.
    fn record(&mut self, bytes: &[u8]) -> Result<(), String> {
        let spec = self.ctx.spec.clone();
        let replica = self.replica.clone();
        let stats = &replica.stats;
        RowStats::bump(&stats.processed_bytes, bytes.len() as u64);
        let values = match concatenated_json(bytes) {
            Ok(v) => v,
            Err(_) => {
                RowStats::bump(&stats.unparseable, 1);
                return self.check_parse_exceptions();
            }
        };
        for v in values {
            match self.ctx.rows.event(v) {
                Err(_) => {
                    RowStats::bump(&stats.unparseable, 1);
                    self.check_parse_exceptions()?;
                }
                Ok(Event::Filtered) => RowStats::bump(&stats.thrown_away, 1),
                Ok(Event::Row(row, with_error)) => {
                    if row.ts < self.min_time || row.ts > self.max_time {
                        RowStats::bump(&stats.thrown_away, 1);
                        continue;
                    }
                    let ds = &spec.data_schema;
                    let iv = ds.segment_granularity.bucket(row.ts);
                    let seg = self.sink(iv)?;
                    let truncated = match ds.query_granularity {
                        Granularity::All => iv.start,
                        ref g => g.bucket_start(row.ts),
                    };
                    seg.index
                        .write()
                        .add(truncated, row.ts, row.dims, &row.metrics);
                    RowStats::bump(&stats.processed, 1);
                    if with_error {
                        RowStats::bump(&stats.processed_with_error, 1);
                        self.check_parse_exceptions()?;
                    }
                }
            }
        }
        Ok(())
    }

    fn check_parse_exceptions(&self) -> Result<(), String> {
        let s = &self.replica.stats;
        let n =
            s.unparseable.load(Ordering::Relaxed) + s.processed_with_error.load(Ordering::Relaxed);
        if n > self.ctx.spec.max_parse_exceptions {
            return Err(format!(
                "org.apache.druid.java.util.common.RE: Max parse exceptions[{}] exceeded",
                self.ctx.spec.max_parse_exceptions
            ));
        }
        Ok(())
    }

    /// The replica's segment of a chunk: its lock taken (replicas share the group's lock)
    /// and its identity allocated once per group (replicas share segment ids).
    fn sink(&mut self, iv: Interval) -> Result<Arc<Segment>, String> {
        if let Some(s) = self.sinks.get(&iv) {
            return Ok(s.clone());
        }
        let spec = self.ctx.spec.clone();
        let ds = &spec.data_schema;
        let group = format!("index_kafka_{}", ds.data_source);
        let request = locks::Request {
            task: &self.replica.task.spec.id,
            group: &group,
            data_source: &ds.data_source,
            interval: iv,
            kind: if spec.concurrent_locks() {
                locks::LockType::Append
            } else {
                locks::LockType::Exclusive
            },
            priority: locks::KAFKA_PRIORITY,
        };
        let refused = || {
            format!("org.apache.druid.java.util.common.ISE: Could not allocate segment for row with timestamp in [{iv}]: the time chunk is locked by another task")
        };
        let mut alloc = self.alloc.lock();
        let (version, partition) = match alloc.get(&iv) {
            Some(a) => {
                self.ctx
                    .shared
                    .locks
                    .try_lock(&request)
                    .ok_or_else(refused)?;
                a.clone()
            }
            None => {
                let a = locks::allocate(&self.ctx.shared, &request).ok_or_else(refused)?;
                alloc.insert(iv, a.clone());
                a
            }
        };
        drop(alloc);
        let seg = Arc::new(Segment {
            data_source: ds.data_source.clone(),
            interval: iv,
            version,
            partition,
            index: RwLock::new(Index::new(&ds.dimension_names(), &ds.metrics, ds.rollup)),
        });
        self.ctx
            .shared
            .store
            .add_live(&self.replica.task.spec.id, seg.clone());
        self.sinks.insert(iv, seg.clone());
        Ok(seg)
    }
}
