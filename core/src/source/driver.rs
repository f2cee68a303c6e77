//! The driver: one `select!` over the stop signal, waves' outcomes, retries that are due, the
//! commit timer, the pause deadline and the one pending `next()` of the source.
//!
//! Records go to their sink in waves, one partition's records at a time (see the module docs
//! of [`crate::source`] for why): each partition has a lane with the records read and not yet
//! handed over, at most one wave out, and the records that failed in the last wave, which go
//! first in the next one once their backoff is over.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::book::{describe, Key, Partitions};
use super::metrics::{PartitionMetrics, SourceDropReason, SourceMetrics};
use super::origin::{Origin, Ownership};
use super::sink::{ReportFlags, Route, Router};
use super::{PartitionId, RecordSource, SourceError, SourceRecord};
use crate::beam::{Outcome, SendError};
use crate::metrics::Tally;
use crate::retry::{Retry, RetryPolicy};

/// How a driver reads, bounds, retries and commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverOptions {
    /// How often done offsets are committed (`commit.periodMillis`).
    pub commit_period: Duration,
    /// Records waiting for an outcome (or a retry) before the driver takes no more.
    pub max_in_flight: usize,
    /// Most records of one partition handed to the sink at once (a wave). A partition has
    /// one wave out at a time, so its records reach the sink in offset order.
    pub max_wave: usize,
    /// How long the driver may stay at `max_in_flight` before it pauses the source, so that it
    /// can keep polling it (a Kafka consumer must, within `max.poll.interval.ms`) without
    /// getting records.
    pub pause_after: Duration,
    /// Records larger than this are dropped as `too_large` (counted and committed).
    pub max_message_bytes: usize,
    /// How a failed send is retried; one that cannot be retried stops the driver without
    /// committing past it.
    pub retry: RetryPolicy,
}

impl Default for DriverOptions {
    fn default() -> Self {
        Self {
            commit_period: default_commit_period(),
            max_in_flight: default_max_in_flight(),
            max_wave: default_max_wave(),
            pause_after: default_pause_after(),
            max_message_bytes: default_max_message_bytes(),
            retry: RetryPolicy::default(),
        }
    }
}

/// 15 s, the original's `commit.periodMillis` default.
fn default_commit_period() -> Duration {
    Duration::from_secs(15)
}

/// Five Tranquilizer batches of the default 2000: enough to keep the pipeline busy.
fn default_max_in_flight() -> usize {
    10_000
}

/// The Tranquilizer's default batch (`druid.tranquilizer.maxBatchSize`): two pushes of the
/// default `druidBeam.firehoseChunkSize` per task.
fn default_max_wave() -> usize {
    2000
}

/// Well inside librdkafka's default `max.poll.interval.ms` (5 minutes), and long enough that a
/// short slowdown never costs a refetch.
fn default_pause_after() -> Duration {
    Duration::from_secs(10)
}

/// Kafka's default `message.max.bytes` (1 MiB plus record overhead): larger events almost
/// always come from a producer bug, and Druid would receive them whole.
fn default_max_message_bytes() -> usize {
    1_048_588
}

/// How the driver is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Stop reading, wait for the outcomes in flight, commit, close the source.
    Graceful,
    /// Leave at once: no waiting, no commit (what a crash leaves behind).
    Abort,
}

/// Why a driver stopped on its own. Nothing past the record named was committed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The source failed to give the next record.
    #[error("reading failed: {0}")]
    Read(SourceError),
    /// The final commit failed.
    #[error("committing offsets failed: {0}")]
    Commit(SourceError),
    /// A topic has nowhere to go.
    #[error("topic {topic}: {message}")]
    Route {
        /// The topic.
        topic: String,
        /// Why it has no route.
        message: String,
    },
    /// A record was dropped and `reportDropsAsExceptions` (or `reportParseExceptions` for an
    /// unparseable one) makes that fatal.
    #[error("{partition} offset {offset} was dropped ({reason}) and {property} is true")]
    ReportedDrop {
        /// The partition.
        partition: PartitionId,
        /// The record's offset.
        offset: i64,
        /// Why it was dropped.
        reason: &'static str,
        /// The property that made the drop fatal.
        property: &'static str,
    },
    /// A record failed and retrying cannot help (or the retries ran out).
    #[error("{partition} offset {offset} failed after {attempts} attempt(s): {error}")]
    SendFailed {
        /// The partition.
        partition: PartitionId,
        /// The record's offset.
        offset: i64,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        error: Arc<SendError>,
    },
}

/// What a driver did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceReport {
    /// Final outcomes of the records read; a retried record counts once.
    pub tally: Tally,
    /// Failed attempts that were tried again.
    pub retries: u64,
    /// Commits made.
    pub commits: u64,
}

/// A record read and routed, with what a retry needs.
struct Pending {
    key: Key,
    raw: Bytes,
    retry: Retry,
    metrics: PartitionMetrics,
}

/// A wave's answer: the records handed over and their outcomes, in order.
struct Wave {
    partition: PartitionId,
    ownership: Arc<Ownership>,
    records: Vec<Pending>,
    outcomes: Vec<Outcome>,
}

/// One partition's records on their way: at most one wave is out at a time, and failed
/// records go again, first, before anything read after them.
struct Lane {
    /// The hold the records were read under (a new one after a rewind or re-assignment).
    ownership: Arc<Ownership>,
    route: Route,
    /// Read, not handed over yet, in offset order.
    queue: VecDeque<Pending>,
    /// Failed in the last wave: the next wave starts with them, in offset order.
    failed: Vec<Pending>,
    /// When `failed` may go again.
    retry_at: Option<Instant>,
    /// A wave is out.
    sending: bool,
}

fn send(
    partition: PartitionId,
    ownership: Arc<Ownership>,
    route: &Route,
    records: Vec<Pending>,
) -> BoxFuture<'static, Wave> {
    let items = records
        .iter()
        .map(|p| (p.raw.clone(), Origin::new(ownership.clone(), p.key.offset)))
        .collect();
    let answer = route.sink.send_ordered(items);
    Box::pin(async move {
        let mut outcomes = answer.await;
        if outcomes.len() != records.len() {
            warn!(partition = %partition, expected = records.len(), got = outcomes.len(),
                "the sink answered with the wrong number of outcomes");
            let error = Arc::new(SendError::Other(format!(
                "the sink gave {} outcomes for {} records",
                outcomes.len(),
                records.len()
            )));
            outcomes.resize_with(records.len(), || Outcome::Failed(error.clone()));
        }
        Wave {
            partition,
            ownership,
            records,
            outcomes,
        }
    })
}

type Read = BoxFuture<'static, Option<Result<SourceRecord, SourceError>>>;

/// How a record ended, for the tallies.
enum Final {
    Sent,
    Dropped(SourceDropReason),
    Failed,
}

/// Drives one [`RecordSource`] (see the module docs of [`crate::source`]).
pub struct SourceDriver<S: RecordSource> {
    source: Arc<S>,
    member: usize,
    options: DriverOptions,
    router: Arc<dyn Router>,
    metrics: SourceMetrics,
    partitions: Partitions,
    routes: HashMap<Arc<str>, Route>,
    partition_metrics: HashMap<PartitionId, PartitionMetrics>,
    lanes: HashMap<PartitionId, Lane>,
    /// Waves handed to their sinks, at most one per lane.
    inflight: FuturesUnordered<BoxFuture<'static, Wave>>,
    /// Lanes whose failed records are due again, by due time.
    retries: BTreeMap<(Instant, u64), PartitionId>,
    retry_seq: u64,
    /// Records read and handed to a lane whose outcome is not final yet.
    outstanding: usize,
    /// When the driver reached `max_in_flight` (it takes no record while full).
    full_since: Option<Instant>,
    /// The source is paused: full for longer than `pause_after`.
    paused: bool,
    /// The source said it cannot pause.
    cannot_pause: bool,
    /// The source has no more records; retries still go on.
    ended: bool,
    /// Stopping (asked to, or on a fatal error): no more reads, no more retries.
    draining: bool,
    fatal: Option<DriverError>,
    /// Outcomes per topic since the last commit, and before it.
    window: BTreeMap<Arc<str>, Tally>,
    totals: BTreeMap<Arc<str>, Tally>,
    report: SourceReport,
}

impl<S: RecordSource> std::fmt::Debug for SourceDriver<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceDriver")
            .field("member", &self.member)
            .field("outstanding", &self.outstanding)
            .field("waves", &self.inflight.len())
            .field("draining", &self.draining)
            .finish_non_exhaustive()
    }
}

impl<S: RecordSource> SourceDriver<S> {
    /// A driver of `source` into the routes of `router`, counting into `metrics`; `member`
    /// names it in logs and in the assigned-partitions gauge. Hands the source its
    /// [`Partitions`] handle.
    pub fn new(
        source: S,
        router: Arc<dyn Router>,
        metrics: &SourceMetrics,
        options: DriverOptions,
        member: usize,
    ) -> Self {
        let partitions = Partitions::new(metrics.clone(), member);
        source.attach(partitions.clone());
        Self {
            source: Arc::new(source),
            member,
            options,
            router,
            metrics: metrics.clone(),
            partitions,
            routes: HashMap::new(),
            partition_metrics: HashMap::new(),
            lanes: HashMap::new(),
            inflight: FuturesUnordered::new(),
            retries: BTreeMap::new(),
            retry_seq: 0,
            outstanding: 0,
            full_since: None,
            paused: false,
            cannot_pause: false,
            ended: false,
            draining: false,
            fatal: None,
            window: BTreeMap::new(),
            totals: BTreeMap::new(),
            report: SourceReport::default(),
        }
    }

    /// Runs until `stop` resolves, the source ends, or a fatal error; then (unless aborted)
    /// waits for the outcomes in flight, commits and closes the source. Returns what it did,
    /// and the error that stopped it, if one did (or the final commit's).
    pub async fn run(
        mut self,
        stop: impl Future<Output = Stop> + Send,
    ) -> (SourceReport, Result<(), DriverError>) {
        let mut stop = pin!(stop.fuse());
        let mut reading = self.read();
        let mut commit_tick = tokio::time::interval(self.options.commit_period);
        commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        commit_tick.tick().await;
        loop {
            if (self.draining || self.ended) && self.outstanding == 0 {
                break;
            }
            // Full: take no record; once full for too long, pause the source and poll it
            // again, so a client that must be polled (rebalances) is.
            let full = self.full_since.is_some();
            let pause_at = self
                .full_since
                .filter(|_| !self.paused && !self.cannot_pause)
                .map(|since| since + self.options.pause_after);
            let retry_at = self
                .retries
                .first_key_value()
                .map(|((at, _), _)| *at)
                .filter(|_| !self.draining);
            tokio::select! {
                biased;
                how = &mut stop => match how {
                    Stop::Graceful => {
                        info!(member = self.member, "stopping: waiting for outcomes, then committing");
                        self.start_draining();
                    }
                    Stop::Abort => {
                        drop(reading);
                        return (self.abort().await, Ok(()));
                    }
                },
                Some(wave) = self.inflight.next() => self.on_wave(wave),
                () = sleep_until(retry_at), if retry_at.is_some() => self.on_retries_due(),
                _ = commit_tick.tick() => {
                    self.retire_revoked();
                    let _ = self.commit("periodic").await;
                }
                () = sleep_until(pause_at), if pause_at.is_some() => self.pause(),
                next = &mut reading, if !self.draining && !self.ended && (!full || self.paused) => {
                    // Only now is a new call made: the previous one completed.
                    reading = self.read();
                    match next {
                        Some(Ok(record)) => self.on_record(record).await,
                        Some(Err(e)) => self.fail(DriverError::Read(e)),
                        None => {
                            info!(member = self.member, "the source ended");
                            self.ended = true;
                        }
                    }
                }
            }
        }
        let committed = self.commit("final").await;
        // The source is done with: its pending read may go now.
        drop(reading);
        self.source.close().await;
        let mut report = self.report.clone();
        report.tally = total(self.totals.values());
        info!(
            member = self.member,
            retries = report.retries,
            commits = report.commits,
            "source stopped; totals {}",
            format_counts(&self.totals)
        );
        let result = match (self.fatal, committed) {
            (Some(e), _) => Err(e),
            (None, Err(e)) => Err(DriverError::Commit(e)),
            (None, Ok(())) => Ok(()),
        };
        (report, result)
    }

    /// A `next()` of the source, made when first polled.
    fn read(&self) -> Read {
        let source = self.source.clone();
        Box::pin(async move { source.next().await })
    }

    async fn abort(self) -> SourceReport {
        // Forget (and fence) every tracker first, so a revocation that closing triggers
        // commits nothing and nothing more is pushed.
        self.partitions.clear();
        self.source.close().await;
        // Records without an outcome stay uncommitted: counted failed, read again later.
        let abandoned = self.outstanding as u64;
        let mut report = self.report;
        report.tally = total(self.totals.values().chain(self.window.values()));
        report.tally.failed += abandoned;
        info!(
            member = self.member,
            abandoned, "source aborted without a final commit"
        );
        report
    }

    fn partition_metrics(&mut self, id: &PartitionId) -> PartitionMetrics {
        self.partition_metrics
            .entry(id.clone())
            .or_insert_with(|| self.metrics.partition(id))
            .clone()
    }

    async fn route(&mut self, topic: &Arc<str>) -> Result<Route, DriverError> {
        if let Some(route) = self.routes.get(topic) {
            return Ok(route.clone());
        }
        let route = self
            .router
            .route(topic)
            .await
            .map_err(|message| DriverError::Route {
                topic: topic.to_string(),
                message,
            })?;
        self.routes.insert(topic.clone(), route.clone());
        Ok(route)
    }

    async fn on_record(&mut self, record: SourceRecord) {
        let SourceRecord {
            partition,
            offset,
            payload,
        } = record;
        let metrics = self.partition_metrics(&partition);
        metrics.consumed();
        self.window_of(&partition.topic).received += 1;
        let route = match self.route(&partition.topic).await {
            Ok(route) => route,
            Err(e) => {
                // Never tracked, so never committed: it is read again after a restart.
                self.count(&partition.topic, Final::Failed);
                self.fail(e);
                return;
            }
        };
        let (key, ownership) = self.partitions.track(&partition, offset, &metrics);
        let checked = match payload {
            None => Err(SourceDropReason::NotJson),
            Some(p) if p.len() > self.options.max_message_bytes => Err(SourceDropReason::TooLarge),
            Some(p) if !looks_like_object(&p) => Err(SourceDropReason::NotJson),
            Some(p) => Ok(p),
        };
        match checked {
            Err(reason) => {
                route.sink.drop_unparseable(1);
                self.on_drop(&key, route.report, &metrics, reason);
            }
            Ok(raw) => {
                let fresh = !self
                    .lanes
                    .get(&partition)
                    .is_some_and(|lane| lane.ownership == ownership);
                if fresh {
                    self.retire(&partition);
                    self.lanes.insert(
                        partition.clone(),
                        Lane {
                            ownership,
                            route,
                            queue: VecDeque::new(),
                            failed: Vec::new(),
                            retry_at: None,
                            sending: false,
                        },
                    );
                }
                if let Some(lane) = self.lanes.get_mut(&partition) {
                    lane.queue.push_back(Pending {
                        key,
                        raw,
                        retry: self.options.retry.start(),
                        metrics,
                    });
                    self.outstanding += 1;
                }
                self.pump(&partition);
                self.check_full();
            }
        }
    }

    /// Hands the lane's next wave over when it has none out: its failed records once they
    /// are due (then whatever was read after them), else what it read.
    fn pump(&mut self, partition: &PartitionId) {
        let Some(lane) = self.lanes.get_mut(partition) else {
            return;
        };
        if lane.sending {
            return;
        }
        if lane.ownership.is_fenced() || (self.draining && !lane.failed.is_empty()) {
            // Revoked or rewound: the next owner reads these again. Stopping with records
            // that failed: what was read after them must not overtake them either, so all
            // stay uncommitted and are read again after a restart.
            self.retire(partition);
            return;
        }
        if !lane.failed.is_empty() && lane.retry_at.is_some_and(|at| at > Instant::now()) {
            return;
        }
        let mut records = std::mem::take(&mut lane.failed);
        lane.retry_at = None;
        let room = self.options.max_wave.max(1).saturating_sub(records.len());
        let take = room.min(lane.queue.len());
        records.extend(lane.queue.drain(..take));
        if records.is_empty() {
            return;
        }
        lane.sending = true;
        let wave = send(
            partition.clone(),
            lane.ownership.clone(),
            &lane.route,
            records,
        );
        self.inflight.push(wave);
    }

    /// Drops a lane whose records can no longer go (its hold ended): they are counted failed
    /// and stay uncommitted. A wave still out is counted when it answers.
    fn retire(&mut self, partition: &PartitionId) {
        let Some(lane) = self.lanes.get_mut(partition) else {
            return;
        };
        let left: Vec<Pending> = lane.failed.drain(..).chain(lane.queue.drain(..)).collect();
        lane.retry_at = None;
        lane.ownership.fence();
        if !lane.sending {
            self.lanes.remove(partition);
        }
        if !left.is_empty() {
            debug!(member = self.member, partition = %partition, records = left.len(),
                "records left unsent: they stay uncommitted");
        }
        for pending in left {
            pending.metrics.failed();
            self.outstanding -= 1;
            self.count(&partition.topic, Final::Failed);
        }
        self.check_resume();
    }

    /// Retires the lanes of partitions taken away since (their client fenced them).
    fn retire_revoked(&mut self) {
        let revoked: Vec<PartitionId> = self
            .lanes
            .iter()
            .filter(|(_, lane)| lane.ownership.is_fenced() && !lane.sending)
            .map(|(id, _)| id.clone())
            .collect();
        for id in revoked {
            self.retire(&id);
        }
    }

    fn on_drop(
        &mut self,
        key: &Key,
        report: ReportFlags,
        metrics: &PartitionMetrics,
        reason: SourceDropReason,
    ) {
        metrics.dropped(reason);
        self.count(&key.partition.topic, Final::Dropped(reason));
        let fatal = if reason.is_parse_failure() {
            report.parse.then_some("reportParseExceptions")
        } else {
            report.drops.then_some("reportDropsAsExceptions")
        };
        match fatal {
            // Left unresolved: its offset is never committed.
            Some(property) => self.fail(DriverError::ReportedDrop {
                partition: key.partition.clone(),
                offset: key.offset,
                reason: reason.as_str(),
                property,
            }),
            None => {
                self.partitions.resolve(key);
            }
        }
    }

    fn on_wave(&mut self, wave: Wave) {
        let Wave {
            partition,
            ownership,
            records,
            outcomes,
        } = wave;
        let current = match self.lanes.get_mut(&partition) {
            Some(lane) if lane.ownership == ownership => {
                lane.sending = false;
                true
            }
            _ => false,
        };
        let report = self
            .lanes
            .get(&partition)
            .map(|l| l.route.report)
            .unwrap_or_default();
        let mut failed = Vec::new();
        let mut lost = false;
        let mut wait = Duration::ZERO;
        for (mut pending, outcome) in records.into_iter().zip(outcomes) {
            match outcome {
                Outcome::Sent => {
                    pending.metrics.sent();
                    self.outstanding -= 1;
                    self.count(&partition.topic, Final::Sent);
                    self.partitions.resolve(&pending.key);
                }
                Outcome::Dropped(reason) => {
                    self.outstanding -= 1;
                    let reason = SourceDropReason::Core(reason);
                    self.on_drop(&pending.key, report, &pending.metrics, reason);
                }
                Outcome::Failed(error) => {
                    pending.metrics.failed();
                    let key = pending.key.clone();
                    let again = if !current || !self.partitions.is_live(&key) {
                        debug!(partition = %key.partition, offset = key.offset,
                            "send failed for a partition no longer read; its next owner reads it again");
                        None
                    } else if self.draining {
                        info!(partition = %key.partition, offset = key.offset, error = %error,
                            "send failed while stopping; the record stays uncommitted");
                        None
                    } else {
                        // Counts the attempt either way; only a retriable error may be retried.
                        let again = pending.retry.failed().filter(|_| error.is_retriable());
                        if again.is_none() {
                            self.fail(DriverError::SendFailed {
                                partition: key.partition.clone(),
                                offset: key.offset,
                                attempts: pending.retry.attempts(),
                                error: error.clone(),
                            });
                        }
                        again
                    };
                    match again {
                        Some(again) => {
                            if failed.is_empty() {
                                warn!(partition = %key.partition, offset = key.offset,
                                    attempt = pending.retry.attempts(), error = %error, retry_in = ?again,
                                    "send failed; retrying (the partition waits, and its offset is not committed until it succeeds)");
                            }
                            self.report.retries += 1;
                            wait = wait.max(again);
                            failed.push(pending);
                        }
                        None => {
                            lost = true;
                            self.outstanding -= 1;
                            self.count(&key.partition.topic, Final::Failed);
                        }
                    }
                }
            }
        }
        if !failed.is_empty() {
            // `current` held, or nothing would have been kept for a retry.
            if let Some(lane) = self.lanes.get_mut(&partition) {
                failed.sort_by_key(|p| p.key.offset);
                lane.failed = failed;
                let at = Instant::now() + wait;
                lane.retry_at = Some(at);
                self.retry_seq += 1;
                self.retries.insert((at, self.retry_seq), partition.clone());
            }
        }
        if current {
            if lost && self.draining {
                // What the lane read after a record that failed for good must not overtake it.
                self.retire(&partition);
            } else {
                self.pump(&partition);
            }
        }
        self.check_resume();
    }

    fn on_retries_due(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.retries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let partition = entry.remove();
            self.pump(&partition);
        }
        self.check_resume();
    }

    /// Notes when the driver becomes full (it then takes no record).
    fn check_full(&mut self) {
        if self.full_since.is_none() && self.outstanding >= self.options.max_in_flight {
            self.full_since = Some(Instant::now());
        }
    }

    /// Full for `pause_after`: pauses the source, so that the loop can poll it again without
    /// getting records.
    fn pause(&mut self) {
        match self.source.pause() {
            Ok(true) => {
                info!(
                    member = self.member,
                    in_flight = self.outstanding,
                    "outcomes are slow: paused fetching until half of the records in flight have one"
                );
                self.paused = true;
            }
            Ok(false) => self.cannot_pause = true,
            Err(e) => warn!(member = self.member, error = %e, "pausing fetching failed"),
        }
        // Tried again at the next deadline if it failed.
        self.full_since = Some(Instant::now());
    }

    /// Takes records again below `max_in_flight`; resumes a paused source at half of it.
    fn check_resume(&mut self) {
        let max = self.options.max_in_flight;
        let outstanding = self.outstanding;
        if self.paused {
            if outstanding > max / 2 {
                return;
            }
            match self.source.resume() {
                Ok(()) => {
                    info!(member = self.member, "resumed fetching");
                    self.paused = false;
                    self.full_since = None;
                }
                Err(e) => warn!(member = self.member, error = %e,
                    "resuming fetching failed; trying again at the next outcome"),
            }
        } else if outstanding < max {
            self.full_since = None;
        }
    }

    fn fail(&mut self, error: DriverError) {
        error!(member = self.member, %error, "stopping the source");
        if self.fatal.is_none() {
            self.fatal = Some(error);
        }
        self.start_draining();
    }

    fn start_draining(&mut self) {
        if self.draining {
            return;
        }
        self.draining = true;
        // Lanes waiting to retry go no further: their records stay unresolved, uncommitted.
        let waiting: Vec<PartitionId> = self
            .lanes
            .iter()
            .filter(|(_, lane)| !lane.failed.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        for id in waiting {
            self.retire(&id);
        }
        self.retries.clear();
        let router = self.router.clone();
        tokio::spawn(async move { router.flush().await });
        info!(
            member = self.member,
            in_flight = self.outstanding,
            "draining: waiting for the outcomes of records in flight"
        );
    }

    fn window_of(&mut self, topic: &Arc<str>) -> &mut Tally {
        self.window.entry(topic.clone()).or_default()
    }

    /// Counts a record's final outcome (it was counted as received when read).
    fn count(&mut self, topic: &Arc<str>, how: Final) {
        let tally = self.window_of(topic);
        match how {
            Final::Sent => tally.sent += 1,
            Final::Dropped(reason) => tally.dropped[reason.core().index()] += 1,
            Final::Failed => tally.failed += 1,
        }
    }

    /// Commits the commit points that moved, and logs what was handled since the last commit.
    async fn commit(&mut self, why: &str) -> Result<(), SourceError> {
        let counts = std::mem::take(&mut self.window);
        for (topic, c) in &counts {
            add(self.totals.entry(topic.clone()).or_default(), c);
        }
        let points = self.partitions.to_commit();
        if points.is_empty() {
            if !counts.is_empty() {
                info!(
                    member = self.member,
                    unresolved = self.partitions.unresolved(),
                    "Handled {} since the last commit; no offset to commit yet.",
                    format_counts(&counts)
                );
            }
            return Ok(());
        }
        let started = Instant::now();
        match self.source.commit(&points).await {
            Ok(()) => {
                self.partitions.committed(&points);
                self.report.commits += 1;
                info!(
                    member = self.member,
                    commit = why,
                    "Handled {} and committed offsets {} in {}ms.",
                    format_counts(&counts),
                    describe(&points),
                    started.elapsed().as_millis()
                );
                Ok(())
            }
            Err(e) => {
                warn!(
                    member = self.member,
                    error = %e,
                    "committing offsets {} failed; trying again at the next commit",
                    describe(&points)
                );
                Err(e)
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The sum of `tallies`.
fn total<'a>(tallies: impl Iterator<Item = &'a Tally>) -> Tally {
    tallies.fold(Tally::default(), |mut all, t| {
        add(&mut all, t);
        all
    })
}

fn add(into: &mut Tally, t: &Tally) {
    into.received += t.received;
    into.sent += t.sent;
    into.failed += t.failed;
    for (slot, n) in into.dropped.iter_mut().zip(t.dropped) {
        *slot += n;
    }
}

/// True when `raw` starts (after whitespace) like a JSON object; the pipeline's timestamp
/// extraction validates the rest.
pub(crate) fn looks_like_object(raw: &[u8]) -> bool {
    raw.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// Formats counts like the original's commit line: `{topic={receivedCount=.., ...}}`.
pub(crate) fn format_counts(counts: &BTreeMap<Arc<str>, Tally>) -> String {
    let inner: Vec<String> = counts
        .iter()
        .map(|(t, c)| {
            let unparseable = c.dropped(crate::beam::DropReason::Unparseable);
            format!(
                "{t}={{receivedCount={}, sentCount={}, droppedCount={}, unparseableCount={}, failedCount={}}}",
                c.received,
                c.sent,
                c.dropped_total() - unparseable,
                unparseable,
                c.failed
            )
        })
        .collect();
    format!("{{{}}}", inner.join(", "))
}
