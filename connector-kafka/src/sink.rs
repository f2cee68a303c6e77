//! Where a topic's messages go: the [`EventSink`] of its dataSource, built by a
//! [`SinkFactory`] when the dataSource's first topic shows up (with `useTopicAsDataSource`, one
//! per topic), chosen by the topic mapping. In production the sinks are the core's
//! per-dataSource pipelines; tests use sinks over in-memory beams.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tranquility::pipeline::Pipelines;
use tranquility::source::{Route, Router};
use tranquility::spec::DataSourceConfig;

pub use tranquility::source::EventSink;

use crate::config::KafkaConfig;

/// Builds the sink of a dataSource.
#[async_trait]
pub trait SinkFactory: Send + Sync + fmt::Debug + 'static {
    /// The sink for events of `data_source`, configured by `config`. They differ only with
    /// `useTopicAsDataSource`, where `data_source` is the topic and `config` the template.
    async fn sink(
        &self,
        config: &DataSourceConfig,
        data_source: &str,
    ) -> Result<Arc<dyn EventSink>, String>;
}

/// Pipelines built beforehand: a dataSource without one is refused by name (with
/// `useTopicAsDataSource`, every topic's pipeline must be built beforehand; [`PipelineSinks`]
/// builds them on first use instead).
///
/// [`PipelineSinks`]: crate::PipelineSinks
#[async_trait]
impl SinkFactory for Pipelines {
    async fn sink(&self, _: &DataSourceConfig, name: &str) -> Result<Arc<dyn EventSink>, String> {
        (self.event_sink(name)).ok_or_else(|| format!("dataSource '{name}' has no pipeline"))
    }
}

/// The routes of every member of the process: topic mapping, then the dataSource's sink
/// (built once, shared) and report flags.
#[derive(Debug)]
pub(crate) struct KafkaRouter {
    config: Arc<KafkaConfig>,
    factory: Arc<dyn SinkFactory>,
    sinks: tokio::sync::Mutex<HashMap<String, Arc<dyn EventSink>>>,
}

impl KafkaRouter {
    pub(crate) fn new(config: Arc<KafkaConfig>, factory: Arc<dyn SinkFactory>) -> Self {
        Self {
            config,
            factory,
            sinks: tokio::sync::Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl Router for KafkaRouter {
    async fn route(&self, topic: &str) -> Result<Route, String> {
        let target = self
            .config
            .mapper
            .target(topic)
            .ok_or("consumed, but no dataSource's topicPattern maps it")?;
        let data_source = &self.config.data_sources[target.route];
        let mut sinks = self.sinks.lock().await;
        let sink = match sinks.get(&target.data_source) {
            Some(sink) => sink.clone(),
            None => {
                let sink = self
                    .factory
                    .sink(&data_source.config, &target.data_source)
                    .await
                    .map_err(|message| {
                        format!(
                            "dataSource {}: building its pipeline failed: {message}",
                            target.data_source
                        )
                    })?;
                sinks.insert(target.data_source, sink.clone());
                sink
            }
        };
        Ok(Route {
            sink,
            report: data_source.report,
        })
    }

    async fn flush(&self) {
        let sinks: Vec<_> = self.sinks.lock().await.values().cloned().collect();
        for sink in sinks {
            sink.flush().await;
        }
    }
}
