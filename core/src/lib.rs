//! Tranquility: push live event streams into Apache Druid.
//!
//! What runs for each dataSource (built by [`pipeline::Pipelines::builder`]):
//!
//! ```text
//!  raw JSON ─> EventReader ─> Tranquilizer ─> BackendBeam ─┬─ realtime (Druid 0.9.2-30):
//!  (flatten,    (batching,     (the seam:     │  ClusteredBeam ─> MergingPartitioningBeam ─> DruidBeam
//!   timestamp)   back-pressure, auto picks    │  (one beam per    (dimension hash over     (one partition's
//!                outcomes)      by version)   │   interval, shared  task.partitions)        replica tasks,
//!                                             │   through a coordinator)                    answers merged)
//!                                             ├─ supervisor (31+): a Kafka topic a Druid supervisor reads
//!                                             └─ batch (31+): index_parallel tasks with inline micro-batches
//! ```
//!
//! Every event handed in gets exactly one [`beam::Outcome`]: `Sent`, `Dropped` with a reason,
//! or `Failed` with an error, and is counted in [`metrics`]. Nothing is lost silently.
//!
//! Where to start reading: [`pipeline`] (the facade every way in uses and the builder), then
//! [`beam`] (the trait and the Tranquilizer), [`druid`] (Overlord, task specs, receivers),
//! [`backend`] (the seam and the Druid 31+ backends) and [`coord`] (sharing beams between
//! instances through ZooKeeper, or in process). Sources that can replay (Kafka, Fluvio) run on
//! [`source::SourceDriver`], which commits a partition's offset only past records with an
//! outcome; every retry loop of the crate waits through [`retry::RetryPolicy`]; [`spec`] reads
//! the config files and the property tables every crate registers.
//!
//! Features, all on by default: `zookeeper` (coordination between instances and Curator
//! discovery of the Overlord and tasks; without it give the builder a coordinator such as
//! [`coord::LocalCoordinator`] and set `druid.overlord.url` and `druidBeam.taskLocator=overlord`),
//! `smile` (`serialization.format=smile`), `yaml` (YAML config files) and `kafka` (the
//! supervisor backend's producer). A setting that needs a missing feature is refused, naming it.

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
