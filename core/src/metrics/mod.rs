//! Metrics: per-dataSource event and task counters, exposed in Prometheus text format.
//!
//! Names, help texts and labels live here and nowhere else. Call sites take a
//! [`DataSourceMetrics`] handle once and record through [`events`], never spelling a metric
//! name. Every event received ends up in exactly one of sent, dropped (by reason) or failed,
//! so `received = sent + dropped + failed` holds on a quiet pipeline (pending events are
//! counted in the `pending` gauge until their outcome is known).

pub mod events;

use std::fmt::Write as _;
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};

use crate::beam::{DropReason, Outcome};

/// Labels of per-dataSource series: `dataSource`, spelled as Druid users search for it.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct DataSourceLabel {
    /// The dataSource.
    pub data_source: String,
}

impl EncodeLabelSet for DataSourceLabel {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> std::fmt::Result {
        [("dataSource", self.data_source.as_str())].encode(encoder)
    }
}

/// Labels `dataSource` and one more whose name is fixed per series: `reason` for drops,
/// `kind` for Druid's own row counts (`processed`, `processedWithError`, `thrownAway`,
/// `unparseable`, as Druid spells them).
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct SplitLabels {
    /// The dataSource.
    pub data_source: String,
    /// The second label's name.
    pub name: &'static str,
    /// The second label's value.
    pub value: &'static str,
}

impl SplitLabels {
    fn new(data_source: &str, name: &'static str, value: &'static str) -> Self {
        let data_source = data_source.to_string();
        Self {
            data_source,
            name,
            value,
        }
    }
}

impl EncodeLabelSet for SplitLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> std::fmt::Result {
        [
            ("dataSource", self.data_source.as_str()),
            (self.name, self.value),
        ]
        .encode(encoder)
    }
}

/// The `kind`s of Druid's row counts, in the order of `DataSourceMetrics::druid_rows`.
pub const DRUID_ROW_KINDS: [&str; 4] = [
    "processed",
    "processedWithError",
    "thrownAway",
    "unparseable",
];

/// The process's metrics: core series plus whatever other components register.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    received: Family<DataSourceLabel, Counter>,
    sent: Family<DataSourceLabel, Counter>,
    dropped: Family<SplitLabels, Counter>,
    failed: Family<DataSourceLabel, Counter>,
    pending: Family<DataSourceLabel, Gauge>,
    tasks_active: Family<DataSourceLabel, Gauge>,
    tasks_created: Family<DataSourceLabel, Counter>,
    druid_rows: Family<SplitLabels, Gauge>,
}

impl Metrics {
    /// A registry with the core series registered.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let metrics = Metrics {
            received: Family::default(),
            sent: Family::default(),
            dropped: Family::default(),
            failed: Family::default(),
            pending: Family::default(),
            tasks_active: Family::default(),
            tasks_created: Family::default(),
            druid_rows: Family::default(),
            registry: Mutex::new(Registry::default()),
        };
        // One (name, help) per series, registered in exposition order.
        macro_rules! register {
            ($($field:ident: $name:literal, $help:literal;)*) => {
                $(registry.register($name, $help, metrics.$field.clone());)*
            };
        }
        register! {
            received: "tranquility_events_received",
                "Events handed to Tranquility";
            sent: "tranquility_events_sent",
                "Events accepted by at least one Druid task";
            dropped: "tranquility_events_dropped",
                "Events deliberately not sent, by reason";
            failed: "tranquility_events_failed",
                "Events whose sending gave up with an error";
            pending: "tranquility_events_pending",
                "Events received whose outcome is not known yet";
            tasks_active: "tranquility_tasks_active",
                "Druid tasks currently receiving events";
            tasks_created: "tranquility_tasks_created",
                "Druid tasks created through the Overlord";
            druid_rows: "tranquility_druid_rows",
                "Rows Druid's own ingestion counted for the dataSource, by kind (supervisor backend: \
                 the running tasks of GET /druid/indexer/v1/supervisor/{id}/stats)";
        }
        *metrics.registry.lock() = registry;
        Arc::new(metrics)
    }

    /// Registers another component's metric in the same exposition.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry.lock().register(name, help, metric);
    }

    /// A handle with the series of one dataSource, created (at zero) if new.
    pub fn data_source(&self, data_source: &str) -> DataSourceMetrics {
        let label = DataSourceLabel {
            data_source: data_source.to_string(),
        };
        let dropped = DropReason::ALL.map(|reason| {
            let labels = SplitLabels::new(data_source, "reason", reason.as_str());
            self.dropped.get_or_create(&labels).clone()
        });
        DataSourceMetrics {
            data_source: Arc::from(data_source),
            received: self.received.get_or_create(&label).clone(),
            sent: self.sent.get_or_create(&label).clone(),
            dropped,
            failed: self.failed.get_or_create(&label).clone(),
            pending: self.pending.get_or_create(&label).clone(),
            tasks_active: self.tasks_active.get_or_create(&label).clone(),
            tasks_created: self.tasks_created.get_or_create(&label).clone(),
            druid_rows: DRUID_ROW_KINDS.map(|kind| {
                let labels = SplitLabels::new(data_source, "kind", kind);
                self.druid_rows.get_or_create(&labels).clone()
            }),
        }
    }

    /// The Prometheus text exposition of every registered series.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry.lock()) {
            let _ = writeln!(out, "# encoding failed: {e}");
        }
        out
    }
}

/// The core series of one dataSource. Cheap to clone; all clones count into the same series.
#[derive(Debug, Clone)]
pub struct DataSourceMetrics {
    data_source: Arc<str>,
    received: Counter,
    sent: Counter,
    dropped: [Counter; DropReason::ALL.len()],
    failed: Counter,
    pending: Gauge,
    tasks_active: Gauge,
    tasks_created: Counter,
    druid_rows: [Gauge; DRUID_ROW_KINDS.len()],
}

impl DataSourceMetrics {
    /// The dataSource these series belong to.
    pub fn data_source(&self) -> &str {
        &self.data_source
    }

    fn dropped_counter(&self, reason: DropReason) -> &Counter {
        &self.dropped[reason.index()]
    }

    /// Current totals, for responses, logs and tests.
    pub fn snapshot(&self) -> Tally {
        let mut dropped = [0; DropReason::ALL.len()];
        for (slot, counter) in dropped.iter_mut().zip(&self.dropped) {
            *slot = counter.get();
        }
        Tally {
            received: self.received.get(),
            sent: self.sent.get(),
            dropped,
            failed: self.failed.get(),
        }
    }

    /// Events currently pending.
    pub fn pending(&self) -> i64 {
        self.pending.get()
    }

    /// Druid's own row counts, in [`DRUID_ROW_KINDS`] order.
    pub fn druid_rows(&self) -> [i64; DRUID_ROW_KINDS.len()] {
        self.druid_rows.each_ref().map(Gauge::get)
    }
}

/// Counts of outcomes: how many events were received, sent, dropped (by reason) and failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Events received.
    pub received: u64,
    /// Events sent.
    pub sent: u64,
    /// Events dropped, indexed like [`DropReason::ALL`].
    pub dropped: [u64; DropReason::ALL.len()],
    /// Events failed.
    pub failed: u64,
}

impl Tally {
    /// Counts a slice of outcomes (each one also counts as received).
    pub fn of(outcomes: &[Outcome]) -> Self {
        let mut tally = Tally::default();
        for outcome in outcomes {
            tally.add(outcome);
        }
        tally
    }

    /// Counts one outcome (also as received).
    pub fn add(&mut self, outcome: &Outcome) {
        self.received += 1;
        self.count(outcome, 1);
    }

    /// Counts `n` events with `outcome`, not as received (for events counted when handed in).
    pub fn count(&mut self, outcome: &Outcome, n: u64) {
        match outcome {
            Outcome::Sent => self.sent += n,
            Outcome::Failed(_) => self.failed += n,
            Outcome::Dropped(reason) => self.dropped[reason.index()] += n,
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Tally) {
        self.received += other.received;
        self.sent += other.sent;
        self.failed += other.failed;
        for (total, add) in self.dropped.iter_mut().zip(other.dropped) {
            *total += add;
        }
    }

    /// All dropped events, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Dropped events for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// Reasons with a non-zero count, with their counts.
    pub fn drop_reasons(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .zip(self.dropped)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (*r, n))
    }

    /// True when every received event has exactly one outcome counted.
    pub fn is_balanced(&self) -> bool {
        self.received == self.sent + self.dropped_total() + self.failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beam::SendError;

    #[test]
    fn exposition_names_and_labels() {
        let metrics = Metrics::new();
        let wiki = metrics.data_source("wiki");
        events::EventsReceived { count: 5 }.emit(&wiki);
        events::record_outcomes(
            &wiki,
            &[
                Outcome::Sent,
                Outcome::Sent,
                Outcome::Dropped(DropReason::OutsideWindow),
                Outcome::failed(SendError::Other("boom".into())),
            ],
        );
        let text = metrics.encode();
        assert!(
            text.contains("tranquility_events_received_total{dataSource=\"wiki\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("tranquility_events_sent_total{dataSource=\"wiki\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "tranquility_events_dropped_total{dataSource=\"wiki\",reason=\"outside_window\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("tranquility_events_failed_total{dataSource=\"wiki\"} 1"),
            "{text}"
        );
        // Four of five outcomes are known; one is still pending.
        assert!(
            text.contains("tranquility_events_pending{dataSource=\"wiki\"} 1"),
            "{text}"
        );
        let tally = wiki.snapshot();
        assert_eq!(tally.received, 5);
        assert!(!tally.is_balanced());
    }

    #[test]
    fn tally_balances() {
        let outcomes = [
            Outcome::Sent,
            Outcome::Dropped(DropReason::Unparseable),
            Outcome::Dropped(DropReason::Unparseable),
            Outcome::failed(SendError::Other("x".into())),
        ];
        let tally = Tally::of(&outcomes);
        assert_eq!(tally.received, 4);
        assert_eq!(tally.dropped(DropReason::Unparseable), 2);
        assert_eq!(tally.dropped_total(), 2);
        assert!(tally.is_balanced());
        assert_eq!(
            tally.drop_reasons().collect::<Vec<_>>(),
            [(DropReason::Unparseable, 2)]
        );
    }

    #[test]
    fn clones_share_series() {
        let metrics = Metrics::new();
        let a = metrics.data_source("x");
        let b = metrics.data_source("x");
        events::EventsReceived { count: 2 }.emit(&a);
        events::record_outcomes(&b, &[Outcome::Sent, Outcome::Sent]);
        assert_eq!(a.snapshot().sent, 2);
        assert!(a.snapshot().is_balanced());
        assert_eq!(a.pending(), 0);
    }
}
