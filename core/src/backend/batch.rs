//! The batch backend (Druid 31+ without Kafka): micro-batches per segment interval, each
//! submitted as an `index_parallel` task with an `inline` input source that appends.
//!
//! ```text
//! send_batch ─> window rule (Dropped(OutsideWindow), as on every backend)
//!            ─> per segment interval an open micro-batch: rows gather for `periodMillis`,
//!               or until they reach `maxBytes` ─> sealed ─> POST /task (deterministic id)
//!            ─> poll GET /task/{id}/status ─> SUCCESS: GET /task/{id}/reports (rowStats)
//!                                           FAILED: a new attempt (new id), then Failed
//! ```
//!
//! **Task ids.** `tranquility_batch_<dataSource>_<interval start>_<instance>_<n>[_<attempt>]`:
//! `instance` is random per beam, `n` counts this beam's batches. A submit that is retried
//! after a lost answer reuses the id, so Druid refuses the copy (`entryAlreadyExists`), which
//! here means "already submitted": the task is polled as if the first answer had arrived.
//!
//! **Locks.** Appends take concurrent locks (`useConcurrentLocks`, Druid 29+; `useSharedLock`
//! before), so batches of several instances into one interval run side by side, and the
//! explicit `intervals` make any residual conflict wait rather than fail.
//!
//! **Outcomes.** Every event of a batch shares its task's fate: `Sent` when the task succeeded,
//! `Failed` when it was refused, or failed on every attempt. A report gives only counts of the
//! rows Druid did not keep (`thrownAway`: a `transformSpec` filter or a row outside the task's
//! interval, `unparseable`), not which rows. Events outside the window were already dropped
//! here and every row lies in its task's interval, so those counts are normally 0; when they
//! are not, the counts are exact and carried by the batch's last events (`Dropped(ThrownAway)`
//! and `Dropped(Unparseable)`), and a warning names the task whose report lists the rows.
//! Events whose timestamp Tranquility cannot read never reach a batch (the pipeline drops
//! them as unparseable first).
//!
//! **Memory.** Events wait in their batch until the task ends, and each waits as a pending
//! event of the pipeline's Tranquilizer, whose `maxPendingBatches` x `maxBatchSize` bounds
//! them (senders wait when it is full). Throughput is about that bound divided by
//! `periodMillis` plus the task's run time.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use reqwest::Method;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::translate::{batch_task, BatchLocks, BatchMode};
use crate::beam::{Beam, CloseError, DropReason, Outcome, SendError};
use crate::druid::overlord::{encode_segment, CallError, OverlordClient, TaskState};
use crate::event::Event;
use crate::metrics::events::TaskEvent;
use crate::metrics::DataSourceMetrics;
use crate::spec::{DataSchema, TuningConfig};
use crate::time::window::WindowRule;
use crate::time::Clock;
use crate::time::{format_iso_millis, Interval};

/// Settings of a [`BatchBeam`].
#[derive(Debug, Clone)]
pub struct BatchConfig {
    /// The dataSource.
    pub data_source: String,
    /// Its dataSchema (translated into each task).
    pub schema: DataSchema,
    /// Its tuningConfig (translated into each task).
    pub tuning: TuningConfig,
    /// The window rule (segment granularity and windowPeriod).
    pub rule: WindowRule,
    /// How long a batch gathers before it is submitted (`druid.ingestion.batch.periodMillis`).
    pub period: Duration,
    /// A batch is submitted once its rows reach this many bytes
    /// (`druid.ingestion.batch.maxBytes`); a larger event fails.
    pub max_bytes: usize,
    /// Lock settings for the Druid version.
    pub locks: BatchLocks,
    /// How often a running task's status is read.
    pub poll_period: Duration,
    /// Submissions of one batch before its events fail (a failed task is submitted again).
    pub max_attempts: u32,
    /// How long a task may run before it is shut down and its events fail.
    pub task_timeout: Duration,
}

impl BatchConfig {
    /// Settings with the defaults for polling (1 s), attempts (3) and the task timeout (1 h).
    pub fn new(
        data_source: &str,
        schema: DataSchema,
        tuning: TuningConfig,
        rule: WindowRule,
        period: Duration,
        max_bytes: usize,
        locks: BatchLocks,
    ) -> Self {
        Self {
            data_source: data_source.to_string(),
            schema,
            tuning,
            rule,
            period,
            max_bytes,
            locks,
            poll_period: Duration::from_secs(1),
            max_attempts: 3,
            task_timeout: Duration::from_secs(3600),
        }
    }
}

/// Druid's count of what happened to a task's rows (`rowStats.buildSegments`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowStats {
    /// Rows ingested.
    pub processed: u64,
    /// Rows ingested with a bad field.
    pub processed_with_error: u64,
    /// Rows filtered out or outside the task's interval.
    pub thrown_away: u64,
    /// Rows Druid could not parse.
    pub unparseable: u64,
}

impl RowStats {
    /// Reads `ingestionStatsAndErrors.payload.rowStats` of a task report (sequential tasks
    /// report `buildSegments` directly, parallel ones under `totals`).
    pub fn from_report(report: &Value) -> Option<Self> {
        let stats = report.pointer("/ingestionStatsAndErrors/payload/rowStats")?;
        let build = stats
            .get("buildSegments")
            .or_else(|| stats.pointer("/totals/buildSegments"))?;
        let n = |k: &str| build.get(k).and_then(Value::as_u64).unwrap_or(0);
        Some(Self {
            processed: n("processed"),
            processed_with_error: n("processedWithError"),
            thrown_away: n("thrownAway"),
            unparseable: n("unparseable"),
        })
    }

    /// One outcome per row of a batch of `rows`: see the module docs for who carries drops.
    pub fn outcomes(&self, rows: usize) -> Vec<Outcome> {
        let thrown = usize::try_from(self.thrown_away)
            .unwrap_or(usize::MAX)
            .min(rows);
        let bad = usize::try_from(self.unparseable)
            .unwrap_or(usize::MAX)
            .min(rows - thrown);
        let sent = rows - thrown - bad;
        let mut out = Vec::with_capacity(rows);
        out.resize(sent, Outcome::Sent);
        out.resize(sent + bad, Outcome::Dropped(DropReason::Unparseable));
        out.resize(rows, Outcome::Dropped(DropReason::ThrownAway));
        out
    }
}

/// Events of one segment interval on the batch backend; see the module docs.
#[derive(Debug, Clone)]
pub struct BatchBeam {
    inner: Arc<Inner>,
}

struct Inner {
    config: BatchConfig,
    overlord: OverlordClient,
    clock: Arc<dyn Clock>,
    metrics: DataSourceMetrics,
    /// Random per beam, so batches of several instances never share an id.
    instance: String,
    state: Mutex<State>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchBeam")
            .field("data_source", &self.config.data_source)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    /// Interval start -> the batch gathering its rows.
    open: HashMap<i64, Open>,
    next_number: u64,
    /// Batches on their way to Druid; `close` waits for them.
    running: Vec<JoinHandle<()>>,
    /// Period timers of open batches; `close` seals those batches and stops the timers.
    timers: Vec<JoinHandle<()>>,
    closed: bool,
}

/// A batch still gathering rows.
struct Open {
    number: u64,
    interval: Interval,
    rows: Vec<u8>,
    count: usize,
    result: watch::Sender<Option<Arc<Vec<Outcome>>>>,
}

/// A sealed batch on its way to Druid.
struct Sealed {
    number: u64,
    interval: Interval,
    rows: Vec<u8>,
    count: usize,
    result: watch::Sender<Option<Arc<Vec<Outcome>>>>,
}

impl From<Open> for Sealed {
    fn from(o: Open) -> Self {
        Sealed {
            number: o.number,
            interval: o.interval,
            rows: o.rows,
            count: o.count,
            result: o.result,
        }
    }
}

/// How a task ended.
enum TaskEnd {
    Success,
    Failed(String),
    TimedOut,
}

impl BatchBeam {
    /// A beam submitting batch tasks through `overlord`.
    pub fn new(
        config: BatchConfig,
        overlord: OverlordClient,
        clock: Arc<dyn Clock>,
        metrics: DataSourceMetrics,
    ) -> Self {
        let instance = format!("{:08x}", rand::random::<u32>());
        Self {
            inner: Arc::new(Inner {
                config,
                overlord,
                clock,
                metrics,
                instance,
                state: Mutex::new(State::default()),
            }),
        }
    }
}

/// The event's JSON as one line: a line break can only be whitespace between JSON tokens
/// (inside strings it is escaped), so it becomes a space; Druid splits inline JSON by lines.
fn one_line(raw: &Bytes) -> std::borrow::Cow<'_, [u8]> {
    if memchr::memchr2(b'\n', b'\r', raw).is_none() {
        return std::borrow::Cow::Borrowed(raw);
    }
    let line = raw
        .iter()
        .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
        .collect();
    std::borrow::Cow::Owned(line)
}

impl Inner {
    fn fail(&self, message: String, retriable: bool) -> Outcome {
        let data_source = &self.config.data_source;
        Outcome::failed(SendError::backend(data_source, message, retriable))
    }

    fn task_id(&self, batch: &Sealed, attempt: u32) -> String {
        let ds: String = self
            .config
            .data_source
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_-.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut id = format!(
            "tranquility_batch_{ds}_{}_{}_{}",
            format_iso_millis(batch.interval.start),
            self.instance,
            batch.number
        );
        if attempt > 1 {
            id.push_str(&format!("_{attempt}"));
        }
        id
    }

    /// Starts sending a sealed batch in the background.
    fn submit(self: &Arc<Self>, state: &mut State, batch: Sealed) {
        let inner = self.clone();
        state.running.retain(|h| !h.is_finished());
        state.running.push(tokio::spawn(async move {
            let outcomes = inner.run(&batch).await;
            batch.result.send_replace(Some(Arc::new(outcomes)));
        }));
    }

    /// Seals batch `number` of interval `start` when its period is over, unless it went already.
    fn start_timer(self: &Arc<Self>, state: &mut State, start: i64, number: u64) {
        let inner = self.clone();
        let period = self.config.period;
        state.timers.retain(|h| !h.is_finished());
        state.timers.push(tokio::spawn(async move {
            tokio::time::sleep(period).await;
            let mut state = inner.state.lock();
            if state.open.get(&start).is_some_and(|o| o.number == number) {
                if let Some(open) = state.open.remove(&start) {
                    inner.submit(&mut state, open.into());
                }
            }
        }));
    }

    /// Submits a batch (again after a failed task), waits for its task and reads its report.
    async fn run(&self, batch: &Sealed) -> Vec<Outcome> {
        let rows = String::from_utf8_lossy(&batch.rows);
        let mut last_failure = String::new();
        for attempt in 1..=self.config.max_attempts.max(1) {
            let id = self.task_id(batch, attempt);
            let task = match batch_task(
                &self.config.schema,
                &self.config.tuning,
                &id,
                batch.interval,
                &rows,
                BatchMode::Append,
                self.config.locks,
            ) {
                Ok(task) => task,
                Err(e) => return vec![self.fail(e.to_string(), false); batch.count],
            };
            if let Err(outcome) = self.submit_task(&id, &task, batch).await {
                return vec![outcome; batch.count];
            }
            TaskEvent::Attached(&id).emit(&self.metrics);
            let end = self.wait(&id).await;
            TaskEvent::Released(&id).emit(&self.metrics);
            match end {
                TaskEnd::Success => return self.outcomes_of(&id, batch).await,
                TaskEnd::Failed(reason) => {
                    warn!(
                        dataSource = %self.config.data_source,
                        task = %id,
                        attempt,
                        rows = batch.count,
                        "batch task failed: {reason}"
                    );
                    last_failure = format!("batch task {id} failed: {reason}");
                }
                TaskEnd::TimedOut => {
                    if let Err(e) = self.overlord.shutdown_task(&id).await {
                        warn!(task = %id, error = %e, "could not shut down a batch task that ran too long");
                    }
                    return vec![
                        self.fail(
                            format!(
                                "batch task {id} did not finish within {:?}; it was shut down",
                                self.config.task_timeout
                            ),
                            true,
                        );
                        batch.count
                    ];
                }
            }
        }
        vec![
            self.fail(
                format!(
                    "{last_failure} (after {} attempts)",
                    self.config.max_attempts.max(1)
                ),
                true,
            );
            batch.count
        ]
    }

    /// `POST /task`. A refusal fails the batch with Druid's reason; `entryAlreadyExists`
    /// means an earlier try of this very submit got through.
    async fn submit_task(&self, id: &str, task: &Value, batch: &Sealed) -> Result<(), Outcome> {
        let body = Bytes::from(serde_json::to_vec(task).unwrap_or_default());
        let bytes = body.len();
        match self
            .overlord
            .call_api(Method::POST, "/druid/indexer/v1/task", Some(body))
            .await
        {
            Ok(answer) if answer.is_not_found() => Err(self.fail(
                format!(
                    "the Overlord has no task API (404 on POST /druid/indexer/v1/task for {id})"
                ),
                false,
            )),
            Ok(_) => {
                TaskEvent::Created(id).emit(&self.metrics);
                debug!(task = %id, interval = %batch.interval, rows = batch.count, bytes, "batch task submitted");
                Ok(())
            }
            Err(e) => match &e.source {
                CallError::Status {
                    status: 400, body, ..
                } if body.contains("entryAlreadyExists") || body.contains("already exists") => {
                    info!(task = %id, "batch task was already submitted (a retried submit); following it");
                    Ok(())
                }
                CallError::Status { status, body, .. } if (400..500).contains(status) => Err(self
                    .fail(
                        format!(
                            "Druid refused batch task {id} ({} rows, {bytes} bytes, interval {}) \
                             with HTTP {status}: {body}",
                            batch.count, batch.interval
                        ),
                        false,
                    )),
                _ => Err(self.fail(format!("submitting batch task {id}: {e}"), true)),
            },
        }
    }

    /// Polls the task's status until it ends or times out.
    async fn wait(&self, id: &str) -> TaskEnd {
        let deadline = tokio::time::Instant::now() + self.config.task_timeout;
        loop {
            tokio::time::sleep(self.config.poll_period).await;
            match self.overlord.task_status(id).await {
                Ok(Some(status)) => match status.state {
                    TaskState::Success => return TaskEnd::Success,
                    TaskState::Failed => {
                        return TaskEnd::Failed(
                            status.error_msg.unwrap_or_else(|| "no reason given".into()),
                        )
                    }
                    TaskState::Running => {}
                },
                // Not listed yet: keep asking.
                Ok(None) => {}
                Err(e) => {
                    warn!(task = %id, error = %e, "reading a batch task's status failed; asking again")
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return TaskEnd::TimedOut;
            }
        }
    }

    /// The outcomes of a succeeded task's rows, from its report.
    async fn outcomes_of(&self, id: &str, batch: &Sealed) -> Vec<Outcome> {
        let path = format!("/druid/indexer/v1/task/{}/reports", encode_segment(id));
        let report = match self.overlord.call_api(Method::GET, &path, None).await {
            Ok(answer) if !answer.is_not_found() => answer.json().ok(),
            Ok(_) => None,
            Err(e) => {
                warn!(task = %id, error = %e, "reading a batch task's report failed");
                None
            }
        };
        let Some(stats) = report.as_ref().and_then(RowStats::from_report) else {
            warn!(
                task = %id,
                rows = batch.count,
                "the batch task succeeded but its report has no row counts; every row counts as sent"
            );
            return vec![Outcome::Sent; batch.count];
        };
        let counted =
            stats.processed + stats.processed_with_error + stats.thrown_away + stats.unparseable;
        if stats.thrown_away + stats.unparseable > 0 || counted != batch.count as u64 {
            warn!(
                dataSource = %self.config.data_source,
                task = %id,
                rows = batch.count,
                processed = stats.processed,
                processedWithError = stats.processed_with_error,
                thrownAway = stats.thrown_away,
                unparseable = stats.unparseable,
                "Druid did not keep every row of a batch; see GET /druid/indexer/v1/task/{id}/reports"
            );
        } else {
            debug!(task = %id, rows = batch.count, "batch task succeeded");
        }
        stats.outcomes(batch.count)
    }
}

#[async_trait]
impl Beam for BatchBeam {
    async fn send_batch(&self, events: Vec<Event>) -> Vec<Outcome> {
        let inner = &self.inner;
        let config = &inner.config;
        let now = inner.clock.now_millis();
        let window = config.rule.accept_window(now);
        let mut outcomes: Vec<Option<Outcome>> = vec![None; events.len()];
        // (event index, its batch's answer, its row in that batch)
        let mut waits = Vec::with_capacity(events.len());
        {
            let mut state = inner.state.lock();
            if state.closed {
                return vec![Outcome::Dropped(DropReason::BeamClosed); events.len()];
            }
            for (i, event) in events.iter().enumerate() {
                let ts = event.timestamp_millis();
                if !window.contains(ts) {
                    outcomes[i] = Some(Outcome::Dropped(DropReason::OutsideWindow));
                    continue;
                }
                let line = one_line(event.raw());
                if line.len() + 1 > config.max_bytes {
                    outcomes[i] = Some(inner.fail(
                        format!(
                            "an event of {} bytes is larger than druid.ingestion.batch.maxBytes ({})",
                            line.len() + 1,
                            config.max_bytes
                        ),
                        false,
                    ));
                    continue;
                }
                let interval = config.rule.segment_granularity.bucket(ts);
                if let Some(open) = state.open.get(&interval.start) {
                    if open.rows.len() + line.len() + 1 > config.max_bytes {
                        if let Some(full) = state.open.remove(&interval.start) {
                            inner.submit(&mut state, full.into());
                        }
                    }
                }
                if !state.open.contains_key(&interval.start) {
                    let number = state.next_number;
                    state.next_number += 1;
                    let (result, _) = watch::channel(None);
                    state.open.insert(
                        interval.start,
                        Open {
                            number,
                            interval,
                            rows: Vec::new(),
                            count: 0,
                            result,
                        },
                    );
                    inner.start_timer(&mut state, interval.start, number);
                }
                let Some(open) = state.open.get_mut(&interval.start) else {
                    continue;
                };
                open.rows.extend_from_slice(&line);
                open.rows.push(b'\n');
                waits.push((i, open.result.subscribe(), open.count));
                open.count += 1;
                if open.rows.len() >= config.max_bytes {
                    if let Some(full) = state.open.remove(&interval.start) {
                        inner.submit(&mut state, full.into());
                    }
                }
            }
        }
        for (i, mut answer, row) in waits {
            let outcome = match answer.wait_for(Option::is_some).await {
                Ok(result) => result
                    .as_ref()
                    .and_then(|all| all.get(row).cloned())
                    .unwrap_or_else(|| {
                        inner.fail("the batch gave no outcome for this row".into(), true)
                    }),
                Err(_) => inner.fail("the batch ended without an outcome".into(), true),
            };
            outcomes[i] = Some(outcome);
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| inner.fail("no outcome".into(), false)))
            .collect()
    }

    async fn close(&self) -> Result<(), CloseError> {
        let running = {
            let mut state = self.inner.state.lock();
            state.closed = true;
            let open: Vec<Open> = state.open.drain().map(|(_, o)| o).collect();
            for batch in open {
                self.inner.submit(&mut state, batch.into());
            }
            for timer in state.timers.drain(..) {
                timer.abort();
            }
            std::mem::take(&mut state.running)
        };
        for handle in running {
            if let Err(e) = handle.await {
                if e.is_panic() {
                    return Err(CloseError(format!("a batch task panicked: {e}")));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
