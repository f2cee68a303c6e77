//! A source's series per topic and partition (consumed, sent, dropped by reason, failed
//! attempts, lag, committed offset; partitions owned per driver), registered in the process's
//! metrics next to the core's per-dataSource ones, and the progress book behind
//! [`SourceHealth`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use super::PartitionId;
use crate::beam::DropReason;
use crate::metrics::Metrics;

/// Why the driver dropped a record: its own reasons (checked before any send) plus the
/// pipeline's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceDropReason {
    /// The payload is empty or not a JSON object.
    NotJson,
    /// The payload is larger than the configured maximum.
    TooLarge,
    /// The pipeline dropped it.
    Core(DropReason),
}

impl SourceDropReason {
    /// The metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceDropReason::NotJson => "not_json",
            SourceDropReason::TooLarge => "too_large",
            SourceDropReason::Core(r) => r.as_str(),
        }
    }

    /// Whether the record could not be read (as opposed to deliberately not sent).
    pub fn is_parse_failure(&self) -> bool {
        self.core() == DropReason::Unparseable
    }

    /// The pipeline's reason it counts as: a record that is not a JSON object, or too large,
    /// is unparseable.
    pub fn core(&self) -> DropReason {
        match self {
            SourceDropReason::NotJson | SourceDropReason::TooLarge => DropReason::Unparseable,
            SourceDropReason::Core(r) => *r,
        }
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

/// A source's series, shared by every driver of the process that reads it.
#[derive(Debug, Clone, Default)]
pub struct SourceMetrics {
    consumed: Family<PartitionLabels, Counter>,
    sent: Family<PartitionLabels, Counter>,
    dropped: Family<DropLabels, Counter>,
    failed: Family<PartitionLabels, Counter>,
    lag: Family<PartitionLabels, Gauge>,
    committed: Family<PartitionLabels, Gauge>,
    assigned: Family<Vec<(&'static str, String)>, Gauge>,
    progress: Arc<Mutex<HashMap<PartitionId, Progress>>>,
}

/// What the stall check knows of a partition: whether a driver of this process owns it, its
/// lag, and when it last moved (a record consumed, a commit, an assignment).
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
    /// Records not yet accounted for: from the oldest one waiting for an outcome (or the
    /// committed offset) to the high watermark.
    pub lag: i64,
    /// Whole seconds since it last consumed or committed.
    #[serde(rename = "stalledSeconds")]
    pub stalled_seconds: u64,
}

impl SourceMetrics {
    /// Creates the series of the source named `source` (`kafka`, `fluvio`: the series are
    /// `tranquility_<source>_messages_consumed_total` and so on) and registers them.
    pub fn register(metrics: &Metrics, source: &str) -> Self {
        let m = Self::default();
        macro_rules! register {
            ($($metric:ident: $name:literal, $help:literal;)*) => {$(
                let name = format!("tranquility_{source}_{}", $name);
                metrics.register(&name, $help, m.$metric.clone());
            )*};
        }
        register! {
            consumed: "messages_consumed", "Records consumed, by topic and partition";
            sent: "messages_sent", "Records sent to Druid";
            dropped: "messages_dropped", "Records dropped (and committed), by reason";
            failed: "send_failures",
                "Failed send attempts (each is retried or stops the source; never committed)";
            lag: "consumer_lag",
                "Records between the committed offset and the partition's high watermark";
            committed: "committed_offset", "The last offset committed (the next record to consume)";
            assigned: "assigned_partitions",
                "Partitions assigned to each consumer (group member) of this process";
        }
        m
    }

    /// Sets how many partitions `member` owns.
    pub(crate) fn assigned(&self, member: usize, partitions: usize) {
        self.assigned
            .get_or_create(&vec![("member", member.to_string())])
            .set(i64::try_from(partitions).unwrap_or(i64::MAX));
    }

    /// Partitions this process owns whose consumption has lag and has not moved (no record
    /// consumed, no commit) for `timeout`. A partition is logged once when it becomes stalled.
    pub fn stalled(&self, timeout: Duration) -> Vec<StalledPartition> {
        let mut out = Vec::new();
        for (id, p) in self.progress.lock().iter_mut() {
            let idle = p.moved.elapsed();
            if p.owned && p.lag > 0 && idle >= timeout {
                if !p.reported {
                    p.reported = true;
                    tracing::warn!(topic = %id.topic, partition = id.partition, lag = p.lag, idle = ?idle,
                        "consumption stalled: the partition has lag but nothing was consumed or committed");
                }
                out.push(StalledPartition {
                    topic: id.topic.to_string(),
                    partition: id.partition,
                    lag: p.lag,
                    stalled_seconds: idle.as_secs(),
                });
            }
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        out
    }

    /// Marks partitions as owned (assigned to a driver) or not (revoked); both count as
    /// movement.
    pub(crate) fn owned<'a>(
        &self,
        partitions: impl IntoIterator<Item = &'a PartitionId>,
        owned: bool,
    ) {
        let mut book = self.progress.lock();
        for id in partitions {
            let p = book.entry(id.clone()).or_default();
            p.owned = owned;
            p.moved = Instant::now();
            p.reported = false;
        }
    }

    fn progress(&self, id: &PartitionId, update: impl FnOnce(&mut Progress)) {
        update(self.progress.lock().entry(id.clone()).or_default());
    }

    /// The series of one partition.
    pub fn partition(&self, id: &PartitionId) -> PartitionMetrics {
        let labels = PartitionLabels {
            topic: id.topic.clone(),
            partition: id.partition,
        };
        PartitionMetrics {
            family: self.clone(),
            id: id.clone(),
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
    family: SourceMetrics,
    id: PartitionId,
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
        self.family.progress(&self.id, |p| {
            p.moved = Instant::now();
            p.reported = false;
        });
    }

    pub(crate) fn sent(&self) {
        self.sent.inc();
    }

    pub(crate) fn dropped(&self, reason: SourceDropReason) {
        self.family
            .dropped
            .get_or_create(&DropLabels {
                topic: self.id.topic.clone(),
                partition: self.id.partition,
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
    /// how many records are not yet accounted for (`behind`, which also counts consumed
    /// records still waiting for an outcome).
    pub(crate) fn lag(&self, lag: i64, behind: i64) {
        self.lag.set(lag.max(0));
        self.family.progress(&self.id, |p| p.lag = behind);
    }
}

/// Whether consumption is moving, for a health endpoint: a clonable view of a source's
/// progress book.
#[derive(Debug, Clone)]
pub struct SourceHealth {
    metrics: SourceMetrics,
    stall_timeout: Duration,
}

impl SourceHealth {
    /// A view of `metrics` where a partition stalls after `stall_timeout` without moving.
    pub fn new(metrics: SourceMetrics, stall_timeout: Duration) -> Self {
        Self {
            metrics,
            stall_timeout,
        }
    }

    /// Owned partitions with lag that have neither consumed nor committed for the stall
    /// timeout; empty when healthy.
    pub fn stalled(&self) -> Vec<StalledPartition> {
        self.metrics.stalled(self.stall_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_labelled_by_topic_partition_and_reason() {
        let metrics = Metrics::new();
        let k = SourceMetrics::register(&metrics, "kafka");
        let p = k.partition(&PartitionId::new("wiki", 3));
        p.consumed();
        p.consumed();
        p.sent();
        p.dropped(SourceDropReason::NotJson);
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
        let k = SourceMetrics::register(&Metrics::new(), "kafka");
        let id = PartitionId::new("wiki", 0);
        let p = k.partition(&id);
        p.lag(5, 5);
        // Not owned: another process's partition is never ours to report.
        assert!(k.stalled(Duration::ZERO).is_empty());
        k.owned([&id], true);
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
        k.owned([&id], false);
        assert!(k.stalled(Duration::ZERO).is_empty());
    }
}
