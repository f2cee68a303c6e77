//! The real Fluvio client behind [`RecordSource`] (feature `fluvio-client`), and [`run`]. The
//! crate docs give the client's cancellation rule and how offsets are committed around it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use fluvio::consumer::RetryMode;
use fluvio::consumer::{ConsumerConfigExt, ConsumerStream, OffsetManagementStrategy, Record};
use fluvio::dataplane::link::ErrorCode;
use fluvio::{Fluvio, FluvioClusterConfig, Offset};
use futures::StreamExt;
use tranquility::pipeline::Pipelines;
use tranquility::source::{PartitionId, Position, RecordSource, SourceError};
use tranquility::source::{SourceRecord, SourceReport};

use crate::config::{FluvioConfig, OffsetStart};
use crate::{run_topics, FluvioError};

type Stream = Box<dyn ConsumerStream<Item = Result<Record, ErrorCode>> + Send>;

/// How long storing one partition's offset may take (open, read one record, flush).
const STORE_TIMEOUT: Duration = Duration::from_secs(30);

/// A consumer of every partition of one topic, whose offsets are stored under a consumer name.
pub struct FluvioSource {
    fluvio: Fluvio,
    topic: Arc<str>,
    consumer_id: String,
    /// Read by the one pending `next()`; never committed (see the crate docs).
    stream: tokio::sync::Mutex<Stream>,
}

impl std::fmt::Debug for FluvioSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FluvioSource")
            .field("topic", &self.topic)
            .finish()
    }
}

fn error(what: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError(format!("{what}: {e}"))
}

impl FluvioSource {
    /// Connects to the cluster of `config` and opens a consumer of `topic`.
    pub async fn connect(config: &FluvioConfig, topic: &str) -> Result<Self, SourceError> {
        let cluster = match &config.endpoint {
            Some(endpoint) => FluvioClusterConfig::new(endpoint),
            None => FluvioClusterConfig::load().map_err(|e| error("Fluvio profile", e))?,
        };
        let fluvio = Fluvio::connect_with_config(&cluster)
            .await
            .map_err(|e| error(&format!("connecting to {}", cluster.endpoint), e))?;
        let start = match config.offset_start {
            OffsetStart::Beginning => Offset::beginning(),
            OffsetStart::End => Offset::end(),
        };
        let consumer_id = config.consumer_id.clone();
        let stream = open(&fluvio, topic, &consumer_id, start, None).await?;
        Ok(Self {
            fluvio,
            topic: Arc::from(topic),
            consumer_id,
            stream: tokio::sync::Mutex::new(stream),
        })
    }

    /// Stores `last` as the last processed record of `partition`: a stream of that partition
    /// only, opened at `last`, read once, then committed and flushed between records.
    async fn store(&self, partition: u32, last: i64) -> Result<(), SourceError> {
        let start = Offset::absolute(last).map_err(|e| error("offset", e))?;
        let (fluvio, topic) = (&self.fluvio, &self.topic);
        let mut stream = open(fluvio, topic, &self.consumer_id, start, Some(partition)).await?;
        match stream.next().await {
            Some(Ok(record)) if record.offset() == last => {}
            Some(Ok(record)) => return Err(error("record gone", record.offset())),
            Some(Err(e)) => return Err(error("reading", e)),
            None => return Err(SourceError::new("the partition ended")),
        }
        stream
            .offset_commit()
            .await
            .map_err(|e| error("commit", e))?;
        stream.offset_flush().await.map_err(|e| error("flush", e))
    }
}

/// A consumer of `topic` (of one `partition`, or all) from `start`, whose offsets are stored
/// on request only; one partition's consumer does not retry.
async fn open(
    fluvio: &Fluvio,
    topic: &str,
    consumer_id: &str,
    start: Offset,
    partition: Option<u32>,
) -> Result<Stream, SourceError> {
    let mut config = ConsumerConfigExt::builder();
    config
        .topic(topic)
        .offset_consumer(consumer_id)
        .offset_start(start);
    config.offset_strategy(OffsetManagementStrategy::Manual);
    if let Some(partition) = partition {
        config.partition(partition).retry_mode(RetryMode::Disabled);
    }
    let config = config.build().map_err(|e| error("consumer config", e))?;
    let stream = fluvio.consumer_with_config(config).await;
    Ok(Box::new(stream.map_err(|e| error("opening", e))?))
}

#[async_trait]
impl RecordSource for FluvioSource {
    async fn next(&self) -> Option<Result<SourceRecord, SourceError>> {
        let record = match self.stream.lock().await.next().await? {
            Ok(record) => record,
            Err(e) => return Some(Err(SourceError::new(e))),
        };
        let Ok(partition) = i32::try_from(record.partition()) else {
            return Some(Err(error("partition", record.partition())));
        };
        Some(Ok(SourceRecord {
            partition: PartitionId::new(self.topic.clone(), partition),
            offset: record.offset(),
            payload: Some(Bytes::copy_from_slice(record.value())),
        }))
    }

    async fn commit(&self, positions: &[Position]) -> Result<(), SourceError> {
        for p in positions {
            let partition = u32::try_from(p.partition.partition);
            let partition = partition.map_err(|e| error("partition", e))?;
            // Fluvio stores the last processed record; the driver commits the next to read.
            // On a timeout the store's stream is dropped uncommitted, its read cancelled.
            let stored = tokio::time::timeout(STORE_TIMEOUT, self.store(partition, p.offset - 1));
            match stored.await {
                Ok(result) => result.map_err(|e| error(&format!("storing {}", p.partition), e))?,
                Err(_) => return Err(error("storing timed out", &p.partition)),
            }
        }
        Ok(())
    }
}

/// Consumes every dataSource's topic into its pipeline until `stop` resolves (or a topic
/// fails), then commits what has outcomes. Reports per dataSource, in config order.
pub async fn run(
    config: &FluvioConfig,
    pipelines: &Pipelines,
    stop: impl Future<Output = ()> + Send,
) -> Result<Vec<(String, SourceReport)>, FluvioError> {
    let open = |route: &crate::DataSourceTopic| {
        let topic = route.topic.clone();
        async move { FluvioSource::connect(config, &topic).await }
    };
    let sink_of = |name: &str| pipelines.event_sink(name);
    let reports = run_topics(&config.routes, &config.options, sink_of, open, stop);
    Ok(reports.await?)
}
