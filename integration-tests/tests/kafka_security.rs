//! Kafka security and compression against the real broker (tansu) into druid-local: TLS
//! (`security.protocol=SSL`) through a TLS-terminating proxy (stunnel4, since tansu 0.6 has no
//! usable TLS listener), SASL/SCRAM-SHA-512 over TLS, and a zstd-compressed topic. Messages
//! come from an independent client (Python confluent-kafka) with the same settings.

use std::sync::Arc;
use std::time::Duration;

use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::kafka::KafkaClient;
use integration_tests::{druid, free_port, unique_name, Stunnel, Tansu, TansuOptions};
use kafka_common::init_logs;
use serde_json::{json, Map, Value};
use test_support::certs::TestPki;
use tranquility::coord::LocalCoordinator;
use tranquility::metrics::Metrics;
use tranquility::pipeline::Pipelines;
use tranquility::spec::TranquilityConfig;
use tranquility_kafka::{KafkaConfig, KafkaConnector, PipelineSinks};

mod kafka_common;

const WAIT: Duration = Duration::from_secs(60);

fn events(n: u64) -> Vec<String> {
    let ts = integration_tests::setup::now_millis();
    (0..n)
        .map(|i| format!(r#"{{"timestamp": {ts}, "page": "p{i}", "n": {i}}}"#))
        .collect()
}

/// A kafka.json whose one dataSource (named after `topic`) reads `topic`, with `kafka` (the
/// client settings, without the `kafka.` prefix) in its global properties.
fn kafka_json(topic: &str, group: &str, bootstrap: &str, kafka: &Value) -> KafkaConfig {
    let mut properties = Map::new();
    properties.insert("kafka.bootstrap.servers".into(), bootstrap.into());
    properties.insert("kafka.group.id".into(), group.into());
    properties.insert("kafka.auto.offset.reset".into(), "earliest".into());
    properties.insert("consumer.numThreads".into(), "1".into());
    properties.insert("commit.periodMillis".into(), "300".into());
    // Test plumbing: one process, tasks found through druid-local's Overlord.
    properties.insert("druidBeam.taskLocator".into(), "overlord".into());
    for (k, v) in kafka.as_object().into_iter().flatten() {
        properties.insert(format!("kafka.{k}"), v.clone());
    }
    let file = json!({
        "dataSources": [{
            "spec": {
                "dataSchema": {
                    "dataSource": topic,
                    "parser": {"type": "string", "parseSpec": {"format": "json",
                        "timestampSpec": {"column": "timestamp", "format": "auto"},
                        "dimensionsSpec": {"dimensions": ["page"]}}},
                    "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"},
                    "metricsSpec": [{"type": "count", "name": "count"}]
                },
                "tuningConfig": {"type": "realtime", "windowPeriod": "PT10M"}
            },
            "properties": {"topicPattern": topic}
        }],
        "properties": properties
    });
    let loaded = TranquilityConfig::from_value(file, "kafka.json").expect("config loads");
    KafkaConfig::from_config(&loaded).expect("kafka config")
}

/// Produces `n` events to a new `topic` of 2 partitions through `client`, runs the connector
/// with `kafka` settings until druid-local counts them all, and checks the commits.
async fn consume_into_druid(client: &KafkaClient, kafka: &Value, n: u64) {
    let topic = unique_name("secure");
    client.create_topic(&topic, 2);
    client.produce(&topic, 2, &events(n));
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .expect("druid-local starts");
    let metrics = Metrics::new();
    let sinks = Arc::new(PipelineSinks::new(
        Pipelines::builder()
            .metrics(metrics.clone())
            .coordinator(Arc::new(LocalCoordinator::new()))
            .overlord_url(druid.url()),
    ));
    let group = unique_name("group");
    let config = kafka_json(&topic, &group, &client.bootstrap, kafka);
    let connector = KafkaConnector::start(config, sinks.clone(), &metrics).expect("starts");
    let rows = druid::wait_for_count(&druid.url(), &topic, "count", n as i64, WAIT).await;
    assert_eq!(rows, n as i64, "{topic}: rows in druid-local");
    connector.stop().await.expect("clean stop");
    let half = (n / 2) as i64;
    assert_eq!(client.committed(&group, &topic, 2), vec![half, half]);
    for p in sinks.pipelines() {
        let tally = p.metrics().snapshot();
        assert!(tally.is_balanced() && tally.sent == n, "{tally:?}");
    }
    sinks.close().await;
    druid.shutdown().await;
}

/// A broker that advertises a TLS proxy in front of it, and the proxy.
fn broker_behind_tls(pki: &TestPki, scram_users: &[(&str, &str)]) -> (Tansu, Stunnel) {
    let tls_port = free_port();
    let broker = Tansu::start_with_options(
        false,
        TansuOptions {
            advertised_port: Some(tls_port),
            scram_users: scram_users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
        },
    )
    .expect("tansu starts");
    let proxy = Stunnel::start_on(tls_port, broker.port(), &pki.server_cert, &pki.server_key);
    (broker, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_brings_every_message_into_druid() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::create(dir.path(), "kafka");
    let (_broker, proxy) = broker_behind_tls(&pki, &[]);
    let kafka = json!({"security.protocol": "SSL", "ssl.ca.location": pki.ca});
    let client = KafkaClient {
        bootstrap: proxy.address(),
        extra: kafka.clone(),
    };
    consume_into_druid(&client, &kafka, 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_scram_over_ssl_brings_every_message_into_druid() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::create(dir.path(), "scram");
    let (_broker, proxy) = broker_behind_tls(&pki, &[("tranquility", "s3cret-scram")]);
    let kafka = json!({
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": pki.ca,
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "tranquility",
        "sasl.password": "s3cret-scram",
    });
    let client = KafkaClient {
        bootstrap: proxy.address(),
        extra: kafka.clone(),
    };
    consume_into_druid(&client, &kafka, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zstd_compressed_topic_is_consumed_end_to_end() {
    init_logs();
    let broker = Tansu::start().expect("tansu starts");
    let client = KafkaClient {
        bootstrap: broker.bootstrap_servers(),
        extra: json!({"compression.type": "zstd"}),
    };
    consume_into_druid(&client, &json!({}), 200).await;
}
