//! What the routes share: one entry per dataSource (where its events go, and its string
//! parser for `text/plain`), the metrics registry, the options, and the tasks of `?async=true`
//! requests that a graceful stop must wait for.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tokio_util::task::TaskTracker;
use tranquility::beam::Outcome;
use tranquility::event::{RawEvent, StringParser, StringParserError};
use tranquility::metrics::{DataSourceMetrics, Metrics};
use tranquility::pipeline::{DataSourcePipeline, Pipelines};
use tranquility::spec::{ParseSpec, TranquilityConfig};

use crate::config::ServerConfig;

/// Resolves to one outcome per event handed in, in input order.
pub type OutcomesFuture = BoxFuture<'static, Vec<Outcome>>;

/// What the server needs from one dataSource's pipeline.
#[async_trait]
pub trait Ingest: Send + Sync + fmt::Debug + 'static {
    /// Hands JSON object events in (waiting for room when the buffer is full and blocking);
    /// the returned future resolves to their outcomes. Each is counted as received.
    async fn hand_in(&self, raws: Vec<RawEvent>) -> OutcomesFuture;
    /// Counts events that never reached the pipeline as received and dropped (unparseable).
    fn drop_unparseable(&self, count: u64);
    /// Sends what is buffered and waits for the outcome of everything handed in before.
    async fn flush(&self);
    /// Sends what is buffered and releases the pipeline; later events are dropped.
    async fn close(&self);
    /// This dataSource's series.
    fn metrics(&self) -> &DataSourceMetrics;
    /// Which backend carries its events (`realtime`, `supervisor`, `batch`, `undecided`),
    /// when it has one.
    fn backend(&self) -> Option<&'static str> {
        None
    }
}

#[async_trait]
impl Ingest for DataSourcePipeline {
    async fn hand_in(&self, raws: Vec<RawEvent>) -> OutcomesFuture {
        DataSourcePipeline::hand_in(self, raws).await
    }

    fn drop_unparseable(&self, count: u64) {
        DataSourcePipeline::drop_unparseable(self, count);
    }

    async fn flush(&self) {
        DataSourcePipeline::flush(self).await;
    }

    async fn close(&self) {
        DataSourcePipeline::close(self).await;
    }

    fn metrics(&self) -> &DataSourceMetrics {
        DataSourcePipeline::metrics(self)
    }

    fn backend(&self) -> Option<&'static str> {
        DataSourcePipeline::backend(self).map(|b| b.describe())
    }
}

/// One dataSource as the server sees it.
#[derive(Debug, Clone)]
pub struct DataSourceEntry {
    /// Where its events go.
    pub ingest: Arc<dyn Ingest>,
    /// Its `text/plain` parser, or why its parseSpec cannot parse text.
    pub parser: Result<Arc<StringParser>, StringParserError>,
}

/// State shared by every request. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    data_sources: HashMap<String, DataSourceEntry>,
    metrics: Arc<Metrics>,
    config: ServerConfig,
    background: TaskTracker,
    stopping: AtomicBool,
}

impl DataSourceEntry {
    /// An entry for a pipeline; `parse_spec` (its `parser.parseSpec`, if any) drives
    /// `text/plain` bodies, whose lines are JSON objects when there is none.
    pub fn new(ingest: Arc<dyn Ingest>, parse_spec: Option<&ParseSpec>) -> Self {
        let json_lines = ParseSpec {
            format: None,
            timestamp_spec: Default::default(),
            dimensions_spec: Default::default(),
            extra: Default::default(),
        };
        let parser = StringParser::new(parse_spec.unwrap_or(&json_lines)).map(Arc::new);
        Self { ingest, parser }
    }
}

impl AppState {
    /// State over the given dataSources (name, entry).
    pub fn new(
        config: ServerConfig,
        metrics: Arc<Metrics>,
        data_sources: impl IntoIterator<Item = (String, DataSourceEntry)>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                data_sources: data_sources.into_iter().collect(),
                metrics,
                config,
                background: TaskTracker::new(),
                stopping: AtomicBool::new(false),
            }),
        }
    }

    /// State over every pipeline of `pipelines`, with each dataSource's `parser.parseSpec`
    /// from `config` (the file the pipelines were built from) for `text/plain` bodies.
    pub fn from_pipelines(
        server: ServerConfig,
        config: &TranquilityConfig,
        pipelines: &Pipelines,
    ) -> Self {
        let entries = pipelines.iter().map(|pipeline| {
            let parse_spec = config
                .data_source(pipeline.name())
                .and_then(|ds| ds.spec.data_schema.parser.as_ref())
                .map(|parser| &parser.parse_spec);
            let ingest: Arc<dyn Ingest> = Arc::new(pipeline.clone());
            (
                pipeline.name().to_string(),
                DataSourceEntry::new(ingest, parse_spec),
            )
        });
        Self::new(server, pipelines.metrics().clone(), entries)
    }

    /// The dataSource called `name`.
    pub fn data_source(&self, name: &str) -> Option<&DataSourceEntry> {
        self.inner.data_sources.get(name)
    }

    /// Every dataSource, by name.
    pub fn data_sources(&self) -> impl Iterator<Item = (&str, &DataSourceEntry)> {
        self.inner
            .data_sources
            .iter()
            .map(|(name, entry)| (name.as_str(), entry))
    }

    /// The metrics registry `/metrics` exposes.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The server's options.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Runs an `?async=true` request's outcome future; a graceful stop waits for these.
    pub(crate) fn spawn_background(&self, outcomes: OutcomesFuture) {
        self.inner.background.spawn(async move {
            outcomes.await;
        });
    }

    /// The tasks of `?async=true` requests.
    pub(crate) fn background(&self) -> &TaskTracker {
        &self.inner.background
    }

    /// Marks the server as stopping (`/health` answers 503 from now on).
    pub(crate) fn begin_stop(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether a graceful stop has begun.
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::SeqCst)
    }
}
