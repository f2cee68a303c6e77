//! The driver: one `select!` over the stop signal, outcomes, retries that are due, the commit
//! timer, the pause deadline and the one pending `next()` of the source.

use std::collections::{BTreeMap, HashMap};
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
use super::sink::{Route, Router};
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

/// A record handed to its sink, with what a retry needs.
struct Pending {
    key: Key,
    raw: Bytes,
    retry: Retry,
    route: Route,
    metrics: PartitionMetrics,
}

fn send(p: Pending) -> BoxFuture<'static, (Pending, Outcome)> {
    let outcome = p.route.sink.send_at(p.raw.clone(), &p.key.position());
    Box::pin(async move { (p, outcome.await) })
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
    inflight: FuturesUnordered<BoxFuture<'static, (Pending, Outcome)>>,
    /// Failed records waiting for their next attempt, by due time.
    retries: BTreeMap<(Instant, u64), Pending>,
    retry_seq: u64,
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
            .field("in_flight", &self.inflight.len())
            .field("retries", &self.retries.len())
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
            inflight: FuturesUnordered::new(),
            retries: BTreeMap::new(),
            retry_seq: 0,
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
            let done = self.inflight.is_empty() && self.retries.is_empty();
            if (self.draining || self.ended) && done {
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
                Some((pending, outcome)) = self.inflight.next() => self.on_outcome(pending, outcome),
                () = sleep_until(retry_at), if retry_at.is_some() => self.on_retries_due(),
                _ = commit_tick.tick() => {
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
        // Forget every tracker first, so a revocation that closing triggers commits nothing.
        self.partitions.clear();
        self.source.close().await;
        // Records without an outcome stay uncommitted: counted failed, read again later.
        let abandoned = (self.inflight.len() + self.retries.len()) as u64;
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
        let key = self.partitions.track(&partition, offset, &metrics);
        let checked = match payload {
            None => Err(SourceDropReason::NotJson),
            Some(p) if p.len() > self.options.max_message_bytes => Err(SourceDropReason::TooLarge),
            Some(p) if !looks_like_object(&p) => Err(SourceDropReason::NotJson),
            Some(p) => Ok(p),
        };
        match checked {
            Err(reason) => {
                route.sink.drop_unparseable(1);
                self.on_drop(&key, &route, &metrics, reason);
            }
            Ok(raw) => {
                self.inflight.push(send(Pending {
                    key,
                    raw,
                    retry: self.options.retry.start(),
                    route,
                    metrics,
                }));
                self.check_full();
            }
        }
    }

    fn on_drop(
        &mut self,
        key: &Key,
        route: &Route,
        metrics: &PartitionMetrics,
        reason: SourceDropReason,
    ) {
        metrics.dropped(reason);
        self.count(&key.partition.topic, Final::Dropped(reason));
        let fatal = if reason.is_parse_failure() {
            route.report.parse.then_some("reportParseExceptions")
        } else {
            route.report.drops.then_some("reportDropsAsExceptions")
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

    fn on_outcome(&mut self, mut pending: Pending, outcome: Outcome) {
        match outcome {
            Outcome::Sent => {
                pending.metrics.sent();
                self.count(&pending.key.partition.topic, Final::Sent);
                self.partitions.resolve(&pending.key);
            }
            Outcome::Dropped(reason) => {
                let reason = SourceDropReason::Core(reason);
                self.on_drop(&pending.key, &pending.route, &pending.metrics, reason);
            }
            Outcome::Failed(error) => {
                pending.metrics.failed();
                let key = pending.key.clone();
                let wait = if !self.partitions.is_live(&key) {
                    debug!(partition = %key.partition, offset = key.offset,
                        "send failed for a partition no longer read; its next owner reads it again");
                    None
                } else if self.draining {
                    info!(partition = %key.partition, offset = key.offset, error = %error,
                        "send failed while stopping; the record stays uncommitted");
                    None
                } else {
                    // Counts the attempt either way; only a retriable error may be retried.
                    let wait = pending.retry.failed().filter(|_| error.is_retriable());
                    if wait.is_none() {
                        self.fail(DriverError::SendFailed {
                            partition: key.partition.clone(),
                            offset: key.offset,
                            attempts: pending.retry.attempts(),
                            error: error.clone(),
                        });
                    }
                    wait
                };
                match wait {
                    Some(wait) => {
                        warn!(partition = %key.partition, offset = key.offset,
                            attempt = pending.retry.attempts(), error = %error, retry_in = ?wait,
                            "send failed; retrying (the offset is not committed until it succeeds)");
                        self.report.retries += 1;
                        self.retry_seq += 1;
                        self.retries
                            .insert((Instant::now() + wait, self.retry_seq), pending);
                    }
                    None => self.count(&key.partition.topic, Final::Failed),
                }
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
            let pending = entry.remove();
            if self.partitions.is_live(&pending.key) {
                self.inflight.push(send(pending));
            } else {
                // Its partition was taken away while it waited: its next owner reads it again.
                self.count(&pending.key.partition.topic, Final::Failed);
            }
        }
        self.check_resume();
    }

    fn outstanding(&self) -> usize {
        self.inflight.len() + self.retries.len()
    }

    /// Notes when the driver becomes full (it then takes no record).
    fn check_full(&mut self) {
        if self.full_since.is_none() && self.outstanding() >= self.options.max_in_flight {
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
                    in_flight = self.outstanding(),
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
        let outstanding = self.outstanding();
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
        // Abandoned retries stay unresolved: their offsets are not committed.
        for (_, pending) in std::mem::take(&mut self.retries) {
            self.count(&pending.key.partition.topic, Final::Failed);
        }
        let router = self.router.clone();
        tokio::spawn(async move { router.flush().await });
        info!(
            member = self.member,
            in_flight = self.inflight.len(),
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
