//! Beams: the one small trait every stage of the pipeline implements, and the per-event outcome.
//!
//! A [`Beam`] takes a batch of events and answers with exactly one [`Outcome`] per event, in
//! input order. Combinators (clustering by interval, partitioning, replication) are beams
//! wrapping beams, so every stack composes and tests alone.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::event::Event;

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
}

impl DropReason {
    /// Every reason, for metrics that list each one from the start.
    pub const ALL: [DropReason; 5] = [
        DropReason::OutsideWindow,
        DropReason::IntervalClosed,
        DropReason::Unparseable,
        DropReason::BeamDefunct,
        DropReason::BeamClosed,
    ];

    /// The label used in metrics, logs and responses.
    pub fn as_str(&self) -> &'static str {
        match self {
            DropReason::OutsideWindow => "outside_window",
            DropReason::IntervalClosed => "interval_closed",
            DropReason::Unparseable => "unparseable",
            DropReason::BeamDefunct => "beam_defunct",
            DropReason::BeamClosed => "beam_closed",
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
    /// Any other failure, with its message.
    #[error("{0}")]
    Other(String),
}

impl SendError {
    /// True when sending the same event again may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            SendError::BufferFull { .. }
            | SendError::TaskCreation { .. }
            | SendError::Push { .. }
            | SendError::Coordination(_) => true,
            SendError::Other(_) => false,
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

#[async_trait]
impl<B: Beam + ?Sized> Beam for Arc<B> {
    async fn send_batch(&self, events: Vec<Event>) -> Vec<Outcome> {
        (**self).send_batch(events).await
    }

    async fn close(&self) -> Result<(), CloseError> {
        (**self).close().await
    }
}
