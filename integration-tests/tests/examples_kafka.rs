//! Example (b), Kafka to Druid, against a real broker (tansu) and druid-local: the sample
//! `kafka.json` (and its YAML twin `kafka.yaml`) with the broker's address, messages produced by Python confluent-kafka, and
//! the example's pipeline sinks; Druid counts every message.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::druid::wait_for_count;
use integration_tests::{python, unique_name, Tansu};
use tranquility::spec::TranquilityConfig;
use tranquility_examples::local::local_pipelines;
use tranquility_kafka::{KafkaConfig, KafkaConnector};

const PRODUCE_PY: &str = r#"
import sys
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
bootstrap, topic = sys.argv[1], sys.argv[2]
admin = AdminClient({"bootstrap.servers": bootstrap})
for f in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]).values():
    f.result(30)
p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
for i, line in enumerate(sys.stdin.buffer.read().split(b"\n")):
    if line:
        p.produce(topic, line, partition=i % 2)
        p.poll(0)
assert p.flush(60) == 0, "messages left undelivered"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_messages_reach_druid_through_the_example_topology() {
    example_topology_runs("kafka.json").await;
}

/// The same mapping in YAML, with dataSources as a map keyed by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_yaml_example_in_the_map_shape_runs_alike() {
    example_topology_runs("kafka.yaml").await;
}

async fn example_topology_runs(name: &str) {
    let broker = Tansu::start().expect("tansu starts");
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let topic = unique_name("metrics");

    // The sample config, pointed at this broker and topic.
    let text = std::fs::read_to_string(test_support::example_configs().join(name)).unwrap();
    let mut file: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    let props = &mut file["properties"];
    props["kafka.bootstrap.servers"] = broker.bootstrap_servers().into();
    props["kafka.group.id"] = unique_name("group").into();
    props["kafka.auto.offset.reset"] = "earliest".into();
    props["commit.periodMillis"] = "500".into();
    let data_source = match &mut file["dataSources"] {
        serde_json::Value::Array(list) => &mut list[0],
        map => &mut map["metrics"],
    };
    data_source["properties"]["topicPattern"] = topic.clone().into();
    let config = TranquilityConfig::from_value(file, name).unwrap();

    let now = chrono::Utc::now().timestamp_millis();
    let lines: String = (0..150)
        .map(|i| {
            format!("{{\"timestamp\":{now},\"host\":\"k{i}\",\"metric\":\"lag\",\"value\":{i}}}\n")
        })
        .collect();
    let mut child = Command::new(python())
        .args(["-c", PRODUCE_PY, &broker.bootstrap_servers(), &topic])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let pipelines = Arc::new(local_pipelines(&config, &druid.url()).unwrap());
    let connector = KafkaConnector::start(
        KafkaConfig::from_config(&config).unwrap(),
        pipelines.clone(),
        pipelines.metrics(),
    )
    .unwrap();
    let counted = wait_for_count(
        &druid.url(),
        "metrics",
        "count",
        150,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(counted, 150);
    connector.stop().await.unwrap();
    let tally = pipelines.get("metrics").unwrap().metrics().snapshot();
    assert_eq!((tally.received, tally.sent), (150, 150));
    pipelines.close().await;
    druid.shutdown().await;
}

/// The nested example (`nested.json`) over Kafka: nested messages are flattened by the
/// pipeline on their way from the topic, and their fields are queryable in druid-local.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_messages_are_flattened_on_the_way_from_kafka() {
    let broker = Tansu::start().expect("tansu starts");
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let topic = unique_name("orders");
    let text =
        std::fs::read_to_string(test_support::example_configs().join("nested.json")).unwrap();
    let mut file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let props = &mut file["properties"];
    props["kafka.bootstrap.servers"] = broker.bootstrap_servers().into();
    props["kafka.group.id"] = unique_name("group").into();
    props["kafka.auto.offset.reset"] = "earliest".into();
    props["commit.periodMillis"] = "500".into();
    file["dataSources"][0]["properties"]["topicPattern"] = topic.clone().into();
    let config = TranquilityConfig::from_value(file, "nested.json").unwrap();

    let now = chrono::Utc::now().timestamp_millis();
    let lines: String = (0..40)
        .map(|i| {
            let order = serde_json::json!({
                "timestamp": now, "status": "paid",
                "customer": {"id": format!("c{}", i % 4), "address": {"country": "FR"}},
                "items": [{"sku": format!("s{}", i % 2)}, {"sku": "x"}, {"sku": "y"}],
                "payment": {"total": 2.0, "currency": "EUR"},
                "context": {"channel": "app"}
            });
            format!("{order}\n")
        })
        .collect();
    let mut child = Command::new(python())
        .args(["-c", PRODUCE_PY, &broker.bootstrap_servers(), &topic])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let pipelines = Arc::new(local_pipelines(&config, &druid.url()).unwrap());
    let connector = KafkaConnector::start(
        KafkaConfig::from_config(&config).unwrap(),
        pipelines.clone(),
        pipelines.metrics(),
    )
    .unwrap();
    let counted =
        wait_for_count(&druid.url(), "orders", "count", 40, Duration::from_secs(60)).await;
    assert_eq!(counted, 40);
    connector.stop().await.unwrap();
    let rows = integration_tests::druid::group_by(
        &druid.url(),
        "orders",
        "all",
        &["customer", "country", "first_sku", "currency", "channel"],
        serde_json::json!([{"type": "longSum", "name": "count", "fieldName": "count"},
                           {"type": "doubleSum", "name": "revenue", "fieldName": "revenue"},
                           {"type": "longSum", "name": "items", "fieldName": "items"}]),
    )
    .await;
    assert_eq!(rows.len(), 4, "{rows:?}");
    for row in &rows {
        let customer = row["customer"].as_str().unwrap_or_default();
        let n: usize = customer.trim_start_matches('c').parse().unwrap();
        let expected = serde_json::json!({
            "customer": customer, "country": "FR", "first_sku": format!("s{}", n % 2),
            "currency": "EUR", "channel": "app", "count": 10, "revenue": 20.0, "items": 30,
            "timestamp": row["timestamp"]
        });
        assert_eq!(row, &expected);
    }
    let tally = pipelines.get("orders").unwrap().metrics().snapshot();
    assert_eq!((tally.received, tally.sent), (40, 40));
    pipelines.close().await;
    druid.shutdown().await;
}
