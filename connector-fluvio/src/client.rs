//! The real Fluvio client behind [`RecordSource`] (feature `fluvio-client`), and [`run`].

use std::future::Future;

use async_trait::async_trait;
use bytes::Bytes;
use fluvio::consumer::{ConsumerConfigExtBuilder, ConsumerStream, OffsetManagementStrategy};
use fluvio::{Fluvio, FluvioClusterConfig, Offset};
use futures::{FutureExt, StreamExt};
use tranquility::pipeline::Pipelines;

use crate::config::{FluvioConfig, OffsetStart};
use crate::consume::{consume, ConsumeOptions, ConsumeReport};
use crate::error::FluvioError;
use crate::source::{Record, RecordSource, SourceError};

type Stream = Box<
    dyn ConsumerStream<Item = Result<fluvio::consumer::Record, fluvio::dataplane::link::ErrorCode>>
        + Send,
>;

/// A consumer of every partition of one topic, with offsets stored under a consumer name and
/// committed only when asked.
pub struct FluvioSource {
    stream: Stream,
}

impl std::fmt::Debug for FluvioSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FluvioSource").finish_non_exhaustive()
    }
}

impl FluvioSource {
    /// Connects to `endpoint` (or the current profile) and opens a consumer of `topic`.
    pub async fn connect(
        endpoint: Option<&str>,
        topic: &str,
        consumer_id: &str,
        start: OffsetStart,
    ) -> Result<Self, SourceError> {
        let cluster = match endpoint {
            Some(endpoint) => FluvioClusterConfig::new(endpoint),
            None => FluvioClusterConfig::load().map_err(|e| SourceError(e.to_string()))?,
        };
        let fluvio = Fluvio::connect_with_config(&cluster)
            .await
            .map_err(|e| SourceError(format!("connecting to {}: {e}", cluster.endpoint)))?;
        let config = ConsumerConfigExtBuilder::default()
            .topic(topic)
            .offset_consumer(consumer_id)
            .offset_start(match start {
                OffsetStart::Beginning => Offset::beginning(),
                OffsetStart::End => Offset::end(),
            })
            .offset_strategy(OffsetManagementStrategy::Manual)
            .build()
            .map_err(|e| SourceError(e.to_string()))?;
        let stream = fluvio
            .consumer_with_config(config)
            .await
            .map_err(|e| SourceError(e.to_string()))?;
        Ok(Self {
            stream: Box::new(stream),
        })
    }
}

#[async_trait]
impl RecordSource for FluvioSource {
    async fn next(&mut self) -> Option<Result<Record, SourceError>> {
        let record = self.stream.next().await?;
        Some(
            record
                .map(|r| Record {
                    partition: r.partition(),
                    offset: r.offset(),
                    value: Bytes::copy_from_slice(r.value()),
                })
                .map_err(|e| SourceError(e.to_string())),
        )
    }

    async fn commit(&mut self) -> Result<(), SourceError> {
        self.stream
            .offset_commit()
            .await
            .map_err(|e| SourceError(e.to_string()))?;
        self.stream
            .offset_flush()
            .await
            .map_err(|e| SourceError(e.to_string()))
    }
}

/// Consumes every dataSource's topic into its pipeline until `stop` resolves (or a topic
/// fails), then commits what has outcomes. Reports per dataSource, in config order.
pub async fn run(
    config: &FluvioConfig,
    pipelines: &Pipelines,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<Vec<(String, ConsumeReport)>, FluvioError> {
    let stop = stop.boxed().shared();
    let loops = config.routes.iter().map(|route| {
        let stop = stop.clone();
        async move {
            let name = route.data_source.name.clone();
            let pipeline = pipelines
                .get(&name)
                .ok_or_else(|| FluvioError::NoPipeline(name.clone()))?;
            let source = FluvioSource::connect(
                config.endpoint.as_deref(),
                &route.topic,
                &config.consumer_id,
                config.offset_start,
            )
            .await
            .map_err(|source| FluvioError::Connect {
                topic: route.topic.clone(),
                source,
            })?;
            tracing::info!(topic = %route.topic, dataSource = %name, "consuming");
            let options = ConsumeOptions {
                commit_period: config.commit_period,
                ..ConsumeOptions::new(route.topic.clone())
            };
            let report = consume(source, pipeline, &options, stop).await?;
            Ok::<_, FluvioError>((name, report))
        }
    });
    futures::future::try_join_all(loops).await
}
