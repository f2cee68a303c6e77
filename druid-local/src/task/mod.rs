//! Realtime tasks: state, the run loop (receiver -> clip -> rejection policy -> rollup), and
//! the end of a task (drain, hand off, SUCCESS; or shutdown, FAILED, nothing handed off).

pub mod parse;
pub mod persist;
pub mod receiver;
pub mod rollup;

use crate::spec::{Rejection, TaskKind, TaskSpec};
use crate::storage::Segment;
use crate::time::{self, Interval, Millis};
use crate::Shared;
use parking_lot::{Mutex, RwLock};
use receiver::{Feed, Receiver};
use rollup::{Index, InputRow};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// Task status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StatusCode {
    /// Running.
    Running,
    /// Finished with handoff.
    Success,
    /// Failed or shut down.
    Failed,
}

/// Mutable task state.
#[derive(Debug, Clone)]
pub struct TaskState {
    /// Status code.
    pub status: StatusCode,
    /// Run time in ms once complete.
    pub duration: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Host and port once the task is started.
    pub location: Option<(String, u16)>,
    /// The runner's status while the task runs, when not RUNNING (a batch task waiting for
    /// its locks is WAITING, then PENDING).
    pub runner: Option<&'static str>,
}

/// Counters kept by a task (Druid's FireDepartmentMetrics subset).
#[derive(Debug, Default)]
pub struct Counters {
    /// Rows added to the index.
    pub processed: AtomicU64,
    /// Rows rejected by the rejection policy.
    pub thrown_away: AtomicU64,
    /// Rows outside the clipped interval (Druid counts these nowhere; kept for accounting).
    pub clipped: AtomicU64,
    /// Requests skipped by producer-sequence dedup.
    pub skipped_requests: AtomicU64,
    /// Segments handed off.
    pub handoffs: AtomicU64,
}

/// A submitted task.
#[derive(Debug)]
pub struct Task {
    /// The validated spec.
    pub spec: Arc<TaskSpec>,
    /// Submission time.
    pub created: Millis,
    /// Current state.
    pub state: Mutex<TaskState>,
    /// Counters.
    pub counters: Counters,
    kill: watch::Sender<bool>,
    /// The receiver while the task runs.
    pub receiver: RwLock<Option<Arc<Receiver>>>,
}

impl Task {
    /// A task in RUNNING state with no location yet.
    pub fn new(spec: TaskSpec, created: Millis) -> Arc<Task> {
        Arc::new(Task {
            spec: Arc::new(spec),
            created,
            state: Mutex::new(TaskState {
                status: StatusCode::Running,
                duration: None,
                error: None,
                location: None,
                runner: None,
            }),
            counters: Counters::default(),
            kill: watch::channel(false).0,
            receiver: RwLock::new(None),
        })
    }

    /// A finished task restored from disk.
    pub fn finished(
        spec: TaskSpec,
        created: Millis,
        status: StatusCode,
        duration: Option<i64>,
        error: Option<String>,
    ) -> Arc<Task> {
        let t = Task::new(spec, created);
        *t.state.lock() = TaskState {
            status,
            duration,
            error,
            location: None,
            runner: None,
        };
        t
    }

    /// Overlord shutdown: FAILED at once (with no duration, as Druid records it), the runner
    /// stops without handoff.
    pub fn kill(&self, reason: &str) -> bool {
        let mut st = self.state.lock();
        if st.status != StatusCode::Running {
            return false;
        }
        st.status = StatusCode::Failed;
        st.duration = None;
        st.error = Some(reason.to_owned());
        drop(st);
        self.kill.send_replace(true);
        true
    }

    /// A receiver that turns `true` when the task is shut down (Overlord shutdown or stop).
    pub fn kill_signal(&self) -> watch::Receiver<bool> {
        self.kill.subscribe()
    }

    /// Ends a running task with `status` (no effect once it ended).
    pub fn finish(&self, status: StatusCode, error: Option<String>) {
        let mut st = self.state.lock();
        if st.status == StatusCode::Running {
            st.status = status;
            st.duration = Some(time::now_millis() - self.created);
            st.error = error;
        }
    }
}

/// The alias Druid registers next to a service name: the part after the last colon.
pub fn alias_of(service_name: &str) -> Option<&str> {
    match service_name.rfind(':') {
        Some(i) if i > 0 && i + 1 < service_name.len() => Some(&service_name[i + 1..]),
        _ => None,
    }
}

/// Runs a task to its end.
pub async fn run(shared: Arc<Shared>, task: Arc<Task>) {
    let spec = task.spec.clone();
    let schema = match &spec.schema {
        Ok(s) => s.clone(),
        Err(e) => {
            task.finish(StatusCode::Failed, Some(e.clone()));
            shared.save_task(&task);
            return;
        }
    };
    let parser = parse::RowParser::new(&schema, &spec.metrics);
    let fh = &spec.firehose;
    let (recv, feed) = Receiver::new(
        &spec.id,
        &fh.service_name,
        parser,
        fh.buffer_size,
        fh.shutoff,
    );
    *task.receiver.write() = Some(recv.clone());
    task.state.lock().location = Some((shared.host.clone(), shared.port));
    let alias = alias_of(&fh.service_name).map(str::to_owned);
    let full_reg = shared
        .register_handler(&fh.service_name, recv.clone())
        .await;
    let alias_reg = match &alias {
        Some(a) => Some(shared.register_handler(a, recv.clone()).await),
        None => None,
    };
    tokio::spawn(recv.clone().run_shutoff(fh.max_idle));

    let mut indexer = Indexer {
        task: &task,
        store: &shared,
        sinks: HashMap::new(),
        max_message_time: i64::MIN,
    };
    let killed = consume(&task, &recv, feed, &mut indexer, &shared, full_reg).await;

    if killed {
        recv.close();
        shared.store.drop_live(&spec.id);
    } else {
        let mut failure = None;
        for seg in indexer.sinks.values() {
            match shared.store.hand_off(&spec.id, seg) {
                Ok(()) => {
                    task.counters.handoffs.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => failure = Some(format!("handoff of segment [{}] failed: {e}", seg.id())),
            }
        }
        match failure {
            None => task.finish(StatusCode::Success, None),
            Some(e) => {
                shared.store.drop_live(&spec.id);
                task.finish(StatusCode::Failed, Some(e));
            }
        }
    }
    if let Some(reg) = alias_reg {
        shared.unregister_handler(reg).await;
    }
    *task.receiver.write() = None;
    shared.save_task(&task);
    tracing::info!(task = %spec.id, status = ?task.state.lock().status, "task finished");
}

/// Reads the feed until the firehose is closed and drained (false) or the task is killed (true).
async fn consume(
    task: &Task,
    recv: &Receiver,
    mut feed: Feed,
    indexer: &mut Indexer<'_>,
    shared: &Shared,
    full_reg: crate::HandlerReg,
) -> bool {
    let mut kill = task.kill.subscribe();
    let mut full_reg = Some(full_reg);
    enum Step {
        Killed,
        Batch(Vec<InputRow>),
        Drained,
        Closed,
    }
    loop {
        let step = tokio::select! {
            biased;
            r = kill.wait_for(|k| *k) => {
                drop(r);
                Step::Killed
            }
            batch = feed.rx.recv() => batch.map_or(Step::Drained, Step::Batch),
            _ = recv.closed(), if full_reg.is_some() => Step::Closed,
        };
        match step {
            Step::Batch(rows) => {
                let n = rows.len();
                indexer.index(rows);
                feed.permits.add_permits(n);
            }
            // On close Druid unregisters the full name at once; the alias stays until exit.
            Step::Closed => {
                if let Some(reg) = full_reg.take() {
                    shared.unregister_handler(reg).await;
                }
            }
            Step::Killed | Step::Drained => {
                if let Some(reg) = full_reg.take() {
                    shared.unregister_handler(reg).await;
                }
                return matches!(step, Step::Killed) || *task.kill.borrow();
            }
        }
    }
}

struct Indexer<'a> {
    task: &'a Task,
    store: &'a Shared,
    sinks: HashMap<Interval, Arc<Segment>>,
    max_message_time: Millis,
}

impl Indexer<'_> {
    fn index(&mut self, rows: Vec<InputRow>) {
        let spec = &self.task.spec;
        let c = &self.task.counters;
        let now = time::now_millis();
        let window = spec.window_period;
        let mut sinks_to_make = Vec::new();
        // Two passes keep the write lock of one sink across consecutive rows of the batch.
        let mut accepted = Vec::with_capacity(rows.len());
        for row in rows {
            if spec.firehose.clip.is_some_and(|iv| !iv.contains(row.ts)) {
                c.clipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let ok = match spec.rejection {
                Rejection::None => true,
                Rejection::ServerTime => row.ts >= now - window && row.ts <= now + window,
                Rejection::MessageTime => {
                    self.max_message_time = self.max_message_time.max(row.ts);
                    row.ts >= self.max_message_time - window
                }
            };
            if !ok {
                c.thrown_away.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let iv = spec.segment_granularity.bucket(row.ts);
            if !self.sinks.contains_key(&iv) && !sinks_to_make.contains(&iv) {
                sinks_to_make.push(iv);
            }
            accepted.push((iv, row));
        }
        for iv in sinks_to_make {
            let dims = match &spec.schema {
                Ok(s) => s.dimensions.clone().unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            let version = self.store.store.version_for(&spec.data_source, iv);
            let partition = match spec.kind {
                TaskKind::Appenderator => {
                    self.store
                        .store
                        .allocate_partition(&spec.data_source, iv, &version)
                }
                _ => spec.partition_num,
            };
            let seg = Arc::new(Segment {
                data_source: spec.data_source.clone(),
                interval: iv,
                version,
                partition,
                index: RwLock::new(
                    Index::new(&dims, &spec.metrics, spec.rollup)
                        .with_nulls(self.store.null_handling),
                ),
            });
            self.store.store.add_live(&spec.id, seg.clone());
            self.sinks.insert(iv, seg);
        }
        // Rows of a batch usually share one sink: lock each sink once per run of rows.
        let mut processed = 0;
        let mut rows = accepted.into_iter().peekable();
        while let Some((iv, first)) = rows.next() {
            let Some(seg) = self.sinks.get(&iv) else {
                continue;
            };
            let mut idx = seg.index.write();
            let mut row = first;
            loop {
                let truncated = match spec.query_granularity {
                    time::Granularity::All => iv.start,
                    ref g => g.bucket_start(row.ts),
                };
                idx.add(truncated, row.ts, row.dims, &row.metrics);
                processed += 1;
                match rows.next_if(|(next, _)| *next == iv) {
                    Some((_, r)) => row = r,
                    None => break,
                }
            }
        }
        c.processed.fetch_add(processed, Ordering::Relaxed);
    }
}
