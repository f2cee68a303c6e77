//! Fluvio source for Tranquility: consume topics, send each record through the core's
//! pipeline, and commit consumer offsets only once every record below them has an outcome
//! (the same contract as the Kafka connector).
//!
//! ```text
//!  fluvio.json ─> FluvioConfig ─> one consumer per dataSource (topic `fluvio.topic`)
//!     RecordSource::next ─> DataSourcePipeline::send ─> Sent | Dropped | Failed (retried)
//!     all outcomes known ─> RecordSource::commit  (the consumer offset moves)
//! ```
//!
//! Fluvio's consumer commits "everything the stream has yielded", not an arbitrary offset,
//! so the connector commits at quiet points: every `commit.periodMillis` (and at the end) it
//! stops reading, waits until each record read so far is `Sent` or `Dropped`, then commits.
//! A `Failed` record is sent again with backoff and holds the commit back; one that cannot
//! succeed stops the connector without committing it, so a restart reads it again.
//!
//! The client sits behind [`RecordSource`]. The real one, `FluvioSource`, needs the
//! `fluvio-client` feature (off by default: the `fluvio` crate is a heavy build); everything
//! else builds and tests without it. `tranquility fluvio -configFile fluvio.json` runs `run`
//! (also behind that feature).

mod config;
mod consume;
mod error;
mod source;

#[cfg(feature = "fluvio-client")]
mod client;

pub use config::{FluvioConfig, OffsetStart, RetryPolicy, TopicRoute};
pub use consume::{consume, ConsumeOptions, ConsumeReport};
pub use error::FluvioError;
pub use source::{Record, RecordSource, SourceError};

#[cfg(feature = "fluvio-client")]
pub use client::FluvioSource;

#[cfg(feature = "fluvio-client")]
pub use client::run;

#[cfg(test)]
mod tests;
