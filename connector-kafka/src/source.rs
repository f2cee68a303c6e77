//! The consume loop of one group member: one `select!` over control, outcomes, retries, the
//! commit timer, topic refreshes and messages.
//!
//! Each message is tracked in its partition's [`OffsetTracker`] before it is handed to its
//! dataSource's sink. Its outcome resolves it (`Sent`, `Dropped`), or schedules a retry
//! (`Failed`, retriable): a failed message stays unresolved and holds its partition's commit
//! point back. Every `commit.periodMillis` the commit points that moved are committed. When
//! partitions are revoked (rebalance), their done offsets are committed first and their
//! trackers forgotten; outcomes still arriving for them no longer count towards a commit.
//!
//! Never dropping the consumer: against some brokers (seen with tansu) librdkafka 2.12's
//! `rd_kafka_destroy` of a group consumer waits forever for a broker thread, which would hang
//! whichever thread drops it. So a member never destroys its consumer: it unsubscribes (the
//! group gives its partitions to the others at once), polls once more so the leave completes,
//! and leaks it. A process runs a handful of members in its lifetime, so the leak is bounded.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use parking_lot::Mutex;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};
use tranquility::beam::Outcome;

use crate::commit::OffsetTracker;
use crate::config::KafkaConfig;
use crate::error::KafkaError;
use crate::metrics::{
    format_counts, CommitWindow, KafkaDropReason, KafkaMetrics, PartitionMetrics, TopicCounts,
};
use crate::sink::{EventSink, SinkRegistry};

/// What the owner asks of the members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// Keep consuming.
    Run,
    /// Stop consuming, wait for outcomes, commit, leave the group.
    Stop,
    /// Leave at once: no waiting, no commit (what a crash leaves behind).
    Abort,
}

/// What every member of the process shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: KafkaConfig,
    pub(crate) sinks: SinkRegistry,
    pub(crate) metrics: KafkaMetrics,
}

type TopicPartition = (Arc<str>, i32);

#[derive(Debug)]
struct PartitionState {
    epoch: u64,
    tracker: OffsetTracker,
    metrics: PartitionMetrics,
}

/// The trackers of the partitions a member owns. Shared with the rebalance callback, which
/// runs on the member's own task (inside its poll of the consumer), so the lock never waits.
#[derive(Debug, Default)]
struct Book {
    partitions: HashMap<TopicPartition, PartitionState>,
    next_epoch: u64,
}

/// A message's place: its partition's tracker generation and its offset.
#[derive(Debug, Clone)]
struct Key {
    topic: Arc<str>,
    partition: i32,
    epoch: u64,
    offset: i64,
}

impl Book {
    /// Tracks `offset`; returns the tracker's epoch. An offset that goes backwards means the
    /// partition was rewound (re-assigned, or its position reset): the old tracker is replaced
    /// and outcomes for it are ignored.
    fn track(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        offset: i64,
        metrics: &PartitionMetrics,
    ) -> u64 {
        let key = (topic.clone(), partition);
        let next_epoch = &mut self.next_epoch;
        let state = self.partitions.entry(key).or_insert_with(|| {
            *next_epoch += 1;
            PartitionState {
                epoch: *next_epoch,
                tracker: OffsetTracker::new(),
                metrics: metrics.clone(),
            }
        });
        if let Err(e) = state.tracker.track(offset) {
            warn!(topic = %topic, partition, %e, "partition rewound; starting its offsets afresh");
            *next_epoch += 1;
            state.epoch = *next_epoch;
            state.tracker = OffsetTracker::new();
            // A fresh tracker accepts any first offset.
            let _ = state.tracker.track(offset);
        }
        state.epoch
    }

    fn state(&mut self, key: &Key) -> Option<&mut PartitionState> {
        self.partitions
            .get_mut(&(key.topic.clone(), key.partition))
            .filter(|s| s.epoch == key.epoch)
    }

    /// Whether `key`'s tracker is still the live one.
    fn is_live(&mut self, key: &Key) -> bool {
        self.state(key).is_some()
    }

    /// Resolves the message at `key`; false when its partition is no longer owned.
    fn resolve(&mut self, key: &Key) -> bool {
        self.state(key)
            .is_some_and(|s| s.tracker.resolve(key.offset))
    }

    /// Commit points that moved, for `only` these partitions (all when `None`).
    fn to_commit(&self, only: Option<&HashSet<TopicPartition>>) -> Vec<(TopicPartition, i64)> {
        let mut out: Vec<_> = self
            .partitions
            .iter()
            .filter(|(tp, _)| only.is_none_or(|o| o.contains(*tp)))
            .filter_map(|(tp, s)| s.tracker.to_commit().map(|o| (tp.clone(), o)))
            .collect();
        out.sort();
        out
    }

    fn mark_committed(&mut self, points: &[(TopicPartition, i64)]) {
        for (tp, offset) in points {
            if let Some(s) = self.partitions.get_mut(tp) {
                s.tracker.committed(*offset);
                s.metrics.committed(*offset);
            }
        }
    }

    /// Messages whose outcome is not final, over all owned partitions.
    fn unresolved(&self) -> usize {
        self.partitions
            .values()
            .map(|s| s.tracker.in_flight())
            .sum()
    }
}

fn commit_offsets<C: ConsumerContext, K: Consumer<C>>(
    consumer: &K,
    points: &[(TopicPartition, i64)],
) -> KafkaResult<()> {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in points {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    consumer.commit(&tpl, CommitMode::Sync)
}

fn describe(points: &[(TopicPartition, i64)]) -> String {
    let parts: Vec<String> = points
        .iter()
        .map(|((t, p), o)| format!("{t}[{p}]={o}"))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// The consumer's context: commits done offsets when partitions are revoked, and turns
/// librdkafka's statistics into the lag gauge.
#[derive(Debug)]
pub(crate) struct MemberContext {
    member: usize,
    book: Arc<Mutex<Book>>,
    metrics: KafkaMetrics,
}

impl ClientContext for MemberContext {
    fn stats(&self, statistics: Statistics) {
        let book = self.book.lock();
        for (topic, t) in &statistics.topics {
            let topic: Arc<str> = Arc::from(topic.as_str());
            for (partition, p) in &t.partitions {
                if *partition < 0 || p.hi_offset < 0 {
                    continue;
                }
                let lag = if p.committed_offset >= 0 {
                    p.hi_offset - p.committed_offset
                } else {
                    p.consumer_lag
                };
                // Messages not yet accounted for: everything from the oldest one still waiting
                // for an outcome, even when it was consumed long ago.
                let waiting_from = book
                    .partitions
                    .get(&(topic.clone(), *partition))
                    .and_then(|s| s.tracker.oldest_unresolved());
                let behind = waiting_from.map_or(lag, |o| lag.max(p.hi_offset - o));
                if lag >= 0 || behind > 0 {
                    self.metrics.partition(&topic, *partition).lag(lag, behind);
                }
            }
        }
    }
}

impl ConsumerContext for MemberContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let revoked: HashSet<TopicPartition> = tpl
                    .elements()
                    .iter()
                    .map(|e| (Arc::from(e.topic()), e.partition()))
                    .collect();
                let mut book = self.book.lock();
                let points = book.to_commit(Some(&revoked));
                if !points.is_empty() {
                    match commit_offsets(consumer, &points) {
                        Ok(()) => {
                            book.mark_committed(&points);
                            info!(
                                member = self.member,
                                "Committed offsets {} of revoked partitions.",
                                describe(&points)
                            );
                        }
                        Err(e) => warn!(
                            member = self.member,
                            error = %e,
                            "committing offsets {} of revoked partitions failed; their new owner starts from the previous commit",
                            describe(&points)
                        ),
                    }
                }
                for tp in &revoked {
                    book.partitions.remove(tp);
                }
                self.metrics.owned(revoked.iter().cloned(), false);
                info!(
                    member = self.member,
                    partitions = revoked.len(),
                    "partitions revoked"
                );
            }
            Rebalance::Assign(tpl) => {
                self.metrics.owned(
                    tpl.elements()
                        .iter()
                        .map(|e| (Arc::from(e.topic()), e.partition())),
                    true,
                );
                info!(
                    member = self.member,
                    partitions = tpl.count(),
                    "partitions assigned"
                );
            }
            Rebalance::Error(e) => warn!(member = self.member, error = %e, "rebalance failed"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, _: &Rebalance<'_>) {
        let owned = consumer.assignment().map(|t| t.count()).unwrap_or(0);
        self.metrics.assigned(self.member, owned);
    }
}

type MemberConsumer = StreamConsumer<MemberContext>;

/// Creates a member's consumer (checked at start-up, before any task runs).
fn create_consumer(
    shared: &Shared,
    member: usize,
) -> Result<(MemberConsumer, Arc<Mutex<Book>>), KafkaError> {
    let book = Arc::new(Mutex::new(Book::default()));
    let mut client = shared.config.client_config();
    if !shared
        .config
        .client_properties
        .contains_key("statistics.interval.ms")
    {
        // Statistics carry the high watermarks the lag gauge needs.
        client.set("statistics.interval.ms", "5000");
    }
    let consumer = client
        .create_with_context(MemberContext {
            member,
            book: book.clone(),
            metrics: shared.metrics.clone(),
        })
        .map_err(KafkaError::CreateConsumer)?;
    Ok((consumer, book))
}

/// Owns the consumer and never destroys it (see the module docs).
struct Leaked {
    consumer: Option<Arc<MemberConsumer>>,
}

impl Leaked {
    /// Leaves the group cleanly: unsubscribe, serve the resulting events once, leak.
    async fn close(mut self) {
        if let Some(c) = self.consumer.take() {
            c.unsubscribe();
            let _ = tokio::time::timeout(Duration::from_secs(1), c.recv()).await;
            std::mem::forget(c);
        }
    }
}

impl Drop for Leaked {
    fn drop(&mut self) {
        if let Some(c) = self.consumer.take() {
            // Leaving the group lets the others take the partitions without waiting for the
            // session to time out.
            c.unsubscribe();
            std::mem::forget(c);
        }
    }
}

/// A message handed to a sink, with what is needed to retry it.
struct Pending {
    key: Key,
    raw: Bytes,
    attempts: u32,
    route: usize,
    sink: Arc<dyn EventSink>,
    metrics: PartitionMetrics,
}

fn send(p: Pending) -> BoxFuture<'static, (Pending, Outcome)> {
    let outcome = p.sink.send(p.raw.clone());
    Box::pin(async move { (p, outcome.await) })
}

/// True when `raw` starts (after whitespace) like a JSON object; the pipeline's timestamp
/// extraction validates the rest.
fn looks_like_object(raw: &[u8]) -> bool {
    raw.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// One group member's loop.
pub(crate) struct Member {
    index: usize,
    shared: Arc<Shared>,
    consumer: Arc<MemberConsumer>,
    book: Arc<Mutex<Book>>,
    topics: HashSet<Arc<str>>,
    partition_metrics: HashMap<TopicPartition, PartitionMetrics>,
    subscribed: Vec<String>,
    window: CommitWindow,
    totals: BTreeMap<Arc<str>, TopicCounts>,
    inflight: FuturesUnordered<BoxFuture<'static, (Pending, Outcome)>>,
    retries: FuturesUnordered<BoxFuture<'static, Pending>>,
    /// When the member reached `max_in_flight` (it takes no message while full).
    full_since: Option<tokio::time::Instant>,
    /// Its partitions are paused: full for longer than `pause_after`.
    paused: bool,
    draining: bool,
    fatal: Option<KafkaError>,
}

impl Member {
    /// A member with its own consumer (a bad client property fails here).
    pub(crate) fn create(index: usize, shared: Arc<Shared>) -> Result<Self, KafkaError> {
        let (consumer, book) = create_consumer(&shared, index)?;
        Ok(Self {
            index,
            shared,
            consumer: Arc::new(consumer),
            book,
            topics: HashSet::new(),
            partition_metrics: HashMap::new(),
            subscribed: Vec::new(),
            window: CommitWindow::default(),
            totals: BTreeMap::new(),
            inflight: FuturesUnordered::new(),
            retries: FuturesUnordered::new(),
            full_since: None,
            paused: false,
            draining: false,
            fatal: None,
        })
    }

    /// Runs until stopped, aborted or failed; reports the outcome on `done`.
    pub(crate) async fn run(
        mut self,
        mut control: watch::Receiver<Control>,
        done: mpsc::UnboundedSender<Result<(), KafkaError>>,
    ) {
        let leaked = Leaked {
            consumer: Some(self.consumer.clone()),
        };
        let result = self.consume(&mut control).await;
        match result {
            Ok(true) => {
                // Forget every tracker first, so the revocation that leaving triggers commits
                // nothing: an abort leaves the committed offsets as a crash would.
                self.book.lock().partitions.clear();
                leaked.close().await;
                info!(
                    member = self.index,
                    "consumer aborted without a final commit"
                );
                let _ = done.send(Ok(()));
            }
            Ok(false) => {
                leaked.close().await;
                info!(
                    member = self.index,
                    "Kafka consumer stopped; totals {}",
                    format_counts(&self.totals)
                );
                let _ = done.send(self.fatal.take().map_or(Ok(()), Err));
            }
            Err(e) => {
                leaked.close().await;
                let _ = done.send(Err(e));
            }
        }
    }

    /// The loop; `Ok(true)` when aborted.
    async fn consume(
        &mut self,
        control: &mut watch::Receiver<Control>,
    ) -> Result<bool, KafkaError> {
        let consumer = self.consumer.clone();
        // `&self` may not live across an await (the loop's futures are not `Sync`).
        let first_fetch = self.spawn_metadata_fetch();
        match first_fetch.await {
            Ok(Ok(topics)) => self.subscribe(topics)?,
            Ok(Err(e)) => {
                warn!(member = self.index, error = %e, "listing topics failed; trying again later")
            }
            Err(e) => {
                warn!(member = self.index, error = %e, "listing topics failed; trying again later")
            }
        }
        let mut commit_tick = tokio::time::interval(self.shared.config.commit_period);
        commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        commit_tick.tick().await;
        let mut refresh_tick = tokio::time::interval(self.shared.config.options.topic_refresh);
        refresh_tick.tick().await;
        let mut refreshing: Option<tokio::task::JoinHandle<KafkaResult<Vec<String>>>> = None;
        let mut control_open = true;

        loop {
            if self.draining && self.inflight.is_empty() {
                break;
            }
            // Full: take no message (librdkafka's bounded prefetch stops fetching), but once
            // full for too long pause the partitions and poll again, so the member stays
            // within `max.poll.interval.ms` and serves rebalances.
            let full = self.full_since.is_some();
            let pause_at = self
                .full_since
                .filter(|_| !self.paused)
                .map(|since| since + self.shared.config.options.pause_after);
            tokio::select! {
                biased;
                changed = control.changed(), if control_open => {
                    let c = match changed {
                        Ok(()) => *control.borrow_and_update(),
                        Err(_) => { control_open = false; Control::Stop }
                    };
                    match c {
                        Control::Run => {}
                        Control::Stop => self.start_draining(),
                        Control::Abort => return Ok(true),
                    }
                }
                Some((pending, outcome)) = self.inflight.next() => self.on_outcome(pending, outcome),
                Some(pending) = self.retries.next(), if !self.draining => self.on_retry_due(pending),
                _ = commit_tick.tick() => self.commit("periodic"),
                () = async {
                    match pause_at {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                }, if pause_at.is_some() => self.pause(),
                _ = refresh_tick.tick(), if refreshing.is_none() && !self.draining => {
                    refreshing = Some(self.spawn_metadata_fetch());
                }
                fetched = async {
                    match refreshing.as_mut() {
                        Some(h) => h.await,
                        None => std::future::pending().await,
                    }
                }, if refreshing.is_some() => {
                    refreshing = None;
                    match fetched {
                        Ok(Ok(topics)) => {
                            if topics != self.subscribed {
                                self.subscribe(topics)?;
                            }
                        }
                        Ok(Err(e)) => warn!(member = self.index, error = %e, "listing topics failed; trying again later"),
                        Err(e) => warn!(member = self.index, error = %e, "listing topics failed; trying again later"),
                    }
                }
                message = consumer.recv(), if !self.draining && (!full || self.paused) => match message {
                    Ok(m) => {
                        let topic = self.intern(m.topic());
                        let payload = m.payload().map(Bytes::copy_from_slice);
                        let (partition, offset) = (m.partition(), m.offset());
                        drop(m);
                        self.on_message(topic, partition, offset, payload).await;
                    }
                    Err(e) => {
                        // Transient client errors (a broker down, a rebalance in progress):
                        // librdkafka retries by itself.
                        debug!(member = self.index, error = %e, "consumer error");
                    }
                },
            }
        }
        self.commit("final");
        Ok(false)
    }

    fn intern(&mut self, topic: &str) -> Arc<str> {
        if let Some(t) = self.topics.get(topic) {
            return t.clone();
        }
        let t: Arc<str> = Arc::from(topic);
        self.topics.insert(t.clone());
        t
    }

    fn partition_metrics(&mut self, topic: &Arc<str>, partition: i32) -> PartitionMetrics {
        self.partition_metrics
            .entry((topic.clone(), partition))
            .or_insert_with(|| self.shared.metrics.partition(topic, partition))
            .clone()
    }

    fn spawn_metadata_fetch(&self) -> tokio::task::JoinHandle<KafkaResult<Vec<String>>> {
        let consumer = self.consumer.clone();
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
            let mut topics: Vec<String> = metadata
                .topics()
                .iter()
                .map(|t| t.name().to_string())
                .filter(|t| shared.config.mapper.claims(t))
                .collect();
            topics.sort();
            Ok(topics)
        })
    }

    fn subscribe(&mut self, topics: Vec<String>) -> Result<(), KafkaError> {
        if topics.is_empty() {
            if !self.subscribed.is_empty() {
                self.consumer.unsubscribe();
            }
            warn!(member = self.index, "no topic matches any topicPattern yet");
        } else {
            let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
            self.consumer
                .subscribe(&refs)
                .map_err(|source| KafkaError::Subscribe {
                    topics: topics.clone(),
                    source,
                })?;
            info!(member = self.index, topics = ?topics, "subscribed");
        }
        self.subscribed = topics;
        Ok(())
    }

    async fn on_message(
        &mut self,
        topic: Arc<str>,
        partition: i32,
        offset: i64,
        payload: Option<Bytes>,
    ) {
        let metrics = self.partition_metrics(&topic, partition);
        metrics.consumed();
        self.window.topic(&topic).received += 1;
        let Some(target) = self.shared.config.mapper.target(&topic) else {
            self.fail(KafkaError::NoSpecForTopic {
                topic: topic.to_string(),
            });
            return;
        };
        let route = target.route;
        let sink = {
            let config = &self.shared.config.data_sources[route].config;
            match self.shared.sinks.get(config, &target.data_source).await {
                Ok(s) => s,
                Err(message) => {
                    self.fail(KafkaError::Sink {
                        data_source: target.data_source,
                        message,
                    });
                    return;
                }
            }
        };
        let epoch = self.book.lock().track(&topic, partition, offset, &metrics);
        let key = Key {
            topic,
            partition,
            epoch,
            offset,
        };
        let max = self.shared.config.options.max_message_bytes;
        let checked = match payload {
            None => Err(KafkaDropReason::NotJson),
            Some(p) if p.len() > max => Err(KafkaDropReason::TooLarge),
            Some(p) if !looks_like_object(&p) => Err(KafkaDropReason::NotJson),
            Some(p) => Ok(p),
        };
        match checked {
            Err(reason) => {
                sink.drop_unparseable(1);
                self.on_drop(&key, route, &metrics, reason);
            }
            Ok(raw) => {
                self.inflight.push(send(Pending {
                    key,
                    raw,
                    attempts: 1,
                    route,
                    sink,
                    metrics,
                }));
                self.check_full();
            }
        }
    }

    fn on_drop(
        &mut self,
        key: &Key,
        route: usize,
        metrics: &PartitionMetrics,
        reason: KafkaDropReason,
    ) {
        metrics.dropped(reason);
        let counts = self.window.topic(&key.topic);
        if reason.is_parse_failure() {
            counts.unparseable += 1;
        } else {
            counts.dropped += 1;
        }
        let report = self.shared.config.data_sources[route].report;
        let fatal = if reason.is_parse_failure() {
            report.parse.then_some("reportParseExceptions")
        } else {
            report.drops.then_some("reportDropsAsExceptions")
        };
        match fatal {
            // Left unresolved: its offset is never committed.
            Some(property) => self.fail(KafkaError::ReportedDrop {
                topic: key.topic.to_string(),
                partition: key.partition,
                offset: key.offset,
                reason: reason.as_str(),
                property,
            }),
            None => {
                self.book.lock().resolve(key);
            }
        }
    }

    fn on_outcome(&mut self, pending: Pending, outcome: Outcome) {
        match outcome {
            Outcome::Sent => {
                pending.metrics.sent();
                self.window.topic(&pending.key.topic).sent += 1;
                self.book.lock().resolve(&pending.key);
            }
            Outcome::Dropped(reason) => {
                self.on_drop(
                    &pending.key,
                    pending.route,
                    &pending.metrics,
                    KafkaDropReason::Core(reason),
                );
            }
            Outcome::Failed(error) => {
                pending.metrics.failed();
                self.window.topic(&pending.key.topic).failed += 1;
                let key = &pending.key;
                if !self.book.lock().is_live(key) {
                    debug!(topic = %key.topic, partition = key.partition, offset = key.offset,
                        "send failed for a partition no longer owned; its new owner consumes it again");
                } else if self.draining {
                    info!(topic = %key.topic, partition = key.partition, offset = key.offset, error = %error,
                        "send failed while stopping; the message stays uncommitted");
                } else if !error.is_retriable()
                    || !self.shared.config.options.retry.allows(pending.attempts)
                {
                    self.fail(KafkaError::SendFailed {
                        topic: key.topic.to_string(),
                        partition: key.partition,
                        offset: key.offset,
                        attempts: pending.attempts,
                        error: error.to_string(),
                    });
                } else {
                    let delay = self.shared.config.options.retry.backoff(pending.attempts);
                    warn!(topic = %key.topic, partition = key.partition, offset = key.offset,
                        attempt = pending.attempts, error = %error, retry_in = ?delay,
                        "send failed; retrying (the offset is not committed until it succeeds)");
                    self.retries.push(Box::pin(async move {
                        tokio::time::sleep(delay).await;
                        pending
                    }));
                }
            }
        }
        self.check_resume();
    }

    fn on_retry_due(&mut self, mut pending: Pending) {
        if !self.book.lock().is_live(&pending.key) {
            return;
        }
        pending.attempts += 1;
        self.inflight.push(send(pending));
    }

    fn outstanding(&self) -> usize {
        self.inflight.len() + self.retries.len()
    }

    /// Notes when the member becomes full (it then takes no message).
    fn check_full(&mut self) {
        if self.full_since.is_none()
            && self.outstanding() >= self.shared.config.options.max_in_flight
        {
            self.full_since = Some(tokio::time::Instant::now());
        }
    }

    /// Full for `pause_after`: pauses the partitions, which lets the loop poll again without
    /// receiving messages (librdkafka discards what it prefetched; resuming fetches it again).
    fn pause(&mut self) {
        match self.consumer.assignment() {
            Ok(tpl) => match self.consumer.pause(&tpl) {
                Ok(()) => {
                    info!(
                        member = self.index,
                        in_flight = self.outstanding(),
                        "outcomes are slow: paused fetching until half of the messages in flight have one"
                    );
                    self.paused = true;
                }
                Err(e) => warn!(member = self.index, error = %e, "pausing fetching failed"),
            },
            Err(e) => warn!(member = self.index, error = %e, "pausing fetching failed"),
        }
        // Retried at the next deadline if it failed.
        self.full_since = Some(tokio::time::Instant::now());
    }

    /// Takes messages again below `max_in_flight`; resumes paused partitions at half of it.
    fn check_resume(&mut self) {
        let max = self.shared.config.options.max_in_flight;
        let outstanding = self.outstanding();
        if self.paused {
            if outstanding > max / 2 {
                return;
            }
            // Resume every partition: ones assigned while paused were never paused, which
            // resuming leaves as they are.
            match self
                .consumer
                .assignment()
                .and_then(|tpl| self.consumer.resume(&tpl))
            {
                Ok(()) => {
                    info!(member = self.index, "resumed fetching");
                    self.paused = false;
                    self.full_since = None;
                }
                Err(e) => {
                    warn!(member = self.index, error = %e, "resuming fetching failed; trying again at the next outcome")
                }
            }
        } else if outstanding < max {
            self.full_since = None;
        }
    }

    fn fail(&mut self, error: KafkaError) {
        error!(member = self.index, %error, "stopping the connector");
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
        self.retries = FuturesUnordered::new();
        let shared = self.shared.clone();
        tokio::spawn(async move {
            for sink in shared.sinks.all().await {
                sink.flush().await;
            }
        });
        info!(
            member = self.index,
            in_flight = self.inflight.len(),
            "stopping: waiting for the outcomes of messages in flight"
        );
    }

    fn commit(&mut self, why: &str) {
        let counts = self.window.take();
        for (topic, c) in &counts {
            let t = self.totals.entry(topic.clone()).or_default();
            t.received += c.received;
            t.sent += c.sent;
            t.dropped += c.dropped;
            t.unparseable += c.unparseable;
            t.failed += c.failed;
        }
        let points = self.book.lock().to_commit(None);
        if points.is_empty() {
            if !counts.is_empty() {
                info!(
                    member = self.index,
                    unresolved = self.book.lock().unresolved(),
                    "Handled {} since the last commit; no offset to commit yet.",
                    format_counts(&counts)
                );
            }
            return;
        }
        let started = Instant::now();
        match commit_offsets(&*self.consumer, &points) {
            Ok(()) => {
                self.book.lock().mark_committed(&points);
                info!(
                    member = self.index,
                    commit = why,
                    "Handled {} and committed offsets {} in {}ms.",
                    format_counts(&counts),
                    describe(&points),
                    started.elapsed().as_millis()
                );
            }
            Err(e) => warn!(
                member = self.index,
                error = %e,
                "committing offsets {} failed; trying again at the next commit",
                describe(&points)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_sniffing() {
        assert!(looks_like_object(b"{\"a\":1}"));
        assert!(looks_like_object(b"  \n{"));
        assert!(!looks_like_object(b"[1,2]"));
        assert!(!looks_like_object(b"hello"));
        assert!(!looks_like_object(b""));
        assert!(!looks_like_object(b"   "));
    }

    #[test]
    fn book_ignores_outcomes_of_forgotten_generations() {
        let metrics = KafkaMetrics::default();
        let topic: Arc<str> = Arc::from("t");
        let pm = metrics.partition(&topic, 0);
        let mut book = Book::default();
        let e1 = book.track(&topic, 0, 10, &pm);
        let old = Key {
            topic: topic.clone(),
            partition: 0,
            epoch: e1,
            offset: 10,
        };
        // Revoked, then assigned again from an earlier committed offset.
        book.partitions.remove(&(topic.clone(), 0));
        let e2 = book.track(&topic, 0, 5, &pm);
        assert_ne!(e1, e2);
        assert!(
            !book.resolve(&old),
            "an outcome of the old generation does not count"
        );
        let new = Key {
            topic: topic.clone(),
            partition: 0,
            epoch: e2,
            offset: 5,
        };
        assert!(book.resolve(&new));
        assert_eq!(book.to_commit(None), vec![((topic.clone(), 0), 6)]);
        // A rewind within one generation starts afresh too.
        let e3 = book.track(&topic, 0, 2, &pm);
        assert_ne!(e2, e3);
        assert_eq!(book.to_commit(None), vec![]);
    }
}
