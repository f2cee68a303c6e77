//! The facade every way in (server, Kafka, generic streams) uses: one [`DataSourcePipeline`]
//! per dataSource, turning raw JSON objects into outcomes.
//!
//! ```text
//! raw JSON ─> timestamp (Dropped(Unparseable) if bad) ─> Tranquilizer ─> ClusteredBeam ─> ...
//!   │                                                                                  │
//!   └─ counted received ──────────────── one outcome, counted sent/dropped/failed ─────┘
//! ```
//!
//! [`Pipelines::from_config`] builds every dataSource of a Tranquility config file for
//! production: realtime tasks through the Overlord (found through ZooKeeper discovery or a
//! fixed URL), receivers found through ZooKeeper or the Overlord, beams shared through
//! ZooKeeper or an in-process coordinator.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use indexmap::IndexMap;
use tracing::{debug, info};

use crate::beam::{
    Beam, Clock, ClusteredBeam, ClusteredBeamConfig, DropReason, Outcome, SystemClock,
    Tranquilizer, TranquilizerConfig, TranquilizerObserver,
};
use crate::coord::{Coordinator, ZkConnection, ZkCoordinator, ZkCoordinatorConfig};
use crate::druid::beam::{DruidBeamContext, DruidBeamMaker};
use crate::druid::discovery::CuratorDiscovery;
use crate::druid::locator::{CuratorTaskLocator, OverlordTaskLocator, TaskLocator};
use crate::druid::overlord::{OverlordClient, OverlordConfig, OverlordEndpoint};
use crate::druid::partitioner::dimension_hash_partitioner;
use crate::druid::receiver::{ReceiverClient, ReceiverConfig};
use crate::druid::tls::DruidTls;
use crate::druid::{mangle_service_name, BasicAuth};
use crate::event::{Event, RawEvent, TimestampExtractor};
use crate::metrics::events::{record_outcomes, EventsReceived};
use crate::metrics::{DataSourceMetrics, Metrics};
use crate::retry::RetryPolicy;
use crate::source::Origin;
use crate::spec::properties::{CoreProperties, TaskLocator as TaskLocatorKind};
use crate::spec::{IngestionSpec, TranquilityConfig};
use crate::time::window::WindowRule;
use crate::time::Period;

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
    extractor: TimestampExtractor,
    tranquilizer: Tranquilizer,
    metrics: DataSourceMetrics,
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
    /// A pipeline over any beam, with the spec's timestampSpec and the given batching.
    pub fn with_beam(
        name: &str,
        spec: &IngestionSpec,
        beam: Arc<dyn Beam>,
        tranquilizer: TranquilizerConfig,
        metrics: &Metrics,
    ) -> Result<Self, PipelineError> {
        let extractor =
            TimestampExtractor::new(&spec.data_schema.timestamp_spec()).map_err(|e| {
                PipelineError::Config {
                    data_source: name.to_string(),
                    message: e.to_string(),
                }
            })?;
        let metrics = metrics.data_source(name);
        let observer = Arc::new(MetricsObserver(metrics.clone()));
        Ok(Self {
            inner: Arc::new(Inner {
                name: name.to_string(),
                extractor,
                tranquilizer: Tranquilizer::observed(beam, tranquilizer, observer),
                metrics,
            }),
        })
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
            match Event::from_raw(raw, &inner.extractor) {
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
            match Event::from_raw(raw.into(), &inner.extractor) {
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
            let mut sent = match sent {
                Some(batch) => batch.await.into_iter(),
                None => Vec::new().into_iter(),
            };
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
            match Event::from_raw(RawEvent::unchecked(raw), &inner.extractor) {
                Ok(event) => events.push(event.with_origin(origin)),
                Err(e) => {
                    debug!(dataSource = %inner.name, error = %e, "unparseable event");
                    unparseable.push(i);
                }
            }
        }
        inner.count_unparseable(unparseable.len() as u64);
        if unparseable.is_empty() {
            return inner.tranquilizer.send_whole(events).await.await;
        }
        let mut sent = inner
            .tranquilizer
            .send_whole(events)
            .await
            .await
            .into_iter();
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

/// Overrides for [`Pipelines::from_config`].
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Where every series goes.
    pub metrics: Arc<Metrics>,
    /// Coordinate through this instead of ZooKeeper (one process: the in-process coordinator).
    pub coordinator: Option<Arc<dyn Coordinator>>,
    /// Use this Overlord URL, over `druid.overlord.url` and discovery.
    pub overlord_url: Option<String>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            metrics: Metrics::new(),
            coordinator: None,
            overlord_url: None,
            clock: Arc::new(SystemClock),
        }
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
    /// Builds the production pipeline of every dataSource in `config`.
    pub fn from_config(
        config: &TranquilityConfig,
        options: PipelineOptions,
    ) -> Result<Self, PipelineError> {
        let mut zk: HashMap<String, Arc<ZkConnection>> = HashMap::new();
        let mut pipelines = IndexMap::new();
        let mut shared = Vec::new();
        for ds in config.data_sources() {
            let fail = |message: String| PipelineError::Config {
                data_source: ds.name.clone(),
                message,
            };
            let props =
                CoreProperties::from_properties(&ds.properties).map_err(|e| fail(e.to_string()))?;
            ds.spec.validate().map_err(|e| fail(e.to_string()))?;
            let (pipeline, coordinator, identity) =
                build(&ds.name, &ds.spec, &props, &options, &mut zk)?;
            shared.push((ds.name.clone(), coordinator, identity));
            info!(
                dataSource = %ds.name,
                partitions = props.task_partitions,
                replicants = props.task_replicants,
                "dataSource ready"
            );
            pipelines.insert(ds.name.clone(), pipeline);
        }
        Ok(Self {
            pipelines,
            metrics: options.metrics,
            shared,
        })
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

fn build(
    name: &str,
    spec: &IngestionSpec,
    props: &CoreProperties,
    options: &PipelineOptions,
    zk: &mut HashMap<String, Arc<ZkConnection>>,
) -> Result<(DataSourcePipeline, Arc<dyn Coordinator>, String), PipelineError> {
    let mut zk_connection = || {
        zk.entry(props.zookeeper_connect.clone())
            .or_insert_with(|| {
                Arc::new(ZkConnection::new(
                    props.zookeeper_connect.clone(),
                    duration(&props.zookeeper_timeout),
                ))
            })
            .clone()
    };
    let auth = BasicAuth::from_properties(&props.basic_auth_user, &props.basic_auth_pass);
    let config_error = |message: String| PipelineError::Config {
        data_source: name.to_string(),
        message,
    };
    let tls = DruidTls::from_properties(props).map_err(|e| config_error(e.to_string()))?;
    let overlord_endpoint = match options.overlord_url.clone().or(props.overlord_url.clone()) {
        Some(url) if !tls.is_enabled() && url.trim().to_ascii_lowercase().starts_with("https:") => {
            return Err(config_error(format!(
                "the Overlord URL {url} is HTTPS: set druid.tls.enable=true (and \
                 druid.tls.trustStorePath to the PEM file of Druid's CA)"
            )))
        }
        Some(url) => OverlordEndpoint::Url(url),
        None => OverlordEndpoint::Discovery {
            discovery: Arc::new(CuratorDiscovery::new(
                zk_connection(),
                &props.discovery_path,
            )),
            service_name: props.indexing_service_name.clone(),
        },
    };
    let overlord = OverlordClient::with_tls(
        overlord_endpoint,
        OverlordConfig {
            retry: RetryPolicy {
                period: Some(duration(&props.index_retry_period)),
                ..RetryPolicy::overlord()
            },
            auth: auth.clone(),
            ..OverlordConfig::default()
        },
        &tls,
    );
    let locator: Arc<dyn TaskLocator> = match props.task_locator {
        TaskLocatorKind::Curator => Arc::new(
            CuratorTaskLocator::new(Arc::new(CuratorDiscovery::new(
                zk_connection(),
                &props.discovery_path,
            )))
            .with_tls(tls.is_enabled()),
        ),
        // One attempt per poll: a push must not wait out the Overlord's long retries.
        TaskLocatorKind::Overlord => Arc::new(OverlordTaskLocator::new(
            overlord.with_retry(RetryPolicy::overlord().once()),
            duration(&props.overlord_poll_period),
        )),
    };
    let coordinator: Arc<dyn Coordinator> = match &options.coordinator {
        Some(c) => c.clone(),
        None => Arc::new(ZkCoordinator::new(
            zk_connection(),
            ZkCoordinatorConfig {
                base_path: props.zookeeper_path.clone(),
                ..ZkCoordinatorConfig::default()
            },
        )),
    };
    let metrics = options.metrics.data_source(name);
    let context = Arc::new(DruidBeamContext {
        data_source: name.to_string(),
        receiver: ReceiverClient::with_tls(
            ReceiverConfig {
                retry: RetryPolicy {
                    period: Some(duration(&props.firehose_retry_period)),
                    ..RetryPolicy::receiver()
                },
                quiet_period: duration(&props.firehose_quiet_period),
                auth,
                ..ReceiverConfig::default()
            },
            &tls,
        ),
        locator,
        overlord,
        chunk_size: props.firehose_chunk_size,
        format: props.serialization_format,
        indexing_service_key: mangle_service_name(&props.indexing_service_name),
        metrics,
    });
    let maker = Arc::new(DruidBeamMaker::new(spec.clone(), props.clone(), context));
    let identity = format!(
        "{}/{}",
        mangle_service_name(&props.indexing_service_name),
        name
    );
    let clustered = ClusteredBeam::new(
        ClusteredBeamConfig {
            identity: identity.clone(),
            rule: WindowRule {
                segment_granularity: spec.data_schema.granularity_spec.segment_granularity,
                window_period: spec.tuning_config.window_period(),
                warming_period: props.task_warming_period,
            },
            partitions: props.task_partitions.max(1),
            partitioner: dimension_hash_partitioner(spec),
            clock: options.clock.clone(),
        },
        maker,
        coordinator.clone(),
    );
    let tranquilizer = TranquilizerConfig::builder()
        .max_batch_size(props.max_batch_size)
        .max_pending_batches(props.max_pending_batches)
        .linger_millis(props.linger_millis)
        .block_on_full(props.block_on_full)
        .build()
        .map_err(|e| PipelineError::Config {
            data_source: name.to_string(),
            message: e.to_string(),
        })?;
    let pipeline = DataSourcePipeline::with_beam(
        name,
        spec,
        Arc::new(clustered),
        tranquilizer,
        &options.metrics,
    )?;
    Ok((pipeline, coordinator, identity))
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
            Ok(config) => Pipelines::from_config(&config, PipelineOptions::default())
                .unwrap_err()
                .to_string(),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("wiki") || err.contains("bad.json"), "{err}");
        assert!(err.to_lowercase().contains("quarter"), "{err}");
    }
}
