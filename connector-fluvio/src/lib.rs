//! Fluvio source for Tranquility: the Fluvio client and its configuration, run by the core's
//! source driver ([`tranquility::source`], which owns offsets, retries, the in-flight bound,
//! report flags, commits and counters, as for Kafka).
//!
//! ```text
//!  fluvio.json ─> FluvioConfig ─> one FluvioSource per dataSource (topic `fluvio.topic`)
//!     SourceDriver: next() ─> DataSourcePipeline ─> Sent | Dropped | Failed (retried);
//!     per partition, the offset after the records with an outcome is committed
//! ```
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

use std::future::Future;
use std::sync::Arc;

use tranquility::source::{Route, SingleRoute, SourceDriver, SourceGroup, SourceMetrics};

pub use config::{FluvioConfig, OffsetStart, TopicRoute};
pub use error::FluvioError;
pub use tranquility::source::{
    DriverOptions, EventSink, PartitionId, Position, RecordSource, ReportFlags, SourceError,
    SourceRecord, SourceReport,
};

#[cfg(feature = "fluvio-client")]
pub use client::{run, FluvioSource};

/// Consumes every dataSource's topic, from the source `open` gives for it, into the sink
/// `sink_of` gives for the dataSource, until `stop` resolves or a topic fails (then the others
/// stop too, gracefully). Reports per dataSource, in config order; the first error when one
/// failed.
pub async fn run_sources<S, Open>(
    config: &FluvioConfig,
    sink_of: impl Fn(&str) -> Option<Arc<dyn EventSink>>,
    open: impl Fn(&TopicRoute) -> Open,
    stop: impl Future<Output = ()> + Send,
) -> Result<Vec<(String, SourceReport)>, FluvioError>
where
    S: RecordSource,
    Open: Future<Output = Result<S, SourceError>>,
{
    let mut drivers = Vec::new();
    for route in &config.routes {
        let name = &route.data_source.name;
        let sink = sink_of(name).ok_or_else(|| FluvioError::NoPipeline(name.clone()))?;
        let source = open(route).await.map_err(|source| FluvioError::Connect {
            topic: route.topic.clone(),
            source,
        })?;
        let router = Arc::new(SingleRoute(Route {
            sink,
            report: route.report,
        }));
        let metrics = SourceMetrics::default();
        drivers.push(SourceDriver::new(
            source,
            router,
            &metrics,
            config.options.clone(),
            0,
        ));
    }
    let mut group = SourceGroup::new();
    for (route, driver) in config.routes.iter().zip(drivers) {
        tracing::info!(topic = %route.topic, dataSource = %route.data_source.name, "consuming");
        group.spawn(driver);
    }
    let finished = group.run_until(stop).await;
    let reports = config
        .routes
        .iter()
        .zip(finished)
        .map(|(route, (report, result))| {
            result.map_err(|source| FluvioError::Consume {
                topic: route.topic.clone(),
                source,
            })?;
            Ok((route.data_source.name.clone(), report))
        });
    reports.collect()
}

#[cfg(test)]
mod tests;
