//! Tranquility Kafka: load Kafka topics into Druid with only a config file, committing an
//! offset only once every message before it has an outcome.
//!
//! ```text
//!  Kafka topics ─> group members (consumer.numThreads) ─> topic -> dataSource ─> EventSink ─> Druid
//!                   each a KafkaSource (rdkafka) run by     (topicPattern,          (one outcome
//!                   the core's SourceDriver: commit point    priority,               per message)
//!                   = end of the resolved prefix; Failed     useTopicAsDataSource)
//!                   holds it back; commit every commit.periodMillis, and on revocation
//! ```
//!
//! This crate is the Kafka side only: the rdkafka client and its quirks (`client.rs`), the
//! topic mapping (`mapping.rs`, `sink.rs`) and the configuration (`config.rs`). Offsets,
//! retries, back-pressure, commits, counters and the health check are the core's source
//! driver ([`tranquility::source`]): start reading there.
//!
//! - **What is committed**: per partition, the offset after the longest run of messages that
//!   are `Sent` or `Dropped` (with a reason, counted). A `Failed` message is retried with
//!   backoff and holds its partition's commit point back until it succeeds; if retrying
//!   cannot help, the connector stops without committing past it.
//! - **What is read again**: after a crash or a lost partition, the messages after the last
//!   commit (the "uncommitted tail"). On realtime tasks (Druid 0.12 to 30) they are not
//!   ingested twice: each partition's messages are pushed under a producer id naming the
//!   cluster, topic and partition, with offsets as sequence numbers, and a task skips what it
//!   has (see [`tranquility::source::Origin`]). Limits: a task that ended or was restored
//!   after its own restart does not remember, Druid before 0.12 ignores the headers, a task
//!   at Druid's 10 000 producer ids is pushed to without one, and a push on the wire when its
//!   partition is revoked may land after the next owner's; the README lists them.
//! - **Bad messages** (not a JSON object, too large, no or bad timestamp) are dropped with a
//!   reason, counted and committed; they never stop a partition unless
//!   `reportParseExceptions` says so.
//!
//! Start it in-process with [`KafkaConnector::start`] and stop it with
//! [`KafkaConnector::stop`] (stop consuming, wait for outcomes, commit, leave the group), or
//! run it until a shutdown signal with [`run`]:
//!
//! ```no_run
//! # async fn example(factory: std::sync::Arc<dyn tranquility_kafka::SinkFactory>) -> Result<(), Box<dyn std::error::Error>> {
//! use tranquility::metrics::Metrics;
//! use tranquility::spec::TranquilityConfig;
//! use tranquility_kafka::KafkaConfig;
//!
//! let file = TranquilityConfig::load("kafka.json")?;
//! let config = KafkaConfig::from_config(&file)?;
//! let metrics = Metrics::new();
//! tranquility_kafka::run(config, factory, &metrics, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! # Ok(()) }
//! ```

mod client;
pub mod config;
pub mod error;
pub mod mapping;
pub mod pipeline;
pub mod properties;
pub mod sink;

use std::future::Future;
use std::sync::Arc;

use tranquility::metrics::Metrics;
use tranquility::source::{
    first_error, Finished, Router, SourceDriver, SourceGroup, SourceMetrics, Stop,
};

pub use config::{ConnectorOptions, KafkaConfig};
pub use error::KafkaError;
pub use pipeline::PipelineSinks;
pub use properties::{KafkaDataSourceProperties, KafkaProperties};
pub use sink::{EventSink, SinkFactory};
pub use tranquility::retry::RetryPolicy;
pub use tranquility::source::{ReportFlags, StalledPartition};

/// Whether consumption is moving, for a health endpoint: owned partitions with lag that have
/// neither consumed nor committed for `consumer.stallTimeoutMillis`.
pub type KafkaHealth = tranquility::source::SourceHealth;

use client::KafkaSource;
use sink::KafkaRouter;

/// A running connector: `consumer.numThreads` group members, each a source driver.
#[derive(Debug)]
pub struct KafkaConnector {
    members: SourceGroup,
    metrics: SourceMetrics,
    health: KafkaHealth,
}

impl KafkaConnector {
    /// Creates the consumers (a bad `kafka.*` property fails here) and starts consuming.
    /// Must be called inside a tokio runtime. The connector's series are registered in
    /// `metrics`.
    pub fn start(
        config: KafkaConfig,
        sinks: Arc<dyn SinkFactory>,
        metrics: &Metrics,
    ) -> Result<Self, KafkaError> {
        let source_metrics = SourceMetrics::register(metrics, "kafka");
        let health = KafkaHealth::new(source_metrics.clone(), config.stall_timeout);
        let config = Arc::new(config);
        let router: Arc<dyn Router> = Arc::new(KafkaRouter::new(config.clone(), sinks));
        let sources = (0..config.consumers)
            .map(|member| KafkaSource::create(member, config.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut members = SourceGroup::new();
        for (member, source) in sources.into_iter().enumerate() {
            let options = config.driver_options();
            members.spawn(SourceDriver::new(
                source,
                router.clone(),
                &source_metrics,
                options,
                member,
            ));
        }
        tracing::info!(
            group = %config.group_id,
            consumers = config.consumers,
            "Kafka connector started"
        );
        Ok(Self {
            members,
            metrics: source_metrics,
            health,
        })
    }

    /// A view for health checks, valid for as long as the process runs.
    pub fn health(&self) -> KafkaHealth {
        self.health.clone()
    }

    /// The connector's per topic/partition series.
    pub fn metrics(&self) -> &SourceMetrics {
        &self.metrics
    }

    /// Runs until `shutdown` completes (then stops gracefully) or a member fails (then stops
    /// the others gracefully and returns the error).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), KafkaError> {
        first(self.members.run_until(shutdown).await)
    }

    /// Waits until a member stops on its own, which only a fatal error makes it do; returns
    /// that error. The other members keep running until [`KafkaConnector::stop`].
    pub async fn failed(&mut self) -> KafkaError {
        self.members.failed().await.into()
    }

    /// Stops gracefully: stop consuming, wait for the outcomes of messages in flight (failed
    /// ones stay uncommitted), commit, leave the group. Returns the first member's error, if
    /// any stopped on one.
    pub async fn stop(self) -> Result<(), KafkaError> {
        first(self.members.stop(Stop::Graceful).await)
    }

    /// Leaves at once without waiting for outcomes or committing: what a crash leaves behind
    /// (the next owner of each partition consumes its uncommitted tail again).
    pub async fn abort(self) {
        self.members.stop(Stop::Abort).await;
    }
}

fn first(finished: Vec<Finished>) -> Result<(), KafkaError> {
    first_error(&finished).map_or(Ok(()), |e| Err(e.clone().into()))
}

/// Runs the connector until `shutdown` completes (then stops it gracefully) or a member fails
/// (then stops the others gracefully and returns the error). The entry point of
/// `tranquility kafka -configFile kafka.json`.
pub async fn run(
    config: KafkaConfig,
    sinks: Arc<dyn SinkFactory>,
    metrics: &Metrics,
    shutdown: impl Future<Output = ()>,
) -> Result<(), KafkaError> {
    KafkaConnector::start(config, sinks, metrics)?
        .run_until(shutdown)
        .await
}
