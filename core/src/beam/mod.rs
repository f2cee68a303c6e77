//! Beams: the one small trait every stage of the pipeline implements, and the per-event outcome.
//!
//! A [`Beam`] takes a batch of events and answers with exactly one [`Outcome`] per event, in
//! input order. Combinators (clustering by interval, partitioning, replication) are beams
//! wrapping beams, so every stack composes and tests alone.
//!
//! What production stacks (see the crate docs): [`Tranquilizer`] (batching in front of any
//! beam, a future per event), [`ClusteredBeam`] (one beam per segment interval, shared through
//! a coordinator) and [`MergingPartitioningBeam`] (partitions by hash). A realtime partition's
//! replica tasks are fanned out inside `druid::beam::DruidBeam`, which merges their answers
//! with [`Outcome::merge_replicas`]; [`ReplicatedBeam`] applies the same rule over any beams,
//! for stacks of your own (and the benchmarks' model of replicas). [`NoopBeam`] answers one
//! fixed outcome; with the `test-util` feature the test doubles are in `testing`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::event::Event;

mod clustered;
mod noop;
mod partition;
mod replicate;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
mod tranquilizer;

pub use clustered::{BeamMaker, ClusteredBeam, ClusteredBeamConfig, Partitioner};
pub use noop::NoopBeam;
pub use partition::MergingPartitioningBeam;
pub use replicate::ReplicatedBeam;
pub use tranquilizer::{
    BatchOutcomes, Linger, OutcomeFuture, Tranquilizer, TranquilizerConfig,
    TranquilizerConfigBuilder, TranquilizerConfigError, TranquilizerObserver, TranquilizerStats,
};

/// What became of one event.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// At least one Druid task accepted the event.
    Sent,
    /// The event was deliberately not sent, for the given reason.
    Dropped(DropReason),
    /// Sending was attempted and gave up; the error says why.
    Failed(Arc<SendError>),
}

impl Outcome {
    /// A `Failed` outcome from an error.
    pub fn failed(error: SendError) -> Self {
        Outcome::Failed(Arc::new(error))
    }

    /// True for `Sent`.
    pub fn is_sent(&self) -> bool {
        matches!(self, Outcome::Sent)
    }

    /// True for `Dropped`.
    pub fn is_dropped(&self) -> bool {
        matches!(self, Outcome::Dropped(_))
    }

    /// True for `Failed`.
    pub fn is_failed(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }

    /// Merges the outcomes one event got from each replica it was sent to, in replica order.
    ///
    /// This is the one replication rule of the crate:
    /// - `Sent` if at least one replica sent it (one copy in Druid is enough);
    /// - otherwise `Dropped` if every replica dropped it, with the first replica's reason;
    /// - otherwise `Failed` with [`SendError::Replicas`], naming each replica that failed.
    ///
    /// A single outcome is returned unchanged; no outcomes at all (no replicas) is a failure.
    pub fn merge_replicas(outcomes: impl IntoIterator<Item = Outcome>) -> Outcome {
        // Consumes every outcome even after a `Sent`, so callers may pass lazy iterators
        // that advance per-replica cursors.
        let mut sent = false;
        let mut first_drop = None;
        let mut failures = Vec::new();
        let mut count = 0usize;
        let mut only = None;
        for (replica, outcome) in outcomes.into_iter().enumerate() {
            count += 1;
            match &outcome {
                Outcome::Sent => sent = true,
                Outcome::Dropped(reason) => {
                    first_drop.get_or_insert(*reason);
                }
                Outcome::Failed(error) => failures.push(ReplicaError {
                    replica,
                    error: Arc::clone(error),
                }),
            }
            only = Some(outcome);
        }
        if sent {
            return Outcome::Sent;
        }
        match (count, only) {
            (1, Some(outcome)) => outcome,
            (0, _) => Outcome::failed(SendError::Other("no replicas to send to".into())),
            _ => match first_drop {
                Some(reason) if failures.is_empty() => Outcome::Dropped(reason),
                _ => Outcome::failed(SendError::Replicas(failures)),
            },
        }
    }
}

/// Why an event was dropped. Small and bounded, so it can be a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The timestamp lies outside `windowPeriod` around the current time.
    OutsideWindow,
    /// The event's interval was already closed (at or before the shared `latestCloseTime`).
    IntervalClosed,
    /// The timestamp was missing or could not be parsed.
    Unparseable,
    /// Every task of the event's interval is gone (finished or failed); Druid will not take it.
    BeamDefunct,
    /// The beam was closed before the event could be sent.
    BeamClosed,
    /// Druid's batch ingestion threw the row away (a `transformSpec` filter, or a row outside
    /// the task's interval), as its task report counted.
    ThrownAway,
}

impl DropReason {
    /// Every reason, in declaration order (for metrics that pre-register their labels).
    pub const ALL: [DropReason; 6] = [
        DropReason::OutsideWindow,
        DropReason::IntervalClosed,
        DropReason::Unparseable,
        DropReason::BeamDefunct,
        DropReason::BeamClosed,
        DropReason::ThrownAway,
    ];

    /// The reason's position in [`DropReason::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            DropReason::OutsideWindow => 0,
            DropReason::IntervalClosed => 1,
            DropReason::Unparseable => 2,
            DropReason::BeamDefunct => 3,
            DropReason::BeamClosed => 4,
            DropReason::ThrownAway => 5,
        }
    }

    /// The label used in metrics, logs and responses.
    pub fn as_str(&self) -> &'static str {
        match self {
            DropReason::OutsideWindow => "outside_window",
            DropReason::IntervalClosed => "interval_closed",
            DropReason::Unparseable => "unparseable",
            DropReason::BeamDefunct => "beam_defunct",
            DropReason::BeamClosed => "beam_closed",
            DropReason::ThrownAway => "thrown_away",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why sending an event failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The Tranquilizer's buffer was full and `blockOnFull` is false.
    #[error("buffer full: {pending_batches} batches pending and the current batch is full")]
    BufferFull {
        /// Batches in flight when the event was refused.
        pending_batches: usize,
    },
    /// Creating the Druid tasks for the event's interval failed.
    #[error("could not create tasks for {data_source} interval {interval}: {message}")]
    TaskCreation {
        /// The dataSource.
        data_source: String,
        /// The segment interval, as an ISO-8601 interval.
        interval: String,
        /// What went wrong.
        message: String,
    },
    /// Pushing to the tasks gave up after retries.
    #[error("push to {target} failed: {message}")]
    Push {
        /// The task or receiver that was pushed to.
        target: String,
        /// What went wrong.
        message: String,
    },
    /// Coordination with other instances (ZooKeeper) failed.
    #[error("coordination failed: {0}")]
    Coordination(String),
    /// A backend could not take the events: Druid's version could not be read, a topic or a
    /// supervisor could not be set up, a batch task was refused or failed.
    #[error("dataSource {data_source}: {message}")]
    Backend {
        /// The dataSource.
        data_source: String,
        /// What went wrong, naming the cause.
        message: String,
        /// Whether sending the same events again may succeed.
        retriable: bool,
    },
    /// Any other failure, with its message.
    #[error("{0}")]
    Other(String),
    /// No replica took the event and at least one failed; see [`Outcome::merge_replicas`].
    #[error("no replica took the event: {}", ReplicaError::list(.0))]
    Replicas(Vec<ReplicaError>),
}

/// One replica's failure inside [`SendError::Replicas`].
#[derive(Debug, Clone)]
pub struct ReplicaError {
    /// The replica's index, in the order the replicas were given.
    pub replica: usize,
    /// Why that replica failed.
    pub error: Arc<SendError>,
}

impl ReplicaError {
    fn list(errors: &[ReplicaError]) -> String {
        let parts: Vec<String> = errors
            .iter()
            .map(|e| format!("replica {}: {}", e.replica, e.error))
            .collect();
        parts.join("; ")
    }
}

impl SendError {
    /// A [`SendError::Backend`] of `data_source`.
    pub fn backend(data_source: &str, message: String, retriable: bool) -> Self {
        let data_source = data_source.to_string();
        SendError::Backend {
            data_source,
            message,
            retriable,
        }
    }

    /// True when sending the same event again may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            SendError::BufferFull { .. }
            | SendError::TaskCreation { .. }
            | SendError::Push { .. }
            | SendError::Coordination(_) => true,
            SendError::Backend { retriable, .. } => *retriable,
            SendError::Other(_) => false,
            SendError::Replicas(errors) => errors.iter().any(|e| e.error.is_retriable()),
        }
    }
}

/// Errors from closing a beam.
#[derive(Debug, thiserror::Error)]
#[error("closing beam failed: {0}")]
pub struct CloseError(pub String);

/// A destination for events: send a batch, get one outcome per event in order; close.
#[async_trait]
pub trait Beam: Send + Sync + fmt::Debug {
    /// Sends a batch. Returns exactly `events.len()` outcomes, in input order.
    async fn send_batch(&self, events: Vec<Event>) -> Vec<Outcome>;

    /// Releases the beam's resources; events sent afterwards are dropped with `BeamClosed`.
    async fn close(&self) -> Result<(), CloseError>;
}

/// Makes `outcomes` exactly `expected` long, so a misbehaving inner beam cannot break the
/// one-outcome-per-event rule: missing outcomes become failures naming `beam`, extras are cut.
pub(crate) fn exact_outcomes(
    mut outcomes: Vec<Outcome>,
    expected: usize,
    beam: &dyn fmt::Debug,
) -> Vec<Outcome> {
    if outcomes.len() != expected {
        let got = outcomes.len();
        tracing::warn!(expected, got, beam = ?beam, "beam answered with the wrong number of outcomes");
        if got < expected {
            let error = Arc::new(SendError::Other(format!(
                "beam answered {got} outcomes for {expected} events"
            )));
            outcomes.resize_with(expected, || Outcome::Failed(Arc::clone(&error)));
        } else {
            outcomes.truncate(expected);
        }
    }
    outcomes
}

#[async_trait]
impl<B: Beam + ?Sized> Beam for Arc<B> {
    async fn send_batch(&self, events: Vec<Event>) -> Vec<Outcome> {
        (**self).send_batch(events).await
    }

    async fn close(&self) -> Result<(), CloseError> {
        (**self).close().await
    }
}
