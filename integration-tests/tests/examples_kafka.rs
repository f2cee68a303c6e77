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
use tranquility_examples::kafka::PipelineSinks;
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
    let broker = Tansu::start();
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
        Arc::new(PipelineSinks(pipelines.clone())),
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
