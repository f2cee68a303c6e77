//! Sources that read one topic per dataSource (Fluvio; any client whose topics map one to one
//! onto dataSources): one [`SourceDriver`] per topic, run together in a [`SourceGroup`].

use std::future::Future;
use std::sync::Arc;

use super::{
    DriverError, DriverOptions, EventSink, RecordSource, ReportFlags, Route, SingleRoute,
    SourceDriver, SourceError, SourceGroup, SourceMetrics, SourceReport,
};
use crate::spec::{ConfigError, DataSourceConfig};

/// A dataSource and the topic it reads.
#[derive(Debug, Clone)]
pub struct DataSourceTopic {
    /// The topic.
    pub topic: String,
    /// The dataSource (its spec and properties).
    pub data_source: DataSourceConfig,
    /// Its `reportDropsAsExceptions` and `reportParseExceptions`.
    pub report: ReportFlags,
}

impl DataSourceTopic {
    /// The route of `data_source`: the topic its property `topic_key` names (default the
    /// dataSource's name), with its report flags.
    pub fn of(data_source: &DataSourceConfig, topic_key: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            topic: (data_source.properties.opt_string(topic_key))
                .unwrap_or_else(|| data_source.name.clone()),
            report: ReportFlags::from_properties(&data_source.properties)?,
            data_source: data_source.clone(),
        })
    }
}

/// Why consuming the topics could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The dataSource has no sink.
    #[error("dataSource '{0}' has no pipeline")]
    NoPipeline(String),
    /// Connecting to the cluster or opening a consumer failed.
    #[error("cannot consume topic '{topic}': {source}")]
    Connect {
        /// The topic.
        topic: String,
        /// The client's error.
        source: SourceError,
    },
    /// Consuming a topic stopped on an error: reading, the final commit, or a record that
    /// cannot be sent or was dropped with a report flag set (it stays uncommitted).
    #[error("topic '{topic}': {source}")]
    Consume {
        /// The topic.
        topic: String,
        /// What stopped its driver.
        source: DriverError,
    },
}

/// Consumes every route's topic, from the source `open` gives for it, into the sink `sink_of`
/// gives for its dataSource, until `stop` resolves or a topic fails (then the others stop
/// too, gracefully). Reports per dataSource, in route order; the first error when one failed.
pub async fn run_topics<S, Open>(
    routes: &[DataSourceTopic],
    options: &DriverOptions,
    sink_of: impl Fn(&str) -> Option<Arc<dyn EventSink>>,
    open: impl Fn(&DataSourceTopic) -> Open,
    stop: impl Future<Output = ()> + Send,
) -> Result<Vec<(String, SourceReport)>, TopicError>
where
    S: RecordSource,
    Open: Future<Output = Result<S, SourceError>>,
{
    let mut group = SourceGroup::new();
    let mut drivers = Vec::new();
    for route in routes {
        let name = &route.data_source.name;
        let sink = sink_of(name).ok_or_else(|| TopicError::NoPipeline(name.clone()))?;
        let source = open(route).await.map_err(|source| TopicError::Connect {
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
            options.clone(),
            0,
        ));
    }
    // Spawned only once every topic opened, so a failed open leaves nothing running.
    for (route, driver) in routes.iter().zip(drivers) {
        tracing::info!(topic = %route.topic, dataSource = %route.data_source.name, "consuming");
        group.spawn(driver);
    }
    let finished = group.run_until(stop).await;
    let reports = routes.iter().zip(finished);
    reports
        .map(|(route, (report, result))| {
            result.map_err(|source| TopicError::Consume {
                topic: route.topic.clone(),
                source,
            })?;
            Ok((route.data_source.name.clone(), report))
        })
        .collect()
}
