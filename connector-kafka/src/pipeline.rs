//! The production sinks: the core's per-dataSource pipelines (timestamp, Tranquilizer, Druid
//! beams), built when a dataSource's first topic shows up.
//!
//! With `useTopicAsDataSource` the topic names the dataSource: its pipeline is built from the
//! matched dataSource's spec and properties under the topic's name
//! ([`DataSourceConfig::renamed`]), so every topic gets its own Druid tasks. Every pipeline is
//! built through one [`PipelineBuilder`], so all of them share one ZooKeeper connection per
//! connect string.

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use tranquility::metrics::Metrics;
use tranquility::pipeline::{DataSourcePipeline, PipelineBuilder};
use tranquility::spec::DataSourceConfig;

use crate::sink::{EventSink, SinkFactory};

/// Builds each dataSource's production pipeline on first use and keeps it, so they can be
/// closed when the connector stops.
#[derive(Debug)]
pub struct PipelineSinks {
    builder: PipelineBuilder,
    built: Mutex<Vec<DataSourcePipeline>>,
}

impl PipelineSinks {
    /// Pipelines built by `builder` (its metrics, coordinator, Overlord override and
    /// ZooKeeper connections).
    pub fn new(builder: PipelineBuilder) -> Self {
        Self {
            builder,
            built: Mutex::new(Vec::new()),
        }
    }

    /// The metrics every pipeline counts into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.builder.metrics_registry()
    }

    /// The pipelines built so far.
    pub fn pipelines(&self) -> Vec<DataSourcePipeline> {
        self.built.lock().clone()
    }

    /// Flushes and closes every pipeline built so far (their Druid tasks run on until their
    /// shutoff time). Call after the connector stopped.
    pub async fn close(&self) {
        let pipelines = self.pipelines();
        futures::future::join_all(pipelines.iter().map(DataSourcePipeline::close)).await;
    }
}

#[async_trait]
impl SinkFactory for PipelineSinks {
    async fn sink(
        &self,
        config: &DataSourceConfig,
        data_source: &str,
    ) -> Result<Arc<dyn EventSink>, String> {
        let pipeline = self
            .builder
            .build_data_source(&config.renamed(data_source))
            .map_err(|e| e.to_string())?;
        self.built.lock().push(pipeline.clone());
        Ok(Arc::new(pipeline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tranquility::beam::Outcome;
    use tranquility::pipeline::Pipelines;
    use tranquility::spec::TranquilityConfig;

    const FILE: &str = r#"{
      "dataSources": [{
        "spec": {
          "dataSchema": {
            "dataSource": "template",
            "parser": {"type": "string", "parseSpec": {"format": "json",
              "timestampSpec": {"column": "ts", "format": "millis"},
              "dimensionsSpec": {"dimensions": ["page"]}}},
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"},
            "metricsSpec": [{"type": "count", "name": "count"}]
          },
          "tuningConfig": {"type": "realtime", "windowPeriod": "PT5M"}
        },
        "properties": {"topicPattern": "events-.*", "useTopicAsDataSource": "true",
                       "task.partitions": "3"}
      }],
      "properties": {"kafka.bootstrap.servers": "127.0.0.1:9", "druid.overlord.url": "http://127.0.0.1:1"}
    }"#;

    #[test]
    fn the_topic_names_the_data_source_and_everything_else_is_kept() {
        let file = TranquilityConfig::from_str(FILE, "kafka.json").unwrap();
        let template = &file.data_sources()[0];
        let ds = template.renamed("events-clicks");
        assert_eq!(ds.name, "events-clicks");
        assert_eq!(ds.spec.data_source(), "events-clicks");
        assert_eq!(ds.spec.tuning_config, template.spec.tuning_config);
        assert_eq!(
            ds.spec.data_schema.metrics_spec,
            template.spec.data_schema.metrics_spec
        );
        assert_eq!(ds.properties, template.properties);
    }

    #[tokio::test]
    async fn every_topic_shares_one_zookeeper_connection() {
        let file = TranquilityConfig::from_str(FILE, "kafka.json").unwrap();
        let sinks = PipelineSinks::new(Pipelines::builder());
        for topic in ["events-a", "events-b", "events-c"] {
            sinks.sink(&file.data_sources()[0], topic).await.unwrap();
        }
        assert_eq!(sinks.pipelines().len(), 3);
        assert_eq!(sinks.builder.zookeeper_connections().len(), 1);
    }

    #[tokio::test]
    async fn sinks_are_the_core_pipelines_named_after_the_data_source() {
        let file = TranquilityConfig::from_str(FILE, "kafka.json").unwrap();
        let sinks = PipelineSinks::new(Pipelines::builder());
        let sink = sinks
            .sink(&file.data_sources()[0], "events-views")
            .await
            .unwrap();
        // Not a JSON object with a timestamp: dropped by the pipeline, before any Druid call.
        let outcome = sink.send(Bytes::from_static(br#"{"page": "x"}"#)).await;
        assert!(matches!(
            outcome,
            Outcome::Dropped(tranquility::beam::DropReason::Unparseable)
        ));
        sink.drop_unparseable(2);
        let built = sinks.pipelines();
        assert_eq!(built.len(), 1);
        assert_eq!(built[0].name(), "events-views");
        let tally = built[0].metrics().snapshot();
        assert_eq!(tally.received, 3);
        assert!(tally.is_balanced());
    }
}
