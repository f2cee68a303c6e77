//! `tranquility kafka` on a real Druid 33 with the original `kafka.json` (plus where ZooKeeper
//! and the Kafka brokers are): each mapping becomes a Kafka supervisor on the user's own
//! topic, the messages already on the topics become rows without passing through Tranquility,
//! and a second run finds the supervisors current and changes nothing.
//!
//! Runs only when the release is installed (`scripts/real-druid.sh install 33.0.0`).

use std::process::Command;
use std::time::{Duration, Instant};

use integration_tests::kafka::{create_topic, produce};
use integration_tests::real_druid::{RealDruid, MODERN_RELEASE};
use integration_tests::setup::now_millis;
use integration_tests::Tansu;
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
    let broker = Tansu::start_persistent();
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
