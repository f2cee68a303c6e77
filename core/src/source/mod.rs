//! Replayable sources: the one driver that every source that can read again (Kafka, Fluvio)
//! runs on. Offsets are committed at least once; on Druid's realtime tasks a message read
//! again is skipped by the task that has it, so it is ingested once (see [`Origin`]).
//!
//! ```text
//!  RecordSource::next ──> route (topic -> EventSink, report flags) ──> lane of its partition
//!   (one call in flight,    │ not a JSON object / too large:            │ one wave out at a time
//!    never cancelled)       │ dropped with a reason, no send            v
//!                           │                  EventSink::send_ordered(wave) ──> Outcome each
//!                           v                                           │  Sent | Dropped ─> resolved
//!                  Partitions: an OffsetTracker per partition <─────────┘  Failed ─> first in the
//!                  commit point = end of the resolved prefix               next wave after a backoff
//!                           │ every commit period, on revocation,          (RetryPolicy), or final
//!                           v and when stopping                            (stops the driver)
//!                  RecordSource::commit(positions)
//! ```
//!
//! A source adapts one client: it yields records with their position (topic, partition,
//! offset), commits positions, may pause and resume fetching, and reports partition
//! assignment changes through the [`Partitions`] handle it is given. The [`SourceDriver`]
//! owns everything else, once for every source: the offset book per partition, the in-flight
//! bound with back-pressure, the retry of failed events, the commit cadence, the
//! `reportDropsAsExceptions` / `reportParseExceptions` policy, the drain on stop, the
//! counters, and the progress book behind a health check ([`SourceHealth`]).
//!
//! # The contract of [`RecordSource::next`]
//!
//! A pending `next()` is never cancelled. The driver keeps at most one call in flight and
//! carries it across its loop turns (it stops polling it while it has no room, but never drops
//! it); the call is dropped only once the driver is done with the source, after the final
//! commit. Some clients do not survive a cancelled read: the Fluvio client parks its read in a
//! task that holds the stream's lock, so a commit after a cancelled `next()` waits forever.
//! [`RecordSource::commit`], `pause` and `resume` are called while a `next()` may be pending,
//! which is why every method takes `&self`: a client that cannot commit beside a pending read
//! must commit some other way (the Fluvio adapter stores offsets through a second,
//! short-lived stream).
//!
//! # Positions
//!
//! The driver commits, per partition, the offset after the longest run of records that are
//! `Sent` or `Dropped`: nothing below a commit is without an outcome. A `Failed` record holds
//! its partition's commit back while it is retried; a record that cannot succeed stops the
//! driver without committing past it.
//!
//! # Waves: a partition's records in order
//!
//! Every record reaches its sink with where it was read (an [`Origin`]: its partition's
//! [`Ownership`] and its offset), so that the realtime path can push it under the
//! partition's producer id with its offset as the sequence, and a task skips it when it is
//! read again. That is safe only if a partition's records reach a task in offset order, and a
//! record is never pushed after a later one of its partition was taken. So the driver hands a
//! partition's records over in waves ([`EventSink::send_ordered`], up to
//! [`DriverOptions::max_wave`] records): one wave per partition out at a time, in offset order,
//! and the records of a wave that failed go first in the partition's next wave, before
//! anything read after them, once their backoff is over. Meanwhile the partition waits (a
//! record that keeps failing holds its partition back, not only its commit); other
//! partitions go on. When the driver stops while a partition waits for a retry, what was read
//! after the failed record is not sent either: all of it stays uncommitted, read again later.
//!
//! An [`Ownership`] lasts from a partition's assignment until its revocation, a rewind of its
//! offsets or an abort, which fence it: nothing more is pushed for it, so that its next
//! owner (in this process or another) does not race it.
//!
//! # Accounting
//!
//! Every record received ends up counted once in the [`SourceReport`]'s tally, as sent,
//! dropped (with a reason) or failed: `received = sent + dropped + failed` holds whenever the
//! driver returns. Failed attempts that were retried are counted apart, as retries.

mod book;
mod driver;
mod group;
mod metrics;
mod offsets;
mod origin;
mod sink;
mod topics;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

pub use book::Partitions;
pub use driver::{DriverError, DriverOptions, SourceDriver, SourceReport, Stop};
pub use group::{first_error, Finished, SourceGroup};
pub use metrics::{
    PartitionMetrics, SourceDropReason, SourceHealth, SourceMetrics, StalledPartition,
};
pub use offsets::{OffsetTracker, OutOfOrder};
pub use origin::{Delivery, Origin, Ownership};
pub use sink::{EventSink, ReportFlags, Route, Router, SingleRoute};
pub use topics::{run_topics, DataSourceTopic, TopicError};

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition number.
    pub partition: i32,
}

impl PartitionId {
    /// The partition `partition` of `topic`.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.topic, self.partition)
    }
}

/// A place in a partition: the offset of a record, or (in a commit) of the next record to read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    /// The partition.
    pub partition: PartitionId,
    /// The offset.
    pub offset: i64,
}

/// A record read from a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    /// Where it was read.
    pub partition: PartitionId,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its value: one JSON object, or `None` when the record had none.
    pub payload: Option<Bytes>,
}

/// An error of a source's client, as text (every client has its own error type).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

impl SourceError {
    /// An error with this message.
    pub fn new(message: impl fmt::Display) -> Self {
        Self(message.to_string())
    }
}

/// A client the driver reads records from and commits positions to. See the module docs for
/// the contract of [`RecordSource::next`].
#[async_trait]
pub trait RecordSource: Send + Sync + 'static {
    /// Called once, before the first `next()`: where to report partition assignment changes
    /// and lag, and to name the source in producer ids ([`Partitions::name_source`]). A
    /// source whose partitions never move may ignore it.
    fn attach(&self, _partitions: Partitions) {}

    /// The next record; `None` once the source has ended (a live source waits instead).
    /// Never cancelled: the driver keeps one call in flight across its loop turns.
    async fn next(&self) -> Option<Result<SourceRecord, SourceError>>;

    /// Stores `positions` (per partition, the offset of the next record to read) and waits
    /// until the client has stored them. May be called while a `next()` is pending.
    async fn commit(&self, positions: &[Position]) -> Result<(), SourceError>;

    /// Stops fetching while the driver has no room. `Ok(true)` when fetching is paused, so the
    /// driver may keep polling `next()` (to serve the client's housekeeping) without getting
    /// records; `Ok(false)` (the default) when the source cannot pause, so the driver stops
    /// polling `next()` until it has room again.
    fn pause(&self) -> Result<bool, SourceError> {
        Ok(false)
    }

    /// Fetches again after [`RecordSource::pause`].
    fn resume(&self) -> Result<(), SourceError> {
        Ok(())
    }

    /// Leaves the source, after the final commit (or at once on an abort). The pending
    /// `next()` is already dropped.
    async fn close(&self) {}
}
