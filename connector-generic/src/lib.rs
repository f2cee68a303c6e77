//! Send events from any tokio job into Druid through the core's pipeline: the Rust
//! counterpart of the original's `BeamBolt` (Storm) and `BeamSink` (Flink).
//!
//! - [`BeamSink`]: a [`futures::Sink`] of `(tag, event)` pairs, paired with an [`Outcomes`]
//!   stream that yields `(tag, Outcome)` for every event, so a job can acknowledge its input.
//!   `poll_ready` stays pending while the pipeline is full: the core's back-pressure reaches
//!   the producer.
//! - [`drive`]: sends a whole stream and returns the [`DriveReport`] of its outcomes.
//! - [`ndjson`]: newline-delimited JSON from any `AsyncRead` (a file, a socket, stdin) and
//!   [`drive_ndjson`] to send it.
//!
//! Events are JSON objects: raw bytes ([`bytes::Bytes`], `Vec<u8>`, `String`), a
//! [`serde_json::Value`], or any `Serialize` type wrapped in [`Json`].
//!
//! Pipelines come from `tranquility::pipeline::Pipelines::builder()`. The core's optional
//! parts are this crate's features, all on by default: `zookeeper`, `smile`, `yaml` and
//! `kafka`. A job on one machine against a known Overlord can do without ZooKeeper and
//! librdkafka: `default-features = false`, a `LocalCoordinator` given to the builder,
//! `druid.overlord.url` and `druidBeam.taskLocator=overlord`.
//!
//! ```no_run
//! # async fn run(pipeline: tranquility::pipeline::DataSourcePipeline) {
//! use futures::{SinkExt, StreamExt};
//! use tranquility_generic::{BeamSink, Json};
//!
//! #[derive(serde::Serialize)]
//! struct Click { timestamp: String, page: String }
//!
//! let (mut sink, mut outcomes) = BeamSink::new(pipeline);
//! let click = Click { timestamp: "2024-01-01T00:00:00Z".into(), page: "/".into() };
//! sink.send((1u64, Json(click))).await.unwrap(); // waits while the pipeline is full
//! let (tag, outcome) = outcomes.next().await.unwrap();
//! assert_eq!(tag, 1);
//! println!("event {tag}: {outcome:?}");
//! # }
//! ```
//!
//! The adapters only hand events over: timestamps, windows, batching, tasks and counting are
//! the core's work, so every event is counted as received and gets one outcome. Start reading
//! at `sink.rs` ([`BeamSink`]), then `driver.rs` and `ndjson.rs`.

mod driver;
mod event;
pub mod ndjson;
mod sink;

pub use driver::{drive, drive_ndjson, DriveError, DriveReport};
pub use event::{EventError, IntoEvent, Json};
pub use sink::{BeamSink, Outcomes, SinkError};

#[cfg(test)]
mod tests;
