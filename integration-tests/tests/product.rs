//! The product's paths end to end, each body run against druid-local (`druid_local_*`) and,
//! together on one cluster, against a real Druid (`real_druid_product_paths`):
//!
//! - the README's quickstart path: Tranquility Server serving the original
//!   `server.json.example` (or, without peer data, the repository's `examples/configs/
//!   server.json`), events posted over HTTP and counted by a Broker's query;
//! - the Kafka connector: messages produced into tansu by an independent client, consumed by
//!   `KafkaConnector`, counted in Druid, offsets committed;
//! - ZooKeeper coordination: two Tranquility instances sharing one set of tasks.
//!
//! Every path discovers Druid as a deployment would: the server and the two instances through
//! ZooKeeper (Overlord and receivers announced there), the Kafka connector through the
//! Overlord's URL and the task locations it reports. After each path its tasks are shut down,
//! so the next finds the task slots of a small real cluster free.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use integration_tests::real_druid::REALTIME_RELEASE;
use integration_tests::setup::{assert_all_sent, config, now_millis};
use integration_tests::target::DruidTarget;
use integration_tests::{druid, unique_name, Tansu};
use kafka_common::{committed, create_topic, produce};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tranquility::coord::LocalCoordinator;
use tranquility::metrics::Metrics;
use tranquility::pipeline::Pipelines;
use tranquility::spec::TranquilityConfig;
use tranquility_kafka::{KafkaConfig, KafkaConnector, PipelineSinks};
use tranquility_server::{AppState, Server, ServerConfig};

mod kafka_common;

/// How long events may take to be counted by a real Broker (peon start, segment announcement).
const COUNTED: Duration = Duration::from_secs(120);

/// Sums of `metrics` (longSum for `count`, doubleSum otherwise) over all rows of `data_source`.
async fn totals(broker: &str, data_source: &str, metrics: &[&str]) -> Value {
    let aggregations: Vec<Value> = metrics
        .iter()
        .map(|m| {
            let ty = if *m == "count" {
                "longSum"
            } else {
                "doubleSum"
            };
            json!({"type": ty, "name": m, "fieldName": m})
        })
        .collect();
    let answer = druid::query(
        broker,
        &json!({"queryType": "timeseries", "dataSource": data_source, "granularity": "all",
                "intervals": ["2000-01-01/2100-01-01"], "aggregations": aggregations}),
    )
    .await;
    answer
        .get(0)
        .map(|row| row["result"].clone())
        .unwrap_or(Value::Null)
}

/// Waits until `data_source` counts `expected` events, then checks no more arrive.
async fn wait_counted(broker: &str, data_source: &str, expected: i64) {
    let n = druid::wait_for_count(broker, data_source, "count", expected, COUNTED).await;
    assert_eq!(n, expected, "{data_source}: events counted by the Broker");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let n = druid::count(broker, data_source, "count").await;
    assert_eq!(n, expected, "{data_source}: events kept arriving");
}

/// A config file as shipped, with only `properties` pointed at the test's services.
fn config_with(path: &std::path::Path, properties: &[(&str, String)]) -> TranquilityConfig {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let text = std::fs::read_to_string(path).expect("read the config");
    let mut root: Value = serde_json::from_str(&text).expect("the config is JSON");
    for (key, value) in properties {
        root["properties"][*key] = Value::from(value.as_str());
    }
    TranquilityConfig::from_value(root, &name).expect("the config loads")
}

/// Events for one dataSource and the sums Druid should then report.
struct Batch {
    data_source: &'static str,
    events: Vec<Value>,
    metrics: &'static [&'static str],
    sums: Value,
}

/// The README's quickstart path: Tranquility Server with a shipped config (only
/// `zookeeper.connect` changed), events posted, counted by the Broker.
async fn server_serves_the_example_config(t: &DruidTarget) {
    // Without peer data the repository's own example stands in (no skip is reported).
    let peer = test_support::peer_data_root(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
        .map(|root| root.join("tranquility-configs/server.json.example"))
        .filter(|p| p.exists());
    let (path, batches) = match &peer {
        // The original's example: dataSource `foo`, dimensions dim1..dim3, metrics count, x.
        Some(path) => {
            let events: Vec<Value> = (0..12)
                .map(|i| {
                    json!({"timestamp": now_millis(), "dim1": format!("a{}", i % 3),
                           "dim2": "b", "dim3": i, "x": 2.5})
                })
                .collect();
            let example = Batch {
                data_source: "foo",
                events,
                metrics: &["count", "x"],
                sums: json!({"count": 12, "x": 30.0}),
            };
            (path.clone(), vec![example])
        }
        None => {
            let clicks: Vec<Value> = (0..9)
                .map(|i| json!({"timestamp": now_millis(), "page": format!("p{}", i % 3), "country": "NZ", "clicks": 2}))
                .collect();
            let metrics: Vec<Value> = (0..5)
                .map(|i| json!({"timestamp": now_millis(), "host": format!("h{i}"), "metric": "cpu", "value": 0.5}))
                .collect();
            (
                test_support::example_configs().join("server.json"),
                vec![
                    Batch {
                        data_source: "clicks",
                        events: clicks,
                        metrics: &["count", "clicks"],
                        sums: json!({"count": 9, "clicks": 18.0}),
                    },
                    Batch {
                        data_source: "metrics",
                        events: metrics,
                        metrics: &["count", "value"],
                        sums: json!({"count": 5, "value": 2.5}),
                    },
                ],
            )
        }
    };
    eprintln!("{}: serving {}", t.name(), path.display());
    let mut properties = vec![("zookeeper.connect", t.zookeeper_connect())];
    // The repository's example names the Overlord's URL (the original finds it in ZooKeeper).
    if peer.is_none() {
        properties.push(("druid.overlord.url", t.overlord_url()));
    }
    let config = config_with(&path, &properties);
    let server_config = ServerConfig::from_config(&config).expect("server config");
    let pipelines = Pipelines::builder().build(&config).expect("pipelines");
    let state = AppState::from_pipelines(server_config, &config, &pipelines);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = Server::from_listener(listener, state);
    let addr = server.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::new();
    for Batch {
        data_source,
        events,
        ..
    } in &batches
    {
        let n = events.len();
        let answer = http
            .post(format!("http://{addr}/v1/post/{data_source}"))
            .json(events)
            .send()
            .await
            .expect("post");
        assert_eq!(answer.status(), 200);
        let body: Value = answer.json().await.expect("JSON answer");
        assert_eq!(
            body["result"],
            json!({"received": n, "sent": n, "dropped": 0, "failed": 0}),
            "{data_source}"
        );
    }
    let broker = t.broker_url();
    for Batch {
        data_source,
        events,
        metrics,
        sums,
    } in &batches
    {
        wait_counted(&broker, data_source, events.len() as i64).await;
        assert_eq!(&totals(&broker, data_source, metrics).await, sums);
    }
    let _ = stop.send(());
    let reports = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the server stops")
        .expect("server task")
        .expect("server run");
    for Batch {
        data_source,
        events,
        ..
    } in &batches
    {
        let report = reports
            .iter()
            .find(|r| r.name == *data_source)
            .expect("a report per dataSource");
        let n = events.len() as u64;
        assert_eq!(
            (report.tally.received, report.tally.sent, report.pending),
            (n, n, 0)
        );
        t.kill_tasks(data_source).await;
    }
}

/// The Kafka connector: an independent client produces into tansu, `KafkaConnector` pushes
/// through the pipelines, the Broker counts every message once, offsets are committed.
async fn kafka_connector_into_druid(t: &DruidTarget) {
    kafka_common::init_logs();
    let broker = Tansu::start().expect("tansu starts");
    let topic = unique_name("kafka-real");
    create_topic(&broker, &topic, 2);
    let ts = now_millis();
    const N: u64 = 600;
    let lines: Vec<String> = (0..N)
        .map(|n| format!(r#"{{"timestamp": {ts}, "page": "p{}", "n": {n}}}"#, n % 7))
        .collect();
    produce(&broker, &topic, 2, &lines);

    let group = unique_name("group");
    let file = json!({
        "dataSources": [{
            "spec": {
                "dataSchema": {
                    "dataSource": topic,
                    "parser": {"type": "string", "parseSpec": {"format": "json",
                        "timestampSpec": {"column": "timestamp", "format": "auto"},
                        "dimensionsSpec": {"dimensions": ["page"]}}},
                    "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"},
                    "metricsSpec": [{"type": "count", "name": "count"},
                                    {"type": "doubleSum", "name": "n", "fieldName": "n"}]
                },
                "tuningConfig": {"type": "realtime", "windowPeriod": "PT10M"}
            },
            "properties": {"topicPattern": topic}
        }],
        "properties": {
            "kafka.bootstrap.servers": broker.bootstrap_servers(),
            "kafka.group.id": group,
            "kafka.auto.offset.reset": "earliest",
            "consumer.numThreads": "1",
            "commit.periodMillis": "300",
            // Receivers through the task locations the Overlord reports.
            "druidBeam.taskLocator": "overlord",
        }
    });
    let loaded = TranquilityConfig::from_value(file, "kafka.json").expect("config loads");
    let config = KafkaConfig::from_config(&loaded).expect("kafka config");
    let metrics = Metrics::new();
    let sinks = Arc::new(PipelineSinks::new(
        Pipelines::builder()
            .metrics(metrics.clone())
            .coordinator(Arc::new(LocalCoordinator::new()))
            .overlord_url(t.overlord_url()),
    ));
    let connector = KafkaConnector::start(config, sinks.clone(), &metrics).expect("starts");
    let broker_url = t.broker_url();
    wait_counted(&broker_url, &topic, N as i64).await;
    assert_eq!(
        totals(&broker_url, &topic, &["count", "n"]).await,
        json!({"count": N, "n": (N * (N - 1) / 2) as f64})
    );
    connector.stop().await.expect("clean stop");
    let offsets = committed(&broker, &group, &topic, 2);
    assert_eq!(offsets.iter().sum::<i64>() as u64, N, "{offsets:?}");
    for p in sinks.pipelines() {
        let tally = p.metrics().snapshot();
        assert!(tally.is_balanced(), "{tally:?}");
        assert_eq!((tally.received, tally.sent), (N, N), "{tally:?}");
    }
    sinks.close().await;
    t.kill_tasks(&topic).await;
}

/// Two instances, coordinated through ZooKeeper, send into one dataSource: one set of tasks
/// (partitions x replicants) is created between them, and every event of both is counted.
async fn two_instances_share_tasks_through_zookeeper(t: &DruidTarget) {
    let ds = unique_name("zk-real");
    // One replicant: the replicas of a partition must run on different workers, and a small
    // real cluster has one.
    let cfg = config(
        &ds,
        "hour",
        &[
            ("zookeeper.connect", &t.zookeeper_connect()),
            ("task.partitions", "2"),
            ("task.replicants", "1"),
        ],
    );
    let instance = || {
        Pipelines::builder()
            .metrics(Metrics::new())
            .build(&cfg)
            .expect("pipelines")
    };
    let instances = [instance(), instance()];
    let now = now_millis();
    let sends = instances.iter().enumerate().map(|(i, p)| {
        let pipeline = p.get(&ds).expect("the dataSource").clone();
        let raws = (0..200)
            .map(|j| {
                Bytes::from(json!({"timestamp": now, "page": format!("p{i}-{j}")}).to_string())
            })
            .collect();
        async move { pipeline.send_all(raws).await }
    });
    let began = Instant::now();
    for outcomes in futures::future::join_all(sends).await {
        assert_all_sent(&outcomes);
    }
    eprintln!(
        "{}: two instances sent 400 events in {:.1} s",
        t.name(),
        began.elapsed().as_secs_f64()
    );
    let overlord = t.overlord_url();
    let tasks = druid::running_task_ids(&overlord, &ds).await;
    assert_eq!(
        tasks.len(),
        2,
        "exactly partitions x replicants tasks: {tasks:?}"
    );
    wait_counted(&t.broker_url(), &ds, 400).await;
    for p in &instances {
        let tally = p.get(&ds).expect("the dataSource").metrics().snapshot();
        assert_eq!((tally.received, tally.sent, tally.failed), (200, 200, 0));
    }
    for p in &instances {
        p.close().await;
    }
    t.kill_tasks(&ds).await;
}

/// Runs `check` against druid-local.
macro_rules! druid_local_test {
    ($name:ident, $check:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let target = DruidTarget::local().await;
            $check(&target).await;
            target.stop().await;
        }
    };
}

druid_local_test!(
    druid_local_server_serves_the_example_config,
    server_serves_the_example_config
);
druid_local_test!(
    druid_local_kafka_connector_into_druid,
    kafka_connector_into_druid
);
druid_local_test!(
    druid_local_two_instances_share_tasks_through_zookeeper,
    two_instances_share_tasks_through_zookeeper
);

/// Every path against one real cluster, in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_druid_product_paths() {
    let Some(target) = DruidTarget::real(REALTIME_RELEASE, "real_druid_product_paths").await else {
        return;
    };
    let began = Instant::now();
    server_serves_the_example_config(&target).await;
    eprintln!("server passed ({:.1} s)", began.elapsed().as_secs_f64());
    kafka_connector_into_druid(&target).await;
    eprintln!(
        "kafka connector passed ({:.1} s)",
        began.elapsed().as_secs_f64()
    );
    two_instances_share_tasks_through_zookeeper(&target).await;
    eprintln!(
        "ZooKeeper coordination passed ({:.1} s)",
        began.elapsed().as_secs_f64()
    );
    target.stop().await;
}
