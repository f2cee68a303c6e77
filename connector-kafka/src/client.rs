//! The rdkafka client behind the core's source driver, with librdkafka's quirks in one place.
//!
//! - **Subscription**: the topics are those of the broker's metadata that some dataSource's
//!   `topicPattern` claims, listed at start and again every `topic_refresh`.
//! - **Rebalances** run inside the consumer's poll, on the driver's task: a revocation commits
//!   the done offsets of the revoked partitions before they go (through the driver's
//!   [`Partitions`]), an assignment marks them owned. librdkafka's statistics give the lag.
//! - **Cancellation**: `StreamConsumer::recv` is cancellation safe (rdkafka's docs say so), so
//!   `next()` may race it against the topic refresh; the driver itself never cancels `next()`.
//! - **Producer ids**: the cluster id names the cluster in the producer ids under which the
//!   core pushes each partition's messages (see `tranquility::source::Origin`); a revocation
//!   fences the revoked partitions' pushes before the rebalance goes on.
//! - **Pausing** discards librdkafka's prefetched messages (they are fetched again on resume),
//!   which is why the driver pauses only after `pause_after` at its in-flight bound.
//! - **Never destroying the consumer**: against some brokers (seen with tansu) librdkafka 2.12's
//!   `rd_kafka_destroy` of a group consumer waits forever for a broker thread, which would hang
//!   whichever thread drops it. So a consumer is never destroyed: closing unsubscribes (the
//!   group gives its partitions to the others at once), polls once more so the leave
//!   completes, and leaks it. A process runs a handful of members in its lifetime, so the leak
//!   is bounded.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use tranquility::source::{
    PartitionId, Partitions, Position, RecordSource, SourceError, SourceRecord,
};

use crate::config::KafkaConfig;
use crate::error::KafkaError;

type MemberConsumer = StreamConsumer<MemberContext>;

/// The consumer's context: rebalances and statistics go to the driver's partition book.
#[derive(Debug)]
pub(crate) struct MemberContext {
    partitions: OnceLock<Partitions>,
}

fn partition_ids(tpl: &TopicPartitionList) -> Vec<PartitionId> {
    tpl.elements()
        .iter()
        .map(|e| PartitionId::new(e.topic(), e.partition()))
        .collect()
}

fn commit_offsets<C: ConsumerContext, K: Consumer<C>>(
    consumer: &K,
    points: &[Position],
) -> Result<(), SourceError> {
    let commit = || -> KafkaResult<()> {
        let mut tpl = TopicPartitionList::new();
        for p in points {
            let (topic, partition) = (&p.partition.topic, p.partition.partition);
            tpl.add_partition_offset(topic, partition, Offset::Offset(p.offset))?;
        }
        consumer.commit(&tpl, CommitMode::Sync)
    };
    commit().map_err(SourceError::new)
}

impl ClientContext for MemberContext {
    fn stats(&self, statistics: Statistics) {
        let Some(partitions) = self.partitions.get() else {
            return;
        };
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
                let id = PartitionId::new(topic.clone(), *partition);
                partitions.lag(&id, lag, p.hi_offset);
            }
        }
    }
}

impl ConsumerContext for MemberContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Some(partitions) = self.partitions.get() else {
            return;
        };
        match rebalance {
            Rebalance::Revoke(tpl) => {
                partitions.revoke(&partition_ids(tpl), |points| {
                    commit_offsets(consumer, points)
                });
            }
            Rebalance::Assign(tpl) => partitions.assigned(&partition_ids(tpl)),
            Rebalance::Error(e) => warn!(error = %e, "rebalance failed"),
        }
    }
}

/// One group member's consumer.
pub(crate) struct KafkaSource {
    member: usize,
    config: Arc<KafkaConfig>,
    consumer: Arc<MemberConsumer>,
    reader: tokio::sync::Mutex<Reader>,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

/// What a turn of `next()`'s loop saw.
enum Step<M> {
    Listed(Result<KafkaResult<Vec<String>>, tokio::task::JoinError>),
    Refresh,
    Message(KafkaResult<M>),
}

/// What only `next()` touches.
#[derive(Debug, Default)]
struct Reader {
    /// The topics subscribed to; `None` before the first listing.
    subscribed: Option<Vec<String>>,
    refresh: Option<tokio::time::Interval>,
    refreshing: Option<JoinHandle<KafkaResult<Vec<String>>>>,
    /// Topic names, allocated once.
    topics: HashSet<Arc<str>>,
}

impl KafkaSource {
    /// A member's consumer; a property librdkafka refuses fails here, before any task runs.
    pub(crate) fn create(member: usize, config: Arc<KafkaConfig>) -> Result<Self, KafkaError> {
        let mut client = config.client_config();
        if !config
            .client_properties
            .contains_key("statistics.interval.ms")
        {
            // Statistics carry the high watermarks the lag gauge needs.
            client.set("statistics.interval.ms", "5000");
        }
        let consumer: MemberConsumer = client
            .create_with_context(MemberContext {
                partitions: OnceLock::new(),
            })
            .map_err(KafkaError::CreateConsumer)?;
        let consumer = Arc::new(consumer);
        // Never destroyed (see the module docs): this reference is never given back.
        std::mem::forget(consumer.clone());
        Ok(Self {
            member,
            config,
            consumer,
            reader: tokio::sync::Mutex::default(),
        })
    }

    /// Names the cluster in the producer ids of its partitions (`kafka:<cluster id>`), so that
    /// two clusters' topics of the same name feeding one dataSource never share one. Without
    /// an answer the name is `kafka` alone (a later start that gets one pushes under other ids,
    /// so a message read again across those two starts may be ingested twice).
    async fn name_cluster(&self) {
        let Some(partitions) = self.consumer.context().partitions.get() else {
            return;
        };
        let consumer = self.consumer.clone();
        let cluster = tokio::task::spawn_blocking(move || {
            consumer.client().fetch_cluster_id(Duration::from_secs(10))
        })
        .await
        .ok()
        .flatten()
        .filter(|id| !id.is_empty());
        let namespace = match &cluster {
            Some(id) => format!("kafka:{id}"),
            None => {
                warn!(
                    member = self.member,
                    "the cluster id could not be read; producer ids name no cluster"
                );
                "kafka".to_owned()
            }
        };
        debug!(member = self.member, %namespace, "producer ids of this cluster's partitions");
        partitions.name_source(namespace);
    }

    fn spawn_metadata_fetch(&self) -> JoinHandle<KafkaResult<Vec<String>>> {
        let consumer = self.consumer.clone();
        let config = self.config.clone();
        tokio::task::spawn_blocking(move || {
            let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
            let mut topics: Vec<String> = metadata
                .topics()
                .iter()
                .map(|t| t.name().to_string())
                .filter(|t| config.mapper.claims(t))
                .collect();
            topics.sort();
            Ok(topics)
        })
    }

    /// Subscribes to the listed topics when they changed; a failed listing is tried again at
    /// the next refresh.
    fn subscribe(
        &self,
        reader: &mut Reader,
        listed: Result<KafkaResult<Vec<String>>, tokio::task::JoinError>,
    ) -> Result<(), SourceError> {
        let listed = match listed {
            Ok(Ok(topics)) => Ok(topics),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let topics = match listed {
            Ok(topics) => topics,
            Err(error) => {
                warn!(member = self.member, %error, "listing topics failed; trying again later");
                reader.subscribed.get_or_insert_with(Vec::new);
                return Ok(());
            }
        };
        if reader.subscribed.as_ref() == Some(&topics) {
            return Ok(());
        }
        if topics.is_empty() {
            if reader.subscribed.as_ref().is_some_and(|s| !s.is_empty()) {
                self.consumer.unsubscribe();
            }
            warn!(
                member = self.member,
                "no topic matches any topicPattern yet"
            );
        } else {
            let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
            self.consumer.subscribe(&refs).map_err(|e| {
                SourceError::new(format!("subscribing to topics {topics:?} failed: {e}"))
            })?;
            info!(member = self.member, topics = ?topics, "subscribed");
        }
        reader.subscribed = Some(topics);
        Ok(())
    }

    fn record(&self, reader: &mut Reader, m: &impl Message) -> SourceRecord {
        let topic = match reader.topics.get(m.topic()) {
            Some(t) => t.clone(),
            None => {
                let t: Arc<str> = Arc::from(m.topic());
                reader.topics.insert(t.clone());
                t
            }
        };
        SourceRecord {
            partition: PartitionId::new(topic, m.partition()),
            offset: m.offset(),
            payload: m.payload().map(Bytes::copy_from_slice),
        }
    }
}

#[async_trait]
impl RecordSource for KafkaSource {
    fn attach(&self, partitions: Partitions) {
        let _ = self.consumer.context().partitions.set(partitions);
    }

    async fn next(&self) -> Option<Result<SourceRecord, SourceError>> {
        let mut guard = self.reader.lock().await;
        let reader = &mut *guard;
        if reader.subscribed.is_none() {
            // The metadata answer carries the cluster id: asked first, librdkafka then has it
            // at hand (asked cold, it waited about a second for its own metadata refresh).
            let listed = self.spawn_metadata_fetch().await;
            self.name_cluster().await;
            if let Err(e) = self.subscribe(reader, listed) {
                return Some(Err(e));
            }
            let mut refresh = tokio::time::interval(self.config.options.topic_refresh);
            refresh.tick().await;
            reader.refresh = Some(refresh);
        }
        loop {
            let Reader {
                refresh,
                refreshing,
                ..
            } = &mut *reader;
            let can_refresh = refreshing.is_none();
            let step = tokio::select! {
                biased;
                listed = async {
                    match refreshing.as_mut() {
                        Some(h) => h.await,
                        None => std::future::pending().await,
                    }
                } => Step::Listed(listed),
                () = async {
                    match refresh.as_mut() {
                        Some(r) if can_refresh => {
                            r.tick().await;
                        }
                        _ => std::future::pending().await,
                    }
                } => Step::Refresh,
                message = self.consumer.recv() => Step::Message(message),
            };
            match step {
                Step::Listed(listed) => {
                    reader.refreshing = None;
                    if let Err(e) = self.subscribe(reader, listed) {
                        return Some(Err(e));
                    }
                }
                Step::Refresh => reader.refreshing = Some(self.spawn_metadata_fetch()),
                Step::Message(Ok(m)) => return Some(Ok(self.record(reader, &m))),
                // Transient client errors (a broker down, a rebalance in progress): librdkafka
                // retries by itself.
                Step::Message(Err(e)) => {
                    debug!(member = self.member, error = %e, "consumer error")
                }
            }
        }
    }

    async fn commit(&self, positions: &[Position]) -> Result<(), SourceError> {
        commit_offsets(&*self.consumer, positions)
    }

    fn pause(&self) -> Result<bool, SourceError> {
        let tpl = self.consumer.assignment().map_err(SourceError::new)?;
        self.consumer.pause(&tpl).map_err(SourceError::new)?;
        Ok(true)
    }

    fn resume(&self) -> Result<(), SourceError> {
        // Every partition: ones assigned while paused were never paused, which resuming
        // leaves as they are.
        let tpl = self.consumer.assignment().map_err(SourceError::new)?;
        self.consumer.resume(&tpl).map_err(SourceError::new)
    }

    async fn close(&self) {
        self.consumer.unsubscribe();
        // Serves the leave (and the revocation it brings) once.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.consumer.recv()).await;
        info!(member = self.member, "left the consumer group");
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        // Leaving the group lets the others take the partitions without waiting for the
        // session to time out (a no-op after `close`).
        self.consumer.unsubscribe();
    }
}
