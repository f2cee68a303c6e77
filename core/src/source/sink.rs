//! Where a source's records go: the [`EventSink`] of each dataSource (in production its
//! [`DataSourcePipeline`]), chosen per topic by a [`Router`] with the dataSource's report flags.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;

use super::Origin;
use crate::beam::Outcome;
use crate::pipeline::DataSourcePipeline;
use crate::spec::properties::Properties;
use crate::spec::ConfigError;

/// One dataSource's way into Druid: one outcome per event.
pub trait EventSink: Send + Sync + fmt::Debug + 'static {
    /// Hands over one event (a JSON object's bytes); resolves to its outcome. Counts the event
    /// as received. A missing or bad timestamp resolves to `Dropped(Unparseable)`.
    fn send(&self, raw: Bytes) -> BoxFuture<'static, Outcome>;

    /// Hands over records of one partition, in offset order, each with where it was read;
    /// resolves to their outcomes, in input order. The driver has one such call out per
    /// partition at a time. A sink that pushes them together in this order under the
    /// partition's producer id lets Druid skip a message read again (see [`Origin`]); the
    /// default sends each record through [`EventSink::send`].
    fn send_ordered(&self, records: Vec<(Bytes, Origin)>) -> BoxFuture<'static, Vec<Outcome>> {
        let sends: Vec<_> = records.into_iter().map(|(raw, _)| self.send(raw)).collect();
        Box::pin(futures::future::join_all(sends))
    }

    /// Counts events that never reached [`EventSink::send`] (not a JSON object, too large) as
    /// received and dropped as unparseable.
    fn drop_unparseable(&self, count: u64);

    /// Sends whatever is buffered now (for pipelines that wait to fill batches).
    fn flush(&self) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

impl EventSink for DataSourcePipeline {
    fn send(&self, raw: Bytes) -> BoxFuture<'static, Outcome> {
        Box::pin(DataSourcePipeline::send(self, raw))
    }

    fn send_ordered(&self, records: Vec<(Bytes, Origin)>) -> BoxFuture<'static, Vec<Outcome>> {
        let pipeline = self.clone();
        Box::pin(async move { pipeline.send_ordered(records).await })
    }

    fn drop_unparseable(&self, count: u64) {
        DataSourcePipeline::drop_unparseable(self, count);
    }

    fn flush(&self) -> BoxFuture<'static, ()> {
        let pipeline = self.clone();
        Box::pin(async move { pipeline.flush().await })
    }
}

/// What a dataSource does with drops and unparseable records (`reportDropsAsExceptions`,
/// `reportParseExceptions`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportFlags {
    /// A dropped record stops the source (its offset is not committed).
    pub drops: bool,
    /// An unparseable record stops the source (its offset is not committed).
    pub parse: bool,
}

impl ReportFlags {
    /// The flags of a dataSource's properties (`reportDropsAsExceptions`,
    /// `reportParseExceptions`, default `false`).
    pub fn from_properties(properties: &Properties) -> Result<Self, ConfigError> {
        Ok(Self {
            drops: properties.bool("reportDropsAsExceptions")?,
            parse: properties.bool("reportParseExceptions")?,
        })
    }
}

/// Where the records of one topic go.
#[derive(Debug, Clone)]
pub struct Route {
    /// The dataSource's sink.
    pub sink: Arc<dyn EventSink>,
    /// The dataSource's report flags.
    pub report: ReportFlags,
}

/// Chooses the route of each topic; the driver asks once per topic and keeps the answer.
#[async_trait]
pub trait Router: Send + Sync + fmt::Debug + 'static {
    /// The route of `topic`, or why there is none (which stops the driver).
    async fn route(&self, topic: &str) -> Result<Route, String>;

    /// Sends what every sink buffers now: called when the driver starts draining.
    async fn flush(&self);
}

/// One route for every topic: a source that reads one dataSource.
#[derive(Debug, Clone)]
pub struct SingleRoute(pub Route);

#[async_trait]
impl Router for SingleRoute {
    async fn route(&self, _topic: &str) -> Result<Route, String> {
        Ok(self.0.clone())
    }

    async fn flush(&self) {
        self.0.sink.flush().await;
    }
}
