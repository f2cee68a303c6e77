//! The Kafka connector's way into the pipelines of a config file: one [`EventSink`] per
//! dataSource, each the dataSource's [`DataSourcePipeline`].

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use tranquility::beam::Outcome;
use tranquility::pipeline::{DataSourcePipeline, Pipelines};
use tranquility::spec::DataSourceConfig;
use tranquility_kafka::sink::{EventSink, SinkFactory};

#[derive(Debug)]
struct PipelineSink(DataSourcePipeline);

impl EventSink for PipelineSink {
    fn send(&self, raw: Bytes) -> BoxFuture<'static, Outcome> {
        Box::pin(self.0.send(raw))
    }

    fn drop_unparseable(&self, count: u64) {
        self.0.drop_unparseable(count);
    }

    fn flush(&self) -> BoxFuture<'static, ()> {
        let pipeline = self.0.clone();
        Box::pin(async move { pipeline.flush().await })
    }
}

/// Sinks for the dataSources of `pipelines`; a dataSource without a pipeline is refused by
/// name (`useTopicAsDataSource` topics need their pipelines built beforehand).
#[derive(Debug)]
pub struct PipelineSinks(pub Arc<Pipelines>);

#[async_trait::async_trait]
impl SinkFactory for PipelineSinks {
    async fn sink(
        &self,
        _config: &DataSourceConfig,
        data_source: &str,
    ) -> Result<Arc<dyn EventSink>, String> {
        match self.0.get(data_source) {
            Some(p) => Ok(Arc::new(PipelineSink(p.clone()))),
            None => Err(format!("dataSource '{data_source}' has no pipeline")),
        }
    }
}
