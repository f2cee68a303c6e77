//! `tranquility kafka` on a real Druid 33 with the original `kafka.json` (plus where ZooKeeper
//! and the Kafka brokers are): each mapping becomes a Kafka supervisor on the user's own
//! topic, the messages already on the topics become rows without passing through Tranquility,
//! and a second run finds the supervisors current and changes nothing.
//!
//! Runs only when the release is installed (`scripts/real-druid.sh install 33.0.0`). The same
//! on druid-local playing 35.0.0: the repository's `kafka.json` becomes a supervisor whose rows
//! are queryable; of the original file, the `twitter` mapping does, and the `wikipedia.*`
//! pattern is refused (druid-local runs no multi-topic supervisors) with the cause printed.

use std::process::Command;
use std::time::{Duration, Instant};

use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::kafka::{create_topic, produce};
use integration_tests::real_druid::{RealDruid, MODERN_RELEASE};
use integration_tests::setup::now_millis;
use integration_tests::{Tansu, ZooKeeper};
use serde_json::{json, Value};
use test_support::peer_data_or_skip;

const BIN: &str = env!("CARGO_BIN_EXE_tranquility");

/// Sums `metric` of `data_source` through the Broker until it reaches `expected` or a time
/// limit passes.
async fn rows(broker: &str, data_source: &str, metric: &str, expected: i64) -> i64 {
    let query = json!({
        "queryType": "timeseries", "dataSource": data_source, "granularity": "all",
        "intervals": ["2000-01-01/2100-01-01"],
        "aggregations": [{"type": "longSum", "name": "n", "fieldName": metric}]
    });
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let answer: Value = match reqwest::Client::new()
            .post(format!("{broker}/druid/v2"))
            .json(&query)
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        let n = answer
            .pointer("/0/result/n")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if n >= expected || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs `tranquility kafka -configFile path` to its end; its exit code and stdout.
fn run_kafka(path: &std::path::Path) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(["kafka", "-configFile", &path.to_string_lossy()])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_json_becomes_supervisors_on_the_users_topics() {
    let example = peer_data_or_skip!("tranquility-configs/kafka.json.example");
    let Some(druid) = RealDruid::start_or_skip(
        MODERN_RELEASE,
        "kafka_json_becomes_supervisors_on_the_users_topics",
    ) else {
        return;
    };
    let broker = Tansu::start_persistent().expect("tansu starts");
    create_topic(&broker, "twitter", 1);
    create_topic(&broker, "wikipedia-en", 1);
    let now = now_millis();
    let tweets: Vec<String> = (0..10)
        .map(|i| {
            json!({"timestamp": now, "text": format!("t{i}"), "lang": "en",
                   "followers": 3, "retweets": 1})
            .to_string()
        })
        .collect();
    let edits: Vec<String> = (0..8)
        .map(|i| {
            json!({"timestamp": now, "page": format!("p{i}"), "language": "en",
                   "added": 2.0, "deleted": 1.0, "delta": 1.0})
            .to_string()
        })
        .collect();
    produce(&broker, "twitter", 1, &tweets);
    produce(&broker, "wikipedia-en", 1, &edits);

    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&example).unwrap()).unwrap();
    config["properties"]["zookeeper.connect"] = json!(druid.zookeeper_connect());
    config["properties"]["kafka.bootstrap.servers"] = json!(broker.bootstrap_servers());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kafka.json");
    std::fs::write(&path, config.to_string()).unwrap();

    let (code, stdout, stderr) = run_kafka(&path);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    for line in [
        "twitter: supervisor on topic twitter created",
        "wikipedia: supervisor on topicPattern wikipedia.* created",
    ] {
        assert!(
            stdout.contains(line),
            "missing '{line}' in:\n{stdout}\n{stderr}"
        );
    }
    assert!(
        stdout.contains("twitter: supervisor RUNNING"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(rows(druid.broker_url(), "twitter", "tweets", 10).await, 10);
    assert_eq!(
        rows(druid.broker_url(), "twitter", "followers", 30).await,
        30
    );
    assert_eq!(rows(druid.broker_url(), "wikipedia", "count", 8).await, 8);

    // Again: the supervisors run the same specs, nothing is posted.
    let (code, stdout, stderr) = run_kafka(&path);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("twitter: supervisor on topic twitter unchanged"),
        "{stdout}"
    );
    let history: Value = reqwest::get(format!(
        "{}/druid/indexer/v1/supervisor/twitter/history",
        druid.overlord_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(history.as_array().map(Vec::len), Some(1), "{history}");
}

/// druid-local playing the newest release it knows, announcing its Overlord in `zookeeper`.
async fn druid_local(zookeeper: &ZooKeeper) -> DruidLocal {
    let mut config = DruidLocalConfig::ephemeral();
    config.druid_version = "35.0.0".parse().unwrap();
    config.zk = Some(zookeeper.connect_string());
    DruidLocal::start(config).await.unwrap()
}

/// `file` with where ZooKeeper, the Overlord (when the file names it) and the brokers are.
fn located(
    file: &std::path::Path,
    dir: &std::path::Path,
    zk: &str,
    druid: &str,
    kafka: &str,
) -> std::path::PathBuf {
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    config["properties"]["zookeeper.connect"] = json!(zk);
    if config["properties"].get("druid.overlord.url").is_some() {
        config["properties"]["druid.overlord.url"] = json!(druid);
    }
    config["properties"]["kafka.bootstrap.servers"] = json!(kafka);
    let path = dir.join("kafka.json");
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_kafka_json_becomes_a_supervisor_on_druid_local() {
    let zookeeper = ZooKeeper::start();
    let druid = druid_local(&zookeeper).await;
    let broker = Tansu::start().expect("tansu starts");
    create_topic(&broker, "metrics", 2);
    let now = now_millis();
    let lines: Vec<String> = (0..12)
        .map(|i| {
            json!({"timestamp": now, "host": format!("h{}", i % 3), "metric": "cpu", "value": 0.5})
                .to_string()
        })
        .collect();
    produce(&broker, "metrics", 2, &lines);
    let dir = tempfile::tempdir().unwrap();
    let example = test_support::example_configs().join("kafka.json");
    let path = located(
        &example,
        dir.path(),
        &zookeeper.connect_string(),
        &druid.url(),
        &broker.bootstrap_servers(),
    );

    let (code, stdout, stderr) = run_kafka(&path);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("metrics: supervisor on topic metrics created"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("metrics: supervisor RUNNING"),
        "{stdout}\n{stderr}"
    );
    // The messages already on the topic, read by Druid itself.
    assert_eq!(rows(&druid.url(), "metrics", "count", 12).await, 12);
    let spec: Value = reqwest::get(format!(
        "{}/druid/indexer/v1/supervisor/metrics",
        druid.url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(spec["spec"]["ioConfig"]["topic"], "metrics", "{spec}");

    let (code, stdout, stderr) = run_kafka(&path);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("metrics: supervisor on topic metrics unchanged"),
        "{stdout}"
    );
    let history: Value = reqwest::get(format!(
        "{}/druid/indexer/v1/supervisor/metrics/history",
        druid.url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(history.as_array().map(Vec::len), Some(1), "{history}");
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_kafka_json_on_druid_local() {
    let example = peer_data_or_skip!("tranquility-configs/kafka.json.example");
    let zookeeper = ZooKeeper::start();
    let druid = druid_local(&zookeeper).await;
    let broker = Tansu::start().expect("tansu starts");
    create_topic(&broker, "twitter", 1);
    create_topic(&broker, "wikipedia-en", 1);
    let now = now_millis();
    let tweets: Vec<String> = (0..10)
        .map(|i| json!({"timestamp": now, "text": format!("t{i}"), "lang": "en", "followers": 3, "retweets": 1}).to_string())
        .collect();
    produce(&broker, "twitter", 1, &tweets);
    let dir = tempfile::tempdir().unwrap();
    let path = located(
        &example,
        dir.path(),
        &zookeeper.connect_string(),
        &druid.url(),
        &broker.bootstrap_servers(),
    );

    let (code, stdout, stderr) = run_kafka(&path);
    assert!(
        stdout.contains("twitter: supervisor on topic twitter created"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(rows(&druid.url(), "twitter", "tweets", 10).await, 10);
    assert_eq!(rows(&druid.url(), "twitter", "followers", 30).await, 30);
    // druid-local does not run multi-topic supervisors: the pattern's supervisor is refused
    // (400), and the command says which and why.
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    for part in ["wikipedia", "HTTP 400", "topicPattern"] {
        assert!(stderr.contains(part), "{part}: {stdout}\n{stderr}");
    }
    druid.shutdown().await;
}
