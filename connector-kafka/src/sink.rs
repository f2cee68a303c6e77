//! Where a dataSource's events go: the seam between the Kafka source and the core pipeline.
//!
//! An [`EventSink`] takes one JSON object's bytes and resolves to that event's one
//! [`Outcome`]. In production it is the core's per-dataSource pipeline (timestamp, Tranquilizer,
//! Druid beams); tests use sinks over in-memory beams. A [`SinkFactory`] builds the sink of a
//! dataSource when its first topic shows up (with `useTopicAsDataSource`, one per topic).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use tranquility::beam::Outcome;
use tranquility::spec::DataSourceConfig;

/// One dataSource's way into Druid: one outcome per event.
pub trait EventSink: Send + Sync + fmt::Debug + 'static {
    /// Hands over one event (a JSON object's bytes); resolves to its outcome. Counts the event
    /// as received. A missing or bad timestamp resolves to `Dropped(Unparseable)`.
    fn send(&self, raw: Bytes) -> BoxFuture<'static, Outcome>;

    /// Counts events that never reached [`EventSink::send`] (not a JSON object, too large) as
    /// received and dropped as unparseable.
    fn drop_unparseable(&self, count: u64);

    /// Sends whatever is buffered now (for pipelines that wait to fill batches).
    fn flush(&self) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

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

/// The sinks built so far, shared by every consumer of the process.
#[derive(Debug)]
pub(crate) struct SinkRegistry {
    factory: Arc<dyn SinkFactory>,
    sinks: tokio::sync::Mutex<HashMap<String, Arc<dyn EventSink>>>,
}

impl SinkRegistry {
    pub(crate) fn new(factory: Arc<dyn SinkFactory>) -> Self {
        Self {
            factory,
            sinks: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The sink of `data_source`, built on first use.
    pub(crate) async fn get(
        &self,
        config: &DataSourceConfig,
        data_source: &str,
    ) -> Result<Arc<dyn EventSink>, String> {
        let mut sinks = self.sinks.lock().await;
        if let Some(s) = sinks.get(data_source) {
            return Ok(s.clone());
        }
        let sink = self.factory.sink(config, data_source).await?;
        sinks.insert(data_source.to_string(), sink.clone());
        Ok(sink)
    }

    /// Every sink built so far.
    pub(crate) async fn all(&self) -> Vec<Arc<dyn EventSink>> {
        self.sinks.lock().await.values().cloned().collect()
    }
}
