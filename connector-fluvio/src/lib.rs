//! Fluvio source for Tranquility: the Fluvio client and its configuration, run by the core's
//! source driver ([`tranquility::source`], which owns offsets, retries, the in-flight bound,
//! report flags, commits and counters, as for Kafka).
//!
//! ```text
//!  fluvio.json ─> FluvioConfig ─> one FluvioSource per dataSource (topic `fluvio.topic`)
//!     run_topics: a SourceDriver per topic: next() ─> DataSourcePipeline ─> Sent | Dropped |
//!     Failed (retried); per partition, the offset after the records with an outcome is committed
//! ```
//!
//! Start reading at `client.rs` (the [`RecordSource`] over the Fluvio client), then
//! `config.rs` (the `fluvio.*` property table).
//!
//! # The Fluvio client's cancellation rule
//!
//! `Fluvio::consumer_with_config` (fluvio 0.50) returns a `ConsumerRetryStream`. Its
//! `poll_next` starts a task future, kept in the stream, that locks the inner stream and
//! waits for a record, letting the lock go only when polled again (every 100 ms). Cancel a
//! pending `next()` and that future stays parked with the lock held: `offset_commit()` and
//! `offset_flush()`, which take the same lock, then wait forever. While a `next()` is pending,
//! the stream cannot be committed at all (both need `&mut`). So offsets may only be committed
//! on a stream between records: after its `next()` returned, before the next one starts.
//!
//! The driver never cancels a `next()`, and `FluvioSource` never commits on the stream it
//! reads (which always has a `next()` pending): it stores each partition's offset through a
//! short-lived stream of that partition opened at the record to commit, read once, committed
//! and flushed between records. An idle topic therefore commits and stops cleanly.
//!
//! The real client (`FluvioSource`, `run`) needs the `fluvio-client` feature, a heavy build;
//! the rest builds and tests without it, against any [`RecordSource`].

mod config;
mod error;

#[cfg(feature = "fluvio-client")]
mod client;

pub use config::{FluvioConfig, OffsetStart, FLUVIO_PROPERTIES};
pub use error::FluvioError;
pub use tranquility::source::{
    DataSourceTopic, DriverOptions, EventSink, PartitionId, Position, RecordSource, ReportFlags,
    SourceError, SourceRecord, SourceReport, TopicError,
};

/// Runs the topics of a [`FluvioConfig`]: `run_topics(&config.routes, &config.options, ..)`.
pub use tranquility::source::run_topics;

#[cfg(feature = "fluvio-client")]
pub use client::{run, FluvioSource};

#[cfg(test)]
mod tests;
