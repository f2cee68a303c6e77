//! Per topic and partition series (consumed, sent, dropped by reason, failed attempts, lag,
//! committed offset), registered in the process's metrics next to the core's per-dataSource
//! ones, and the log line of each commit.

use std::collections::BTreeMap;
use std::sync::Arc;

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
    }

    pub(crate) fn lag(&self, messages: i64) {
        self.lag.set(messages.max(0));
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
        p.lag(8);
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
