//! The production sinks: the core's per-dataSource pipelines (timestamp, Tranquilizer, Druid
//! beams), built when a dataSource's first topic shows up.
//!
//! With `useTopicAsDataSource` the topic names the dataSource: its pipeline is built from the
//! matched dataSource's spec and properties with the name replaced, so every topic gets its own
//! Druid tasks.

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use tranquility::metrics::Metrics;
use tranquility::pipeline::{DataSourcePipeline, PipelineOptions, Pipelines};
use tranquility::spec::{DataSourceConfig, TranquilityConfig};

use crate::sink::{EventSink, SinkFactory};

/// Builds each dataSource's production pipeline on first use and keeps it, so they can be
/// closed when the connector stops.
#[derive(Debug)]
pub struct PipelineSinks {
    options: PipelineOptions,
    built: Mutex<Vec<DataSourcePipeline>>,
}

impl PipelineSinks {
    /// Pipelines built with `options` (its metrics, coordinator and Overlord override).
    pub fn new(options: PipelineOptions) -> Self {
        Self {
            options,
            built: Mutex::new(Vec::new()),
        }
    }

    /// The metrics every pipeline counts into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.options.metrics
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
        let single = single_data_source(config, data_source).map_err(|e| e.to_string())?;
        let pipelines =
            Pipelines::from_config(&single, self.options.clone()).map_err(|e| e.to_string())?;
        let pipeline = pipelines.get(data_source).cloned().ok_or_else(|| {
            format!("building the pipeline of dataSource '{data_source}' gave no pipeline")
        })?;
        self.built.lock().push(pipeline.clone());
        Ok(Arc::new(pipeline))
    }
}

/// A config holding only `config`'s dataSource, named `data_source`. Its properties become the
/// global ones: they are already the file's global properties overlaid with the dataSource's.
fn single_data_source(
    config: &DataSourceConfig,
    data_source: &str,
) -> Result<TranquilityConfig, tranquility::spec::ConfigError> {
    let mut spec = config.spec.clone();
    spec.data_schema.data_source = data_source.to_string();
    let properties: Map<String, Value> = config
        .properties
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let root = json!({
        "dataSources": [{"spec": spec, "properties": {}}],
        "properties": properties,
    });
    TranquilityConfig::from_value(root, &format!("dataSource '{data_source}'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tranquility::beam::Outcome;

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
        let single = single_data_source(template, "events-clicks").unwrap();
        assert_eq!(single.data_sources().len(), 1);
        let ds = &single.data_sources()[0];
        assert_eq!(ds.name, "events-clicks");
        assert_eq!(ds.spec.data_source(), "events-clicks");
        assert_eq!(ds.spec.tuning_config, template.spec.tuning_config);
        assert_eq!(
            ds.spec.data_schema.metrics_spec,
            template.spec.data_schema.metrics_spec
        );
        for key in [
            "task.partitions",
            "druid.overlord.url",
            "kafka.bootstrap.servers",
        ] {
            assert_eq!(
                ds.properties.get(key),
                template.properties.get(key),
                "{key}"
            );
        }
    }

    #[tokio::test]
    async fn sinks_are_the_core_pipelines_named_after_the_data_source() {
        let file = TranquilityConfig::from_str(FILE, "kafka.json").unwrap();
        let sinks = PipelineSinks::new(PipelineOptions::default());
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
