//! Tranquility: push live event streams into Apache Druid realtime indexing tasks.
//!
//! ```text
//!  events ─> decode + timestamp ─> Tranquilizer ─> ClusteredBeam ─> partition beam ─> replica beams ─> Druid tasks
//!                                  (batching,      (one beam per     (hash or        (one DruidBeam
//!                                   outcomes)       segment interval) round robin)    per task)
//! ```
//!
//! Every event handed in gets exactly one [`beam::Outcome`]: `Sent`, `Dropped` with a reason,
//! or `Failed` with an error. Nothing is lost silently.
//!
//! Sources that can replay (Kafka, Fluvio) run on [`source::SourceDriver`], which commits a
//! partition's offset only past records with an outcome; every retry loop of the crate waits
//! through [`retry::RetryPolicy`].

pub mod backend;
pub mod beam;
pub mod coord;
pub mod druid;
pub mod event;
pub mod metrics;
pub mod pipeline;
pub mod retry;
pub mod source;
pub mod spec;
pub mod time;
