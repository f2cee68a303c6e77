//! The supervisor backend (Druid 31+ with Kafka): events go to a Kafka topic per dataSource,
//! and Druid's Kafka indexing service reads it.
//!
//! ```text
//! send_batch ─> window rule (Dropped(OutsideWindow), as on every backend)
//!            ─> first send: SupervisorManager::ensure (topic, then supervisor, once)
//!            ─> produce, keyed by the partition hash (idempotent producer, acks=all)
//!            ─> Sent on the broker's acknowledgement; Failed with Kafka's error
//! ```
//!
//! **Keys.** Each record's key is the event's partition hash (its truncated time and
//! dimension values, `druid::partitioner`), so rows that roll up together land in one
//! partition and one reading task: rollup stays local, as with realtime partitions.
//!
//! **Delivery.** The producer is idempotent (`enable.idempotence`, `acks=all`): librdkafka's
//! retries cannot write a record twice, and `Sent` means every in-sync replica has it. From
//! there Druid's supervisor commits rows and offsets together (exactly once). What Druid then
//! rejects (late or early messages, a filter, parse errors) is only counted: the
//! `tranquility_druid_rows` gauges read the supervisor's `/stats`.
//!
//! **Memory.** Events wait for their acknowledgement as pending events of the pipeline's
//! Tranquilizer, which bounds them as on every backend; librdkafka's own queue
//! (`queue.buffering.max.messages`) only delays a send while it is full.

mod manager;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;
use indexmap::IndexMap;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use tokio::sync::OnceCell;
use tracing::warn;

use crate::beam::{Beam, CloseError, DropReason, Outcome, Partitioner, SendError};
use crate::coord::Coordinator;
use crate::druid::overlord::OverlordClient;
use crate::event::Event;
use crate::metrics::DataSourceMetrics;
use crate::time::window::WindowRule;
use crate::time::Clock;

pub use manager::{
    ensure_supervisor_spec, sum_stats, supervisor_status, validate_topic, SetupError,
    SupervisorAction, SupervisorManager, SupervisorSetup, SupervisorStatus,
};

/// Settings of a [`SupervisorBeam`].
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// The dataSource.
    pub data_source: String,
    /// The window rule (segment granularity and windowPeriod).
    pub rule: WindowRule,
    /// The brokers (`druid.ingestion.kafka.bootstrap.servers`).
    pub bootstrap_servers: String,
    /// librdkafka settings of the producer and admin client
    /// (`druid.ingestion.kafka.producer.*`); they win over Tranquility's.
    pub producer_properties: IndexMap<String, String>,
    /// What the manager sets up.
    pub setup: SupervisorSetup,
}

/// Events of one dataSource produced to its topic; see the module docs.
#[derive(Clone)]
pub struct SupervisorBeam {
    inner: Arc<Inner>,
}

struct Inner {
    config: SupervisorConfig,
    producer: FutureProducer,
    manager: SupervisorManager,
    partitioner: Partitioner,
    clock: Arc<dyn Clock>,
    ready: OnceCell<()>,
    closed: AtomicBool,
}

impl fmt::Debug for SupervisorBeam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorBeam")
            .field("data_source", &self.inner.config.data_source)
            .field("topic", &self.inner.config.setup.topic())
            .finish_non_exhaustive()
    }
}

/// The librdkafka settings of Tranquility's producer, `overrides` laid on top.
pub fn producer_config(
    bootstrap_servers: &str,
    overrides: &IndexMap<String, String>,
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        // The Java client's partitioner: the same key lands in the same partition whichever
        // client produced it.
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5");
    for (k, v) in overrides {
        config.set(k, v);
    }
    config
}

impl SupervisorBeam {
    /// A beam producing to the dataSource's topic; the topic and the supervisor are set up at
    /// the first send (through `overlord`, serialised by `coordinator` across instances).
    pub fn new(
        config: SupervisorConfig,
        partitioner: Partitioner,
        overlord: OverlordClient,
        coordinator: Arc<dyn Coordinator>,
        clock: Arc<dyn Clock>,
        metrics: DataSourceMetrics,
    ) -> Result<Self, String> {
        let producer: FutureProducer =
            producer_config(&config.bootstrap_servers, &config.producer_properties)
                .create()
                .map_err(|e| {
                    format!(
                        "cannot create the Kafka producer for {}: {e}",
                        config.bootstrap_servers
                    )
                })?;
        let admin = producer_config(&config.bootstrap_servers, &config.producer_properties);
        let manager =
            SupervisorManager::new(config.setup.clone(), admin, overlord, coordinator, metrics)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                producer,
                manager,
                partitioner,
                clock,
                ready: OnceCell::new(),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// The manager of this dataSource's topic and supervisor.
    pub fn manager(&self) -> &SupervisorManager {
        &self.inner.manager
    }
}

impl Inner {
    fn fail(&self, message: String, retriable: bool) -> Outcome {
        let data_source = &self.config.data_source;
        Outcome::failed(SendError::backend(data_source, message, retriable))
    }

    /// Enqueues one record, waiting while librdkafka's queue is full.
    async fn enqueue(
        &self,
        key: [u8; 8],
        payload: &[u8],
    ) -> Result<rdkafka::producer::DeliveryFuture, KafkaError> {
        let topic = self.config.setup.topic();
        loop {
            let record = FutureRecord::to(topic).key(&key[..]).payload(payload);
            match self.producer.send_result(record) {
                Ok(delivery) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
}

#[async_trait]
impl Beam for SupervisorBeam {
    async fn send_batch(&self, events: Vec<Event>) -> Vec<Outcome> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return vec![Outcome::Dropped(DropReason::BeamClosed); events.len()];
        }
        let window = inner.config.rule.accept_window(inner.clock.now_millis());
        let mut outcomes: Vec<Option<Outcome>> = events
            .iter()
            .map(|e| {
                (!window.contains(e.timestamp_millis()))
                    .then_some(Outcome::Dropped(DropReason::OutsideWindow))
            })
            .collect();
        if outcomes.iter().all(Option::is_some) {
            return outcomes.into_iter().flatten().collect();
        }
        if let Err(e) = inner.ready.get_or_try_init(|| inner.manager.ensure()).await {
            let failed = inner.fail(e.to_string(), e.is_retriable());
            return outcomes
                .into_iter()
                .map(|o| o.unwrap_or_else(|| failed.clone()))
                .collect();
        }
        let topic = inner.config.setup.topic();
        let mut deliveries = Vec::new();
        for (i, event) in events.iter().enumerate() {
            if outcomes[i].is_some() {
                continue;
            }
            let key = ((inner.partitioner)(event) as u64).to_be_bytes();
            match inner.enqueue(key, event.raw()).await {
                Ok(delivery) => deliveries.push((i, delivery)),
                Err(e) => {
                    outcomes[i] = Some(inner.fail(format!("producing to topic {topic}: {e}"), true))
                }
            }
        }
        let (indexes, futures): (Vec<usize>, Vec<_>) = deliveries.into_iter().unzip();
        for (i, result) in indexes.into_iter().zip(join_all(futures).await) {
            outcomes[i] = Some(match result {
                Ok(Ok(_)) => Outcome::Sent,
                Ok(Err((e, _))) => Outcome::failed(SendError::Push {
                    target: format!("Kafka topic {topic}"),
                    message: e.to_string(),
                }),
                Err(_) => inner.fail(format!("the producer of topic {topic} went away"), true),
            });
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| inner.fail("no outcome".into(), false)))
            .collect()
    }

    async fn close(&self) -> Result<(), CloseError> {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.manager.stop();
        // Every send awaited its acknowledgements already; this only drains stragglers.
        let producer = self.inner.producer.clone();
        let flushed =
            tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(30))).await;
        match flushed {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                warn!(dataSource = %self.inner.config.data_source, error = %e, "flushing the Kafka producer");
                Err(CloseError(format!("flushing the Kafka producer: {e}")))
            }
            Err(e) => Err(CloseError(format!("flushing the Kafka producer: {e}"))),
        }
    }
}
