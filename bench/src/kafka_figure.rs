//! The Kafka figure: the connector (tansu topic -> `tranquility kafka`'s consumer -> pipelines
//! -> druid-local) against a raw rdkafka consumer that only reads the same topic.
//!
//! Both read the same messages from a fresh consumer group, from the earliest offset; the
//! connector is timed until every event is sent (accepted by druid-local).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use druid_local::{DruidLocal, DruidLocalConfig};
use futures::StreamExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use test_support::harness::Tansu;
use tranquility::coord::LocalCoordinator;
use tranquility::metrics::Metrics;
use tranquility::pipeline::Pipelines;
use tranquility::spec::TranquilityConfig;
use tranquility_kafka::{KafkaConfig, KafkaConnector, PipelineSinks};

use crate::workload;

/// The Kafka figure's raw numbers.
#[derive(Debug, Clone, Serialize)]
pub struct KafkaRaw {
    /// Messages in the topic.
    pub events: usize,
    /// Raw consumer, messages/s.
    pub raw_per_second: f64,
    /// Connector into druid-local, events sent/s.
    pub connector_per_second: f64,
    /// `connector_per_second / raw_per_second`.
    pub ratio: f64,
}

/// The raw consumer's context: it outlives the broker (see `run`), so its complaints about
/// the broker going away are expected and kept out of the report's output.
struct Quiet;

impl ClientContext for Quiet {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "raw consumer");
    }
}

impl ConsumerContext for Quiet {}

pub(crate) fn client(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config
}

/// Creates `topic` with `partitions` partitions; the admin client is returned for the caller
/// to drop when done.
pub(crate) async fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create()?;
    admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|(t, e)| anyhow::anyhow!("creating topic {t}: {e}"))?;
    Ok(admin)
}

/// Creates `topic` (one partition) and fills it with `events` workload events; the clients
/// are returned so the caller drops them when done (librdkafka dislikes early drops here).
pub(crate) async fn fill_topic(
    bootstrap: &str,
    topic: &str,
    events: usize,
) -> anyhow::Result<(AdminClient<DefaultClientContext>, FutureProducer)> {
    let admin = create_topic(bootstrap, topic, 1).await?;

    let producer: FutureProducer = client(bootstrap).set("linger.ms", "5").create()?;
    let payloads = workload::events(events);
    let sends = futures::stream::iter(payloads.into_iter().map(|payload| {
        let producer = producer.clone();
        let topic = topic.to_owned();
        async move {
            producer
                .send(
                    FutureRecord::<(), [u8]>::to(&topic).payload(&payload[..]),
                    Duration::from_secs(30),
                )
                .await
                .map(|_| ())
                .map_err(|(e, _)| e)
        }
    }))
    .buffer_unordered(1000);
    let results: Vec<_> = sends.collect().await;
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        bail!("producing the benchmark topic: {e}");
    }

    Ok((admin, producer))
}

/// Measures the figure with `events` messages.
pub async fn run(events: usize) -> anyhow::Result<KafkaRaw> {
    let broker = Tansu::start()?;
    let bootstrap = broker.bootstrap_servers();
    let topic = format!("bench-{}", std::process::id());

    let (admin, producer) = fill_topic(&bootstrap, &topic, events).await?;

    // The raw consumer: read every message, nothing else.
    let raw: StreamConsumer<Quiet> = client(&bootstrap)
        .set("group.id", format!("{topic}-raw"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create_with_context(Quiet)?;
    raw.subscribe(&[&topic])?;
    let started = Instant::now();
    for _ in 0..events {
        tokio::time::timeout(Duration::from_secs(60), raw.recv())
            .await
            .context("the raw consumer stalled")??;
    }
    let raw_seconds = started.elapsed().as_secs_f64();
    // Dropping a group consumer against tansu can hang in librdkafka: leave the group, then
    // leak the handle (see reference notes on tansu).
    raw.unsubscribe();
    let _ = tokio::time::timeout(Duration::from_secs(1), raw.recv()).await;
    std::mem::forget(raw);

    // The connector into druid-local.
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral()).await?;
    let name = "bench_kafka";
    let mut config: serde_json::Value = serde_json::json!({
        "dataSources": [{"spec": workload::spec_value(name), "properties": {"topicPattern": topic}}],
        "properties": {
            "kafka.bootstrap.servers": bootstrap,
            "kafka.group.id": format!("{topic}-connector"),
            "kafka.auto.offset.reset": "earliest",
            "consumer.numThreads": "1",
            "druidBeam.taskLocator": "overlord",
        }
    });
    config["dataSources"][0]["properties"]["topicPattern"] = topic.clone().into();
    let loaded = TranquilityConfig::from_value(config, "bench-kafka.json")?;
    let kafka = KafkaConfig::from_config(&loaded)?;
    let metrics = Metrics::new();
    let sinks = Arc::new(PipelineSinks::new(
        Pipelines::builder()
            .metrics(metrics.clone())
            .coordinator(Arc::new(LocalCoordinator::new()))
            .overlord_url(druid.url()),
    ));
    let started = Instant::now();
    let connector = KafkaConnector::start(kafka, sinks.clone(), &metrics)?;
    let deadline = started + Duration::from_secs(300);
    loop {
        let sent = metrics.data_source(name).snapshot().sent;
        if sent >= events as u64 {
            break;
        }
        if Instant::now() > deadline {
            bail!("the connector sent {sent} of {events} events in 300 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connector_seconds = started.elapsed().as_secs_f64();
    connector.stop().await?;
    sinks.close().await;
    druid.shutdown().await;
    drop((producer, admin));
    drop(broker);

    let raw_per_second = events as f64 / raw_seconds;
    let connector_per_second = events as f64 / connector_seconds;
    Ok(KafkaRaw {
        events,
        raw_per_second,
        connector_per_second,
        ratio: connector_per_second / raw_per_second,
    })
}
