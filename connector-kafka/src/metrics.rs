//! Per topic and partition series (consumed, sent, dropped by reason, failed attempts, lag,
//! committed offset), registered in the process's metrics next to the core's per-dataSource
//! ones, and the log line of each commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tranquility::beam::DropReason;
use tranquility::metrics::Metrics;

/// Why the connector dropped a message (its own reasons plus the core's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KafkaDropReason {
    /// The payload is empty or not a JSON object.
    NotJson,
    /// The payload is larger than the configured maximum.
    TooLarge,
    /// The pipeline dropped it.
    Core(DropReason),
}

impl KafkaDropReason {
    /// The metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            KafkaDropReason::NotJson => "not_json",
            KafkaDropReason::TooLarge => "too_large",
            KafkaDropReason::Core(r) => r.as_str(),
        }
    }

    /// Whether the message could not be read (as opposed to deliberately not sent).
    pub fn is_parse_failure(&self) -> bool {
        matches!(
            self,
            KafkaDropReason::NotJson
                | KafkaDropReason::TooLarge
                | KafkaDropReason::Core(DropReason::Unparseable)
        )
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct PartitionLabels {
    topic: Arc<str>,
    partition: i32,
}

impl EncodeLabelSet for PartitionLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> std::fmt::Result {
        let partition = self.partition.to_string();
        [("topic", &*self.topic), ("partition", partition.as_str())].encode(encoder)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct DropLabels {
    topic: Arc<str>,
    partition: i32,
    reason: &'static str,
}

impl EncodeLabelSet for DropLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> std::fmt::Result {
        let partition = self.partition.to_string();
        [
            ("topic", &*self.topic),
            ("partition", partition.as_str()),
            ("reason", self.reason),
        ]
        .encode(encoder)
    }
}

/// The connector's series.
#[derive(Debug, Clone, Default)]
pub struct KafkaMetrics {
    consumed: Family<PartitionLabels, Counter>,
    sent: Family<PartitionLabels, Counter>,
    dropped: Family<DropLabels, Counter>,
    failed: Family<PartitionLabels, Counter>,
    lag: Family<PartitionLabels, Gauge>,
    committed: Family<PartitionLabels, Gauge>,
    assigned: Family<Vec<(&'static str, String)>, Gauge>,
    progress: Arc<Mutex<ProgressBook>>,
}

/// Progress per (topic, partition).
type ProgressBook = HashMap<(Arc<str>, i32), Progress>;

/// What the stall check knows of a partition: whether a member of this process owns it, its
/// lag, and when it last moved (a message consumed, a commit, an assignment).
#[derive(Debug, Clone, Copy)]
struct Progress {
    owned: bool,
    lag: i64,
    moved: Instant,
    /// Whether the stall was already logged, so it is logged once per episode.
    reported: bool,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            owned: false,
            lag: 0,
            moved: Instant::now(),
            reported: false,
        }
    }
}

/// A partition this process owns that has lag and has not moved for the stall timeout.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StalledPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Messages not yet accounted for: from the oldest one waiting for an outcome (or the
    /// committed offset) to the high watermark.
    pub lag: i64,
    /// Whole seconds since it last consumed or committed.
    #[serde(rename = "stalledSeconds")]
    pub stalled_seconds: u64,
}

impl KafkaMetrics {
    /// Creates the series and registers them in `metrics`.
    pub fn register(metrics: &Metrics) -> Self {
        let m = Self::default();
        metrics.register(
            "tranquility_kafka_messages_consumed",
            "Kafka messages consumed, by topic and partition",
            m.consumed.clone(),
        );
        metrics.register(
            "tranquility_kafka_messages_sent",
            "Kafka messages sent to Druid",
            m.sent.clone(),
        );
        metrics.register(
            "tranquility_kafka_messages_dropped",
            "Kafka messages dropped (and committed), by reason",
            m.dropped.clone(),
        );
        metrics.register(
            "tranquility_kafka_send_failures",
            "Failed send attempts of Kafka messages (each is retried or stops the connector; never committed)",
            m.failed.clone(),
        );
        metrics.register(
            "tranquility_kafka_consumer_lag",
            "Messages between the committed offset and the partition's high watermark (from librdkafka statistics)",
            m.lag.clone(),
        );
        metrics.register(
            "tranquility_kafka_committed_offset",
            "The last offset committed (the next message to consume)",
            m.committed.clone(),
        );
        metrics.register(
            "tranquility_kafka_assigned_partitions",
            "Partitions assigned to each group member of this process",
            m.assigned.clone(),
        );
        m
    }

    /// Sets how many partitions `member` owns.
    pub(crate) fn assigned(&self, member: usize, partitions: usize) {
        self.assigned
            .get_or_create(&vec![("member", member.to_string())])
            .set(i64::try_from(partitions).unwrap_or(i64::MAX));
    }

    /// Partitions this process owns whose consumption has lag and has not moved (no message
    /// consumed, no commit) for `timeout`: what `/health` reports as unhealthy. A partition is
    /// logged once when it becomes stalled.
    pub fn stalled(&self, timeout: Duration) -> Vec<StalledPartition> {
        let mut out = Vec::new();
        for ((topic, partition), p) in self.progress.lock().iter_mut() {
            let idle = p.moved.elapsed();
            if p.owned && p.lag > 0 && idle >= timeout {
                if !p.reported {
                    p.reported = true;
                    tracing::warn!(topic = %topic, partition, lag = p.lag, idle = ?idle,
                        "consumption stalled: the partition has lag but nothing was consumed or committed");
                }
                out.push(StalledPartition {
                    topic: topic.to_string(),
                    partition: *partition,
                    lag: p.lag,
                    stalled_seconds: idle.as_secs(),
                });
            }
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        out
    }

    /// Marks partitions as owned (assigned to a member) or not (revoked); both count as
    /// movement.
    pub(crate) fn owned(&self, partitions: impl IntoIterator<Item = (Arc<str>, i32)>, owned: bool) {
        let mut book = self.progress.lock();
        for key in partitions {
            let p = book.entry(key).or_default();
            p.owned = owned;
            p.moved = Instant::now();
            p.reported = false;
        }
    }

    fn progress(&self, topic: &Arc<str>, partition: i32, update: impl FnOnce(&mut Progress)) {
        let mut book = self.progress.lock();
        update(book.entry((topic.clone(), partition)).or_default());
    }

    /// The series of one partition.
    pub fn partition(&self, topic: &Arc<str>, partition: i32) -> PartitionMetrics {
        let labels = PartitionLabels {
            topic: topic.clone(),
            partition,
        };
        PartitionMetrics {
            family: self.clone(),
            topic: topic.clone(),
            partition,
            consumed: self.consumed.get_or_create(&labels).clone(),
            sent: self.sent.get_or_create(&labels).clone(),
            failed: self.failed.get_or_create(&labels).clone(),
            lag: self.lag.get_or_create(&labels).clone(),
            committed: self.committed.get_or_create(&labels).clone(),
        }
    }
}

/// One partition's series.
#[derive(Debug, Clone)]
pub struct PartitionMetrics {
    family: KafkaMetrics,
    topic: Arc<str>,
    partition: i32,
    consumed: Counter,
    sent: Counter,
    failed: Counter,
    lag: Gauge,
    committed: Gauge,
}

impl PartitionMetrics {
    pub(crate) fn consumed(&self) {
        self.consumed.inc();
        self.moved();
    }

    fn moved(&self) {
        self.family.progress(&self.topic, self.partition, |p| {
            p.moved = Instant::now();
            p.reported = false;
        });
    }

    pub(crate) fn sent(&self) {
        self.sent.inc();
    }

    pub(crate) fn dropped(&self, reason: KafkaDropReason) {
        self.family
            .dropped
            .get_or_create(&DropLabels {
                topic: self.topic.clone(),
                partition: self.partition,
                reason: reason.as_str(),
            })
            .inc();
    }

    pub(crate) fn failed(&self) {
        self.failed.inc();
    }

    pub(crate) fn committed(&self, offset: i64) {
        self.committed.set(offset);
        self.moved();
    }

    /// Sets the lag gauge (high watermark minus committed offset) and, for the stall check,
    /// how many messages are not yet accounted for (`behind`, which also counts consumed
    /// messages still waiting for an outcome).
    pub(crate) fn lag(&self, lag: i64, behind: i64) {
        self.lag.set(lag.max(0));
        self.family
            .progress(&self.topic, self.partition, |p| p.lag = behind);
    }
}

/// Outcome counts of one topic since the last commit, for the commit log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicCounts {
    /// Messages consumed.
    pub received: u64,
    /// Messages sent.
    pub sent: u64,
    /// Messages dropped (any reason but unparseable).
    pub dropped: u64,
    /// Messages dropped as unparseable (not JSON, too large, bad or no timestamp).
    pub unparseable: u64,
    /// Failed send attempts (retried or fatal).
    pub failed: u64,
}

/// Counts per topic between two commits.
#[derive(Debug, Default)]
pub(crate) struct CommitWindow {
    counts: BTreeMap<Arc<str>, TopicCounts>,
}

impl CommitWindow {
    pub(crate) fn topic(&mut self, topic: &Arc<str>) -> &mut TopicCounts {
        self.counts.entry(topic.clone()).or_default()
    }

    /// The counts so far, resetting the window.
    pub(crate) fn take(&mut self) -> BTreeMap<Arc<str>, TopicCounts> {
        std::mem::take(&mut self.counts)
    }
}

/// Formats counts like the original's commit line: `{topic={receivedCount=.., ...}}`.
pub fn format_counts(counts: &BTreeMap<Arc<str>, TopicCounts>) -> String {
    let inner: Vec<String> = counts
        .iter()
        .map(|(t, c)| {
            format!(
                "{t}={{receivedCount={}, sentCount={}, droppedCount={}, unparseableCount={}, failedCount={}}}",
                c.received, c.sent, c.dropped, c.unparseable, c.failed
            )
        })
        .collect();
    format!("{{{}}}", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_labelled_by_topic_partition_and_reason() {
        let metrics = Metrics::new();
        let k = KafkaMetrics::register(&metrics);
        let topic: Arc<str> = Arc::from("wiki");
        let p = k.partition(&topic, 3);
        p.consumed();
        p.consumed();
        p.sent();
        p.dropped(KafkaDropReason::NotJson);
        p.failed();
        p.committed(2);
        p.lag(8, 8);
        let text = metrics.encode();
        for line in [
            "tranquility_kafka_messages_consumed_total{topic=\"wiki\",partition=\"3\"} 2",
            "tranquility_kafka_messages_sent_total{topic=\"wiki\",partition=\"3\"} 1",
            "tranquility_kafka_messages_dropped_total{topic=\"wiki\",partition=\"3\",reason=\"not_json\"} 1",
            "tranquility_kafka_send_failures_total{topic=\"wiki\",partition=\"3\"} 1",
            "tranquility_kafka_consumer_lag{topic=\"wiki\",partition=\"3\"} 8",
            "tranquility_kafka_committed_offset{topic=\"wiki\",partition=\"3\"} 2",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn an_owned_partition_with_lag_that_does_not_move_is_stalled() {
        let k = KafkaMetrics::register(&Metrics::new());
        let topic: Arc<str> = Arc::from("wiki");
        let p = k.partition(&topic, 0);
        p.lag(5, 5);
        // Not owned: another process's partition is never ours to report.
        assert!(k.stalled(Duration::ZERO).is_empty());
        k.owned([(topic.clone(), 0)], true);
        assert!(
            k.stalled(Duration::from_secs(60)).is_empty(),
            "just assigned"
        );
        let stalled = k.stalled(Duration::ZERO);
        assert_eq!(
            stalled,
            [StalledPartition {
                topic: "wiki".into(),
                partition: 0,
                lag: 5,
                stalled_seconds: 0
            }]
        );
        // No lag: idle but caught up is healthy.
        p.lag(0, 0);
        assert!(k.stalled(Duration::ZERO).is_empty());
        // Moving again clears it; a revoked partition is no longer ours.
        p.lag(5, 5);
        std::thread::sleep(Duration::from_millis(20));
        p.consumed();
        assert!(k.stalled(Duration::from_millis(10)).is_empty());
        k.owned([(topic, 0)], false);
        assert!(k.stalled(Duration::ZERO).is_empty());
    }

    #[test]
    fn commit_line_counts() {
        let mut w = CommitWindow::default();
        let t: Arc<str> = Arc::from("t");
        w.topic(&t).received = 3;
        w.topic(&t).sent = 2;
        w.topic(&t).unparseable = 1;
        let line = format_counts(&w.take());
        assert_eq!(
            line,
            "{t={receivedCount=3, sentCount=2, droppedCount=0, unparseableCount=1, failedCount=0}}"
        );
        assert!(w.take().is_empty());
    }
}
