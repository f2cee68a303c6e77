//! The facade every way in (server, Kafka, generic streams) uses: one [`DataSourcePipeline`]
//! per dataSource, turning raw JSON objects into outcomes.
//!
//! ```text
//! raw JSON ─> flatten, timestamp (Dropped(Unparseable) if bad) ─> Tranquilizer ─> ClusteredBeam ─> ...
//!   │                                                                                  │
//!   └─ counted received ──────────────── one outcome, counted sent/dropped/failed ─────┘
//! ```
//!
//! [`Pipelines::builder`] builds every dataSource of a Tranquility config file for
//! production, on the backend `druid.ingestion` names or `auto` picks (`backend`): realtime
//! tasks through the Overlord (found through ZooKeeper discovery or a fixed URL) with
//! receivers found through ZooKeeper or the Overlord and beams shared through ZooKeeper or an
//! in-process coordinator; or, on Druid 31+, a Kafka topic read by a supervisor, or batch
//! appends. Callers never know which backend runs; [`DataSourcePipeline::backend`] tells.

#[cfg(feature = "zookeeper")]
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use indexmap::IndexMap;
use tracing::{debug, info};

use crate::backend::batch::{BatchBeam, BatchConfig};
use crate::backend::translate::BatchLocks;
use crate::backend::{Backend, BackendBeam, BackendFactory, BackendHandle};
use crate::beam::{
    Beam, ClusteredBeam, ClusteredBeamConfig, DropReason, Outcome, Tranquilizer,
    TranquilizerConfig, TranquilizerObserver,
};
use crate::coord::Coordinator;
#[cfg(feature = "zookeeper")]
use crate::coord::{ZkConnection, ZkCoordinator, ZkCoordinatorConfig};
use crate::druid::beam::{DruidBeamContext, DruidBeamMaker};
#[cfg(feature = "zookeeper")]
use crate::druid::discovery::CuratorDiscovery;
#[cfg(feature = "zookeeper")]
use crate::druid::locator::CuratorTaskLocator;
use crate::druid::locator::{OverlordTaskLocator, TaskLocator};
use crate::druid::overlord::{OverlordClient, OverlordConfig, OverlordEndpoint};
use crate::druid::partitioner::dimension_hash_partitioner;
use crate::druid::receiver::{ReceiverClient, ReceiverConfig};
use crate::druid::tls::DruidTls;
use crate::druid::{mangle_service_name, BasicAuth};
use crate::event::{EventReader, RawEvent};
use crate::metrics::events::{record_outcomes, EventsReceived};
use crate::metrics::{DataSourceMetrics, Metrics};
use crate::retry::RetryPolicy;
use crate::source::Origin;
use crate::spec::properties::{CoreProperties, Ingestion, IngestionProperties, TaskLocatorKind};
use crate::spec::{DataSourceConfig, IngestionSpec, TranquilityConfig};
use crate::time::window::WindowRule;
use crate::time::Period;
use crate::time::{Clock, SystemClock};

/// Why a pipeline could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A property or the spec is invalid.
    #[error("dataSource '{data_source}': {message}")]
    Config {
        /// The dataSource.
        data_source: String,
        /// What is wrong.
        message: String,
    },
    /// The metadata shared with other instances cannot be shared safely by this one.
    #[error("dataSource '{data_source}': {source}")]
    SharedMetadata {
        /// The dataSource.
        data_source: String,
        /// Why.
        #[source]
        source: crate::coord::CoordError,
    },
}

/// One dataSource's pipeline. Cheap to clone.
#[derive(Clone)]
pub struct DataSourcePipeline {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    reader: EventReader,
    tranquilizer: Tranquilizer,
    metrics: DataSourceMetrics,
    backend: Option<BackendHandle>,
}

impl Inner {
    fn count_unparseable(&self, count: u64) {
        if count == 0 {
            return;
        }
        EventsReceived { count }.emit(&self.metrics);
        let dropped = vec![Outcome::Dropped(DropReason::Unparseable); count as usize];
        record_outcomes(&self.metrics, &dropped);
    }
}

/// Counts what the Tranquilizer takes in and answers into a dataSource's series.
struct MetricsObserver(DataSourceMetrics);

impl TranquilizerObserver for MetricsObserver {
    fn received(&self, count: u64) {
        EventsReceived { count }.emit(&self.0);
    }

    fn answered(&self, outcomes: &[Outcome]) {
        record_outcomes(&self.0, outcomes);
    }
}

impl fmt::Debug for DataSourcePipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataSourcePipeline")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl DataSourcePipeline {
    /// A pipeline over any beam, reading events with the spec's parseSpec (flattenSpec and
    /// timestampSpec), with the given batching.
    pub fn with_beam(
        name: &str,
        spec: &IngestionSpec,
        beam: Arc<dyn Beam>,
        tranquilizer: TranquilizerConfig,
        metrics: &Metrics,
    ) -> Result<Self, PipelineError> {
        let reader = EventReader::new(&spec.data_schema).map_err(|e| PipelineError::Config {
            data_source: name.to_string(),
            message: e.to_string(),
        })?;
        let metrics = metrics.data_source(name);
        let observer = Arc::new(MetricsObserver(metrics.clone()));
        Ok(Self {
            inner: Arc::new(Inner {
                name: name.to_string(),
                reader,
                tranquilizer: Tranquilizer::observed(beam, tranquilizer, observer),
                metrics,
                backend: None,
            }),
        })
    }

    /// A pipeline over a [`BackendBeam`], which says which backend runs.
    pub fn with_backend(
        name: &str,
        spec: &IngestionSpec,
        beam: BackendBeam,
        tranquilizer: TranquilizerConfig,
        metrics: &Metrics,
    ) -> Result<Self, PipelineError> {
        let handle = beam.handle();
        let mut pipeline = Self::with_beam(name, spec, Arc::new(beam), tranquilizer, metrics)?;
        if let Some(inner) = Arc::get_mut(&mut pipeline.inner) {
            inner.backend = Some(handle);
        }
        Ok(pipeline)
    }

    /// Which backend carries the events: `None` for a pipeline over a beam of the caller's
    /// own ([`with_beam`](Self::with_beam)); the handle says `undecided` while `auto` has
    /// not read Druid's version yet.
    pub fn backend(&self) -> Option<&BackendHandle> {
        self.inner.backend.as_ref()
    }

    /// The dataSource.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The dataSource's series.
    pub fn metrics(&self) -> &DataSourceMetrics {
        &self.inner.metrics
    }

    /// Sends one JSON object; resolves to its outcome. Waits for room when the pipeline is
    /// full (back-pressure), unless `blockOnFull` is off.
    pub fn send(&self, raw: impl Into<RawEvent>) -> impl Future<Output = Outcome> + Send + 'static {
        let inner = self.inner.clone();
        let raw = raw.into();
        async move {
            match inner.reader.read(raw) {
                // Counted by the Tranquilizer's observer, even if this future is dropped.
                Ok(event) => inner.tranquilizer.send(event).await.await,
                Err(e) => {
                    debug!(dataSource = %inner.name, error = %e, "unparseable event");
                    inner.count_unparseable(1);
                    Outcome::Dropped(DropReason::Unparseable)
                }
            }
        }
    }

    /// Sends many JSON objects; outcomes in input order.
    pub async fn send_all<R: Into<RawEvent>>(&self, raws: Vec<R>) -> Vec<Outcome> {
        self.hand_in(raws).await.await
    }

    /// Hands many JSON objects in, waiting for room (back-pressure) unless `blockOnFull` is
    /// off, and returns the future of their outcomes, in input order. Callers that answer
    /// before the outcomes are known (async posts) still get every event counted.
    pub async fn hand_in<R: Into<RawEvent>>(
        &self,
        raws: Vec<R>,
    ) -> BoxFuture<'static, Vec<Outcome>> {
        let inner = self.inner.clone();
        let total = raws.len();
        let mut unparseable = Vec::new();
        let mut events = Vec::with_capacity(total);
        for (i, raw) in raws.into_iter().enumerate() {
            match inner.reader.read(raw.into()) {
                Ok(event) => events.push(event),
                Err(e) => {
                    debug!(dataSource = %inner.name, error = %e, "unparseable event");
                    unparseable.push(i);
                }
            }
        }
        inner.count_unparseable(unparseable.len() as u64);
        // Events handed in are counted by the Tranquilizer's observer, even if the returned
        // future is never awaited.
        let sent = (!events.is_empty()).then_some(inner.tranquilizer.send_all(events).await);
        Box::pin(async move {
            let sent = match sent {
                Some(batch) => batch.await,
                None => Vec::new(),
            };
            with_unparseable(total, unparseable, sent)
        })
    }

    /// Sends records a source read, each with where it was read, as one batch of their own in
    /// the order given ([`Tranquilizer::send_whole`]), so that the beam pushes them in that
    /// order under their partition's producer id (see [`crate::source::Origin`]); outcomes in
    /// input order.
    pub async fn send_ordered(&self, records: Vec<(Bytes, Origin)>) -> Vec<Outcome> {
        let inner = &self.inner;
        let total = records.len();
        let mut unparseable = Vec::new();
        let mut events = Vec::with_capacity(total);
        for (i, (raw, origin)) in records.into_iter().enumerate() {
            match inner.reader.read(RawEvent::unchecked(raw)) {
                Ok(event) => events.push(event.with_origin(origin)),
                Err(e) => {
                    debug!(dataSource = %inner.name, error = %e, "unparseable event");
                    unparseable.push(i);
                }
            }
        }
        inner.count_unparseable(unparseable.len() as u64);
        let sent = inner.tranquilizer.send_whole(events).await.await;
        with_unparseable(total, unparseable, sent)
    }

    /// Counts events that never reached the pipeline (e.g. not a JSON object) as received and
    /// dropped as unparseable.
    pub fn drop_unparseable(&self, count: u64) {
        self.inner.count_unparseable(count);
    }

    /// Waits until every event handed in so far has its outcome.
    pub async fn flush(&self) {
        self.inner.tranquilizer.flush().await;
    }

    /// Flushes, then closes the beams (tasks keep running until their shutoff time).
    pub async fn close(&self) {
        if let Err(e) = self.inner.tranquilizer.close().await {
            tracing::warn!(dataSource = %self.inner.name, error = %e, "closing the pipeline");
        }
    }
}

/// Shared ZooKeeper connections: one per connect string, for every pipeline built through
/// builders that share this pool (clones share it). Nothing connects until a backend uses it.
/// Without the `zookeeper` feature it is empty, and every ZooKeeper use is refused by name.
#[derive(Debug, Clone, Default)]
pub struct ZkConnections {
    #[cfg(feature = "zookeeper")]
    connections: Arc<parking_lot::Mutex<HashMap<String, Arc<ZkConnection>>>>,
}

impl ZkConnections {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// The connection for `zookeeper.connect` of `props`, made on first ask (with that
    /// dataSource's `zookeeper.timeout`).
    #[cfg(feature = "zookeeper")]
    pub fn get(&self, props: &CoreProperties) -> Arc<ZkConnection> {
        self.connections
            .lock()
            .entry(props.zookeeper_connect.clone())
            .or_insert_with(|| {
                Arc::new(ZkConnection::new(
                    props.zookeeper_connect.clone(),
                    duration(&props.zookeeper_timeout),
                ))
            })
            .clone()
    }

    /// How many connect strings have a connection.
    pub fn len(&self) -> usize {
        #[cfg(feature = "zookeeper")]
        return self.connections.lock().len();
        #[cfg(not(feature = "zookeeper"))]
        0
    }

    /// Whether no connection was made yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a build without the `zookeeper` feature says when a setting needs ZooKeeper.
#[cfg(not(feature = "zookeeper"))]
fn no_zookeeper(what: &str) -> String {
    format!(
        "{what} needs ZooKeeper, and this build has none (tranquility-core was built without \
         its `zookeeper` feature)"
    )
}

/// Builds production pipelines: [`Pipelines`] for a whole config file, or one
/// [`DataSourcePipeline`] for a dataSource config. Cheap to clone; clones share the metrics
/// and the ZooKeeper connections, so every pipeline of a process that is built through one
/// builder (or its clones) uses one connection per connect string.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use tranquility::coord::LocalCoordinator;
/// # use tranquility::pipeline::Pipelines;
/// # fn f(config: &tranquility::spec::TranquilityConfig) -> Result<(), Box<dyn std::error::Error>> {
/// let pipelines = Pipelines::builder()
///     .coordinator(Arc::new(LocalCoordinator::new()))
///     .overlord_url("http://127.0.0.1:8090")
///     .build(config)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PipelineBuilder {
    metrics: Arc<Metrics>,
    coordinator: Option<Arc<dyn Coordinator>>,
    overlord_url: Option<String>,
    clock: Arc<dyn Clock>,
    zk: ZkConnections,
}

impl Default for PipelineBuilder {
    fn default() -> Self {
        Self {
            metrics: Metrics::new(),
            coordinator: None,
            overlord_url: None,
            clock: Arc::new(SystemClock),
            zk: ZkConnections::new(),
        }
    }
}

impl PipelineBuilder {
    /// Count every series into `metrics` (default: a new registry).
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Coordinate through `coordinator` instead of ZooKeeper (one process: the in-process
    /// coordinator).
    pub fn coordinator(mut self, coordinator: Arc<dyn Coordinator>) -> Self {
        self.coordinator = Some(coordinator);
        self
    }

    /// Use this Overlord URL, over `druid.overlord.url` and discovery.
    pub fn overlord_url(mut self, url: impl Into<String>) -> Self {
        self.overlord_url = Some(url.into());
        self
    }

    /// The time source (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Share ZooKeeper connections with other builders of the process.
    pub fn zookeeper(mut self, connections: ZkConnections) -> Self {
        self.zk = connections;
        self
    }

    /// The metrics every pipeline built here counts into.
    pub fn metrics_registry(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The ZooKeeper connections pipelines built here use.
    pub fn zookeeper_connections(&self) -> &ZkConnections {
        &self.zk
    }

    /// Builds the production pipeline of every dataSource in `config`.
    pub fn build(&self, config: &TranquilityConfig) -> Result<Pipelines, PipelineError> {
        let mut pipelines = IndexMap::new();
        let mut shared = Vec::new();
        for ds in config.data_sources() {
            let (pipeline, coordination) = self.build_one(ds)?;
            if let Some((coordinator, identity)) = coordination {
                shared.push((ds.name.clone(), coordinator, identity));
            }
            pipelines.insert(ds.name.clone(), pipeline);
        }
        Ok(Pipelines {
            pipelines,
            metrics: self.metrics.clone(),
            shared,
        })
    }

    /// Builds the production pipeline of one dataSource (its properties are the file's
    /// global ones overlaid with its own; see [`DataSourceConfig::renamed`] to build it under
    /// another name).
    pub fn build_data_source(
        &self,
        ds: &DataSourceConfig,
    ) -> Result<DataSourcePipeline, PipelineError> {
        self.build_one(ds).map(|(pipeline, _)| pipeline)
    }

    fn build_one(
        &self,
        ds: &DataSourceConfig,
    ) -> Result<(DataSourcePipeline, Option<Coordination>), PipelineError> {
        let fail = |message: String| PipelineError::Config {
            data_source: ds.name.clone(),
            message,
        };
        let props =
            CoreProperties::from_properties(&ds.properties).map_err(|e| fail(e.to_string()))?;
        let ingestion = IngestionProperties::from_properties(&ds.properties)
            .map_err(|e| fail(e.to_string()))?;
        ds.spec.validate().map_err(|e| fail(e.to_string()))?;
        let (pipeline, coordination) = self.assemble(ds, &props, &ingestion)?;
        info!(
            dataSource = %ds.name,
            ingestion = ingestion.ingestion.as_str(),
            backend = pipeline.backend().map_or("", BackendHandle::describe),
            partitions = props.task_partitions,
            replicants = props.task_replicants,
            "dataSource ready"
        );
        Ok((pipeline, coordination))
    }
}

/// Every dataSource of a config file, ready to send.
#[derive(Debug)]
pub struct Pipelines {
    pipelines: IndexMap<String, DataSourcePipeline>,
    metrics: Arc<Metrics>,
    /// Each dataSource's coordinator and identity, for [`Pipelines::check_shared_metadata`].
    shared: Vec<(String, Arc<dyn Coordinator>, String)>,
}

impl Pipelines {
    /// A builder of production pipelines.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    /// Checks, before serving, that every dataSource's metadata shared with other instances
    /// (in ZooKeeper) can be shared safely: an error names the cause and the fix. Failing to
    /// reach ZooKeeper is only logged (each update checks again).
    pub async fn check_shared_metadata(&self) -> Result<(), PipelineError> {
        for (data_source, coordinator, identity) in &self.shared {
            let check = coordinator.check_shared(identity);
            match tokio::time::timeout(Duration::from_secs(5), check).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) if e.is_retriable() => {
                    tracing::warn!(dataSource = %data_source, error = %e, "could not check the shared beam metadata")
                }
                Ok(Err(source)) => {
                    return Err(PipelineError::SharedMetadata {
                        data_source: data_source.clone(),
                        source,
                    })
                }
                Err(_) => tracing::warn!(
                    dataSource = %data_source,
                    "could not check the shared beam metadata: ZooKeeper did not answer in 5 s"
                ),
            }
        }
        Ok(())
    }

    /// The pipeline of a dataSource.
    pub fn get(&self, data_source: &str) -> Option<&DataSourcePipeline> {
        self.pipelines.get(data_source)
    }

    /// The pipeline of `data_source` as a source's [`EventSink`](crate::source::EventSink).
    pub fn event_sink(&self, data_source: &str) -> Option<Arc<dyn crate::source::EventSink>> {
        Some(Arc::new(self.get(data_source)?.clone()))
    }

    /// The dataSource names, in config order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pipelines.keys().map(String::as_str)
    }

    /// Every pipeline, in config order.
    pub fn iter(&self) -> impl Iterator<Item = &DataSourcePipeline> {
        self.pipelines.values()
    }

    /// The metrics all pipelines count into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Waits for the outcome of everything handed in so far.
    pub async fn flush_all(&self) {
        futures::future::join_all(self.pipelines.values().map(|p| p.flush())).await;
    }

    /// Flushes and closes every pipeline.
    pub async fn close(&self) {
        futures::future::join_all(self.pipelines.values().map(|p| p.close())).await;
    }
}

fn duration(period: &Period) -> Duration {
    let millis = period
        .standard_millis()
        .unwrap_or_else(|| period.approx_millis());
    Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}

/// The outcomes of `total` events in input order: `Dropped(Unparseable)` at the indexes in
/// `unparseable` (ascending), the outcomes of the events that were sent everywhere else.
fn with_unparseable(total: usize, unparseable: Vec<usize>, sent: Vec<Outcome>) -> Vec<Outcome> {
    if unparseable.is_empty() && sent.len() == total {
        return sent;
    }
    let mut sent = sent.into_iter();
    let mut bad = unparseable.into_iter().peekable();
    (0..total)
        .map(|i| {
            if bad.peek() == Some(&i) {
                bad.next();
                Outcome::Dropped(DropReason::Unparseable)
            } else {
                sent.next().unwrap_or_else(|| {
                    Outcome::failed(crate::beam::SendError::Other(
                        "the pipeline gave no outcome for this event".into(),
                    ))
                })
            }
        })
        .collect()
}

/// Everything a backend of one dataSource may need; each backend takes its part.
#[derive(Clone)]
struct Parts {
    name: String,
    spec: IngestionSpec,
    props: CoreProperties,
    ingestion: IngestionProperties,
    overlord: OverlordClient,
    #[cfg(feature = "zookeeper")]
    zk: ZkConnections,
    coordinator: Arc<dyn Coordinator>,
    auth: Option<BasicAuth>,
    tls: DruidTls,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
}

impl Parts {
    fn rule(&self) -> WindowRule {
        WindowRule {
            segment_granularity: self.spec.data_schema.granularity_spec.segment_granularity,
            window_period: self.spec.tuning_config.window_period(),
            warming_period: self.props.task_warming_period,
        }
    }

    /// The beam of one backend: the one place that knows how each is built.
    fn beam(&self, backend: Backend) -> Result<Arc<dyn Beam>, String> {
        match backend {
            Backend::Realtime => self.realtime(),
            Backend::Batch => Ok(self.batch()),
            Backend::Supervisor => self.supervisor(),
        }
    }

    fn realtime(&self) -> Result<Arc<dyn Beam>, String> {
        let props = &self.props;
        let locator: Arc<dyn TaskLocator> = match props.task_locator {
            #[cfg(feature = "zookeeper")]
            TaskLocatorKind::Curator => Arc::new(
                CuratorTaskLocator::new(Arc::new(CuratorDiscovery::new(
                    self.zk.get(props),
                    &props.discovery_path,
                )))
                .with_tls(self.tls.is_enabled()),
            ),
            #[cfg(not(feature = "zookeeper"))]
            TaskLocatorKind::Curator => {
                return Err(no_zookeeper(
                    "druidBeam.taskLocator=curator (finding tasks through discovery)",
                ))
            }
            // One attempt per poll: a push must not wait out the Overlord's long retries.
            TaskLocatorKind::Overlord => Arc::new(OverlordTaskLocator::new(
                self.overlord.with_retry(RetryPolicy::overlord().once()),
                duration(&props.overlord_poll_period),
            )),
        };
        let context = Arc::new(DruidBeamContext {
            data_source: self.name.clone(),
            receiver: ReceiverClient::with_tls(
                ReceiverConfig {
                    retry: RetryPolicy {
                        period: Some(duration(&props.firehose_retry_period)),
                        ..RetryPolicy::receiver()
                    },
                    quiet_period: duration(&props.firehose_quiet_period),
                    auth: self.auth.clone(),
                    ..ReceiverConfig::default()
                },
                &self.tls,
            ),
            locator,
            overlord: self.overlord.clone(),
            chunk_size: props.firehose_chunk_size,
            format: props.serialization_format,
            indexing_service_key: mangle_service_name(&props.indexing_service_name),
            metrics: self.metrics.data_source(&self.name),
        });
        let maker = Arc::new(DruidBeamMaker::new(
            self.spec.clone(),
            props.clone(),
            context,
        ));
        Ok(Arc::new(ClusteredBeam::new(
            ClusteredBeamConfig {
                identity: realtime_identity(props, &self.name),
                rule: self.rule(),
                partitions: props.task_partitions.max(1),
                partitioner: dimension_hash_partitioner(&self.spec),
                clock: self.clock.clone(),
            },
            maker,
            self.coordinator.clone(),
        )))
    }

    fn batch(&self) -> Arc<dyn Beam> {
        // Concurrent locks came with Druid 29; the batch backend is meant for 31+.
        let locks = BatchLocks::Concurrent;
        let config = BatchConfig::new(
            &self.name,
            self.spec.data_schema.clone(),
            self.spec.tuning_config.clone(),
            self.rule(),
            Duration::from_millis(self.ingestion.batch_period_millis),
            usize::try_from(self.ingestion.batch_max_bytes).unwrap_or(usize::MAX),
            locks,
        );
        Arc::new(BatchBeam::new(
            config,
            self.overlord.clone(),
            self.clock.clone(),
            self.metrics.data_source(&self.name),
        ))
    }

    #[cfg(feature = "kafka")]
    fn supervisor(&self) -> Result<Arc<dyn Beam>, String> {
        use crate::backend::supervisor::{SupervisorBeam, SupervisorConfig, SupervisorSetup};
        use crate::backend::translate::{EventFormat, SupervisorSettings};

        let brokers = self.ingestion.kafka_bootstrap_servers.clone().ok_or(
            "the supervisor backend needs druid.ingestion.kafka.bootstrap.servers (the Kafka \
             brokers Tranquility produces to and Druid reads from)",
        )?;
        let mut consumer = serde_json::Map::new();
        consumer.insert("bootstrap.servers".into(), brokers.clone().into());
        for (k, v) in &self.ingestion.kafka_consumer_properties.0 {
            consumer.insert(k.clone(), v.clone().into());
        }
        let partitions = match self.ingestion.kafka_partitions {
            0 => self.props.task_partitions,
            n => n,
        };
        let setup = SupervisorSetup {
            data_source: self.name.clone(),
            schema: self.spec.data_schema.clone(),
            tuning: self.spec.tuning_config.clone(),
            settings: SupervisorSettings {
                topic: self.ingestion.kafka_topic(&self.name),
                consumer_properties: consumer,
                task_count: self.props.task_partitions,
                replicas: self.props.task_replicants,
                task_duration: self.ingestion.kafka_task_duration,
                // Events may be produced before the supervisor's first read.
                use_earliest_offset: true,
                format: EventFormat::Json,
            },
            partitions,
            replication_factor: self.ingestion.kafka_replication_factor,
            identity: supervisor_identity(&self.props, &self.name),
            stats_period: Duration::from_secs(30),
        };
        let beam = SupervisorBeam::new(
            SupervisorConfig {
                data_source: self.name.clone(),
                rule: self.rule(),
                bootstrap_servers: brokers,
                producer_properties: self.ingestion.kafka_producer_properties.0.clone(),
                setup,
            },
            dimension_hash_partitioner(&self.spec),
            self.overlord.clone(),
            self.coordinator.clone(),
            self.clock.clone(),
            self.metrics.data_source(&self.name),
        )?;
        Ok(Arc::new(beam))
    }

    #[cfg(not(feature = "kafka"))]
    fn supervisor(&self) -> Result<Arc<dyn Beam>, String> {
        Err(
            "the supervisor backend needs a Kafka producer, and this build has none (build \
             tranquility-core with its `kafka` feature)"
                .into(),
        )
    }
}

/// The Overlord client of a dataSource's properties: at `overlord_url` (over
/// `druid.overlord.url`), else found through ZooKeeper discovery on `zk`; retried for
/// `druidBeam.indexRetryPeriod`, with `druidBeam.basicAuth*` and `tls` (`druid.tls.*`). An
/// HTTPS URL without TLS enabled is refused, saying what to set.
pub fn overlord_client(
    props: &CoreProperties,
    overlord_url: Option<&str>,
    zk: &ZkConnections,
    tls: &DruidTls,
) -> Result<OverlordClient, String> {
    let endpoint = match overlord_url
        .map(str::to_string)
        .or(props.overlord_url.clone())
    {
        Some(url) if !tls.is_enabled() && url.trim().to_ascii_lowercase().starts_with("https:") => {
            return Err(format!(
                "the Overlord URL {url} is HTTPS: set druid.tls.enable=true (and \
                 druid.tls.trustStorePath to the PEM file of Druid's CA)"
            ))
        }
        Some(url) => OverlordEndpoint::Url(url),
        #[cfg(feature = "zookeeper")]
        None => OverlordEndpoint::Discovery {
            discovery: Arc::new(CuratorDiscovery::new(zk.get(props), &props.discovery_path)),
            service_name: props.indexing_service_name.clone(),
        },
        #[cfg(not(feature = "zookeeper"))]
        None => {
            let _ = zk;
            return Err(no_zookeeper(
                "finding the Overlord without druid.overlord.url (discovery)",
            ));
        }
    };
    Ok(OverlordClient::with_tls(
        endpoint,
        OverlordConfig {
            retry: RetryPolicy {
                period: Some(duration(&props.index_retry_period)),
                ..RetryPolicy::overlord()
            },
            auth: BasicAuth::from_properties(&props.basic_auth_user, &props.basic_auth_pass),
            ..OverlordConfig::default()
        },
        tls,
    ))
}

/// The ZooKeeper coordinator of a dataSource's properties (`zookeeper.path`), on the pool's
/// connection for its `zookeeper.connect`.
#[cfg(feature = "zookeeper")]
pub fn zk_coordinator(props: &CoreProperties, zk: &ZkConnections) -> Arc<dyn Coordinator> {
    Arc::new(ZkCoordinator::new(
        zk.get(props),
        ZkCoordinatorConfig {
            base_path: props.zookeeper_path.clone(),
            ..ZkCoordinatorConfig::default()
        },
    ))
}

/// A coordinator and the identity a dataSource shares through it.
type Coordination = (Arc<dyn Coordinator>, String);

/// The coordination identity of a dataSource's realtime beams (`druid:overlord/wiki`).
pub fn realtime_identity(props: &CoreProperties, data_source: &str) -> String {
    format!(
        "{}/{data_source}",
        mangle_service_name(&props.indexing_service_name)
    )
}

/// The coordination identity whose lock serialises a dataSource's supervisor check-and-post
/// across instances.
pub fn supervisor_identity(props: &CoreProperties, data_source: &str) -> String {
    format!(
        "{}/{data_source}.supervisor",
        mangle_service_name(&props.indexing_service_name)
    )
}

impl PipelineBuilder {
    /// Wires one dataSource's backend seam, Tranquilizer and reader; the realtime, batch and
    /// supervisor beams behind the seam are built by [`Parts::beam`] once the backend is known.
    fn assemble(
        &self,
        ds: &DataSourceConfig,
        props: &CoreProperties,
        ingestion: &IngestionProperties,
    ) -> Result<(DataSourcePipeline, Option<Coordination>), PipelineError> {
        let name = ds.name.as_str();
        let fail = |message: String| PipelineError::Config {
            data_source: name.to_string(),
            message,
        };
        let zk = self.zk.clone();
        let auth = BasicAuth::from_properties(&props.basic_auth_user, &props.basic_auth_pass);
        let tls = DruidTls::from_properties(props).map_err(|e| fail(e.to_string()))?;
        let overlord =
            overlord_client(props, self.overlord_url.as_deref(), &zk, &tls).map_err(fail)?;
        let coordinator: Arc<dyn Coordinator> =
            match &self.coordinator {
                Some(c) => c.clone(),
                #[cfg(feature = "zookeeper")]
                None => zk_coordinator(props, &zk),
                #[cfg(not(feature = "zookeeper"))]
                None => return Err(fail(no_zookeeper(
                    "sharing beams between instances (no coordinator was given to the builder; \
                     LocalCoordinator serves one process)",
                ))),
            };
        // What this dataSource shares with other instances through the coordinator: the realtime
        // beams (also while `auto` has not chosen), or the supervisor's lock; batch shares nothing.
        let coordination = match ingestion.ingestion {
            Ingestion::Batch => None,
            Ingestion::Supervisor => Some((coordinator.clone(), supervisor_identity(props, name))),
            Ingestion::Realtime | Ingestion::Auto => {
                Some((coordinator.clone(), realtime_identity(props, name)))
            }
        };
        let parts = Parts {
            name: name.to_string(),
            spec: ds.spec.clone(),
            props: props.clone(),
            ingestion: ingestion.clone(),
            overlord: overlord.clone(),
            #[cfg(feature = "zookeeper")]
            zk,
            coordinator,
            auth,
            tls,
            clock: self.clock.clone(),
            metrics: self.metrics.clone(),
        };
        let factory: BackendFactory = Box::new(move |backend, _status| parts.beam(backend));
        let beam = BackendBeam::new(
            name,
            ingestion.ingestion,
            ingestion.kafka_bootstrap_servers.is_some(),
            overlord,
            ds.properties.clone(),
            factory,
        )
        .map_err(fail)?;
        let tranquilizer = TranquilizerConfig::builder()
            .max_batch_size(props.max_batch_size)
            .max_pending_batches(props.max_pending_batches)
            .linger_millis(props.linger_millis)
            .block_on_full(props.block_on_full)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let pipeline =
            DataSourcePipeline::with_backend(name, &ds.spec, beam, tranquilizer, &self.metrics)?;
        Ok((pipeline, coordination))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beam::testing::MemoryBeam;
    use bytes::Bytes;
    use serde_json::json;

    fn spec() -> IngestionSpec {
        serde_json::from_value(json!({
            "dataSchema": {
                "dataSource": "wiki",
                "parser": {"type": "string", "parseSpec": {"format": "json",
                    "timestampSpec": {"column": "timestamp", "format": "iso"},
                    "dimensionsSpec": {"dimensions": []}}},
                "metricsSpec": [{"type": "count", "name": "count"}],
                "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"}
            },
            "tuningConfig": {"type": "realtime"}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn every_event_gets_one_outcome_and_is_counted() {
        let metrics = Metrics::new();
        let memory = MemoryBeam::new();
        let pipeline = DataSourcePipeline::with_beam(
            "wiki",
            &spec(),
            Arc::new(memory.clone()),
            TranquilizerConfig::default(),
            &metrics,
        )
        .unwrap();
        let raws = vec![
            Bytes::from_static(br#"{"timestamp":"2024-01-01T00:00:00Z","page":"a"}"#),
            Bytes::from_static(br#"{"page":"no time"}"#),
            Bytes::from_static(br#"{"timestamp":"yesterday"}"#),
            Bytes::from_static(br#"{"timestamp":"2024-01-01T00:00:01Z"}"#),
        ];
        let outcomes = pipeline.send_all(raws).await;
        let kinds: Vec<bool> = outcomes.iter().map(Outcome::is_sent).collect();
        assert_eq!(kinds, [true, false, false, true]);
        assert!(matches!(
            outcomes[1],
            Outcome::Dropped(DropReason::Unparseable)
        ));
        assert_eq!(memory.events().len(), 2);
        assert_eq!(memory.events()[1].timestamp_millis(), 1_704_067_201_000);

        let one = pipeline
            .send(Bytes::from_static(
                br#"{"timestamp":"2024-01-01T00:00:02Z"}"#,
            ))
            .await;
        assert!(one.is_sent());
        pipeline.drop_unparseable(3);
        let tally = pipeline.metrics().snapshot();
        assert_eq!(tally.received, 8);
        assert_eq!(tally.sent, 3);
        assert_eq!(tally.dropped(DropReason::Unparseable), 5);
        assert!(tally.is_balanced());
        assert_eq!(pipeline.metrics().pending(), 0);
        pipeline.close().await;
        assert!(memory.is_closed());
    }

    #[tokio::test]
    async fn outcomes_are_counted_even_when_nobody_awaits_them() {
        let metrics = Metrics::new();
        let memory = MemoryBeam::new();
        let pipeline = DataSourcePipeline::with_beam(
            "wiki",
            &spec(),
            Arc::new(memory.clone()),
            TranquilizerConfig::builder()
                .linger_millis(-1)
                .build()
                .unwrap(),
            &metrics,
        )
        .unwrap();
        let raws: Vec<Bytes> = (0..10)
            .map(|i| Bytes::from(format!(r#"{{"timestamp":"2024-01-01T00:00:0{i}Z"}}"#)))
            .collect();
        // Hand in, then walk away from the outcomes (as an aborted caller would).
        drop(pipeline.hand_in(raws).await);
        assert_eq!(pipeline.metrics().snapshot().received, 10);
        assert_eq!(pipeline.metrics().pending(), 10);
        pipeline.flush().await;
        let tally = pipeline.metrics().snapshot();
        assert_eq!((tally.received, tally.sent), (10, 10));
        assert!(tally.is_balanced());
        assert_eq!(pipeline.metrics().pending(), 0);
        assert_eq!(memory.events().len(), 10);
    }

    #[test]
    fn bad_properties_name_the_data_source() {
        let config = TranquilityConfig::from_str(
            r#"{"dataSources":[{"spec":{"dataSchema":{"dataSource":"wiki",
                "parser":{"type":"string","parseSpec":{"format":"json",
                  "timestampSpec":{"column":"timestamp","format":"iso"},
                  "dimensionsSpec":{"dimensions":[]}}},
                "metricsSpec":[],"granularitySpec":{"segmentGranularity":"quarter","queryGranularity":"none"}},
                "tuningConfig":{"type":"realtime"}}}],
              "properties":{"druid.overlord.url":"http://127.0.0.1:1"}}"#,
            "bad.json",
        );
        let err = match config {
            Ok(config) => Pipelines::builder().build(&config).unwrap_err().to_string(),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("wiki") || err.contains("bad.json"), "{err}");
        assert!(err.to_lowercase().contains("quarter"), "{err}");
    }
}
