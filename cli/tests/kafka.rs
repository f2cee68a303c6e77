//! `tranquility kafka` as a user runs it, against real ZooKeeper, tansu and druid-local:
//! SIGTERM while messages are still arriving drains what was consumed, commits exactly that,
//! logs the final counts and exits 0; a restart resumes at the commit, so every message ends
//! up in Druid once.

use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::kafka::{committed, create_topic, kafka_py};
use integration_tests::setup::now_millis;
use integration_tests::{druid, lines_of, unique_name, Tansu, ZooKeeper};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_tranquility");

/// Messages produced in all, in rounds of `ROUND` while the connector runs.
const N: u64 = 6000;
const ROUND: u64 = 200;

/// Rows ingested into `clicks` (its `count` metric).
async fn clicks_rows(druid_url: &str) -> u64 {
    druid::count(druid_url, "clicks", "count").await as u64
}

/// Waits until `clicks` has at least `at_least` rows.
async fn wait_for_rows(druid_url: &str, at_least: u64) {
    let got = druid::wait_for_count(
        druid_url,
        "clicks",
        "count",
        at_least as i64,
        Duration::from_secs(90),
    )
    .await;
    assert!(got >= at_least as i64, "{got} rows, expected {at_least}");
}

/// A running `tranquility kafka` and its log lines.
struct Connector {
    child: Child,
    logs: mpsc::Receiver<String>,
}

impl Connector {
    fn start(config: &str) -> Self {
        let mut child = Command::new(BIN)
            .args(["kafka", "-configFile", config])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let logs = lines_of(child.stderr.take().unwrap());
        Self { child, logs }
    }

    /// SIGTERM; then the exit code and the final counts (received, sent, failed).
    async fn terminate(mut self) -> (Option<i32>, (u64, u64, u64), Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(exit) = self.child.try_wait().unwrap() {
                    return exit;
                }
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    panic!("tranquility kafka did not stop within 60 s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .await
        .unwrap();
        let logs: Vec<String> = self.logs.iter().collect();
        let line = logs
            .iter()
            .find(|l| l.contains("final counts"))
            .unwrap_or_else(|| panic!("no final counts logged: {logs:#?}"));
        let field = |name: &str| -> u64 {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name}= in {line}"))
        };
        let counts = (field("received"), field("sent"), field("failed"));
        (exit.code(), counts, logs)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_drains_commits_and_a_restart_resumes_exactly() {
    let zk = ZooKeeper::start();
    let broker = Tansu::start();
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let topic = unique_name("sigterm");
    let group = unique_name("group");
    create_topic(&broker, &topic, 2);
    let config = json!({
        "dataSources": [{
            "spec": {
                "dataSchema": {
                    "dataSource": "clicks",
                    "parser": {"type": "string", "parseSpec": {"format": "json",
                        "timestampSpec": {"column": "timestamp", "format": "auto"},
                        "dimensionsSpec": {"dimensions": ["n"]}}},
                    "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"},
                    "metricsSpec": [{"type": "count", "name": "count"}]
                },
                "tuningConfig": {"type": "realtime", "windowPeriod": "PT10M"}
            },
            "properties": {"topicPattern": topic}
        }],
        "properties": {
            "zookeeper.connect": zk.connect_string(),
            "druid.overlord.url": druid.url(),
            "druidBeam.taskLocator": "overlord",
            "kafka.bootstrap.servers": broker.bootstrap_servers(),
            "kafka.group.id": group,
            "kafka.auto.offset.reset": "earliest",
            "consumer.numThreads": "1",
            "commit.periodMillis": "200"
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kafka.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let path = path.to_string_lossy().into_owned();

    // Messages keep arriving, round after round, while the first run is stopped; the last
    // round waits until it has been.
    let (stopped, resume) = mpsc::channel::<()>();
    let producer = {
        let (servers, topic) = (broker.bootstrap_servers(), topic.clone());
        std::thread::spawn(move || {
            for round in 0..N / ROUND {
                if round == N / ROUND - 1 {
                    resume.recv().unwrap();
                }
                let ts = now_millis();
                let lines: Vec<String> = (round * ROUND..(round + 1) * ROUND)
                    .map(|n| format!(r#"{{"timestamp":{ts},"n":"{n}"}}"#))
                    .collect();
                kafka_py(
                    &["produce", &servers, &topic, "2"],
                    lines.join("\n").as_bytes(),
                );
            }
        })
    };

    let first = Connector::start(&path);
    wait_for_rows(&druid.url(), 2 * ROUND).await;
    let (code, (received, sent, failed), logs) = first.terminate().await;
    assert_eq!(code, Some(0), "{logs:#?}");
    assert!(
        logs.iter().any(|l| l.contains("stop signal received")),
        "{logs:#?}"
    );
    assert_eq!(failed, 0, "{logs:#?}");
    assert_eq!(
        received, sent,
        "every consumed message was drained to Druid"
    );
    assert!(0 < sent && sent < N, "sent {sent} of {N}");
    assert_eq!(
        committed(&broker, &group, &topic, 2).iter().sum::<i64>() as u64,
        sent,
        "the commit covers exactly what was sent"
    );
    assert_eq!(clicks_rows(&druid.url()).await, sent);

    stopped.send(()).unwrap();
    producer.join().unwrap();
    let second = Connector::start(&path);
    wait_for_rows(&druid.url(), N).await;
    let (code, (received, sent_again, failed), logs) = second.terminate().await;
    assert_eq!(code, Some(0), "{logs:#?}");
    assert_eq!((received, sent_again, failed), (N - sent, N - sent, 0));
    assert_eq!(
        committed(&broker, &group, &topic, 2).iter().sum::<i64>() as u64,
        N
    );
    // Every message once: N rows, one per value of `n`.
    assert_eq!(clicks_rows(&druid.url()).await, N);
    let per_message = json!({
        "queryType": "groupBy", "dataSource": "clicks", "granularity": "all",
        "intervals": ["1970-01-01/2100-01-01"], "dimensions": ["n"],
        "aggregations": [{"type": "longSum", "name": "rows", "fieldName": "count"}]
    });
    let per_message = druid::query(&druid.url(), &per_message).await;
    let rows = per_message.as_array().unwrap();
    assert_eq!(rows.len() as u64, N);
    let twice: Vec<&Value> = rows.iter().filter(|r| r["event"]["rows"] != 1).collect();
    assert!(twice.is_empty(), "in Druid more than once: {twice:?}");
    druid.shutdown().await;
}

/// `/health` of `tranquility kafka`: 200 while consumption moves; 503 naming the partition
/// while one with unaccounted messages makes no progress (here Druid is unreachable, so every
/// consumed message waits for an outcome); 200 again once Druid is back and everything is
/// committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_turns_unhealthy_while_a_partition_stalls_and_recovers() {
    let zk = ZooKeeper::start();
    let broker = Tansu::start();
    let topic = unique_name("stall");
    let group = unique_name("group");
    create_topic(&broker, &topic, 1);
    let ts = now_millis();
    let lines: Vec<String> = (0..20)
        .map(|n| format!(r#"{{"timestamp":{ts},"n":"{n}"}}"#))
        .collect();
    kafka_py(
        &["produce", &broker.bootstrap_servers(), &topic, "1"],
        lines.join("\n").as_bytes(),
    );
    // Druid will listen here later; for now nothing does.
    let druid_port = integration_tests::free_port();
    let http_port = integration_tests::free_port();
    let config = json!({
        "dataSources": [{
            "spec": {
                "dataSchema": {
                    "dataSource": "clicks",
                    "parser": {"type": "string", "parseSpec": {"format": "json",
                        "timestampSpec": {"column": "timestamp", "format": "auto"},
                        "dimensionsSpec": {"dimensions": ["n"]}}},
                    "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"},
                    "metricsSpec": [{"type": "count", "name": "count"}]
                },
                "tuningConfig": {"type": "realtime", "windowPeriod": "PT10M"}
            },
            "properties": {"topicPattern": topic}
        }],
        "properties": {
            "zookeeper.connect": zk.connect_string(),
            "druid.overlord.url": format!("http://127.0.0.1:{druid_port}"),
            "druidBeam.taskLocator": "overlord",
            "druidBeam.indexRetryPeriod": "PT2S",
            "kafka.bootstrap.servers": broker.bootstrap_servers(),
            "kafka.group.id": group,
            "kafka.auto.offset.reset": "earliest",
            "kafka.statistics.interval.ms": "500",
            "consumer.numThreads": "1",
            "consumer.stallTimeoutMillis": "3000",
            "commit.periodMillis": "200",
            "kafka.http.port": http_port.to_string(),
            "http.bindAddress": "127.0.0.1"
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kafka.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let connector = Connector::start(&path.to_string_lossy());

    let health_url = format!("http://127.0.0.1:{http_port}/health");
    // /metrics answers as every command's does: OpenMetrics text.
    let metrics_url = format!("http://127.0.0.1:{http_port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(30);
    let content_type = loop {
        if let Ok(r) = reqwest::get(&metrics_url).await {
            break r.headers()["content-type"].to_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no /metrics");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let health = || async {
        match reqwest::get(&health_url).await {
            Ok(r) => Some((r.status().as_u16(), r.json::<Value>().await.unwrap())),
            Err(_) => None,
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let stalled = loop {
        if let Some((503, body)) = health().await {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "/health never reported the stall"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(stalled["status"], "stalled", "{stalled}");
    assert_eq!(stalled["stalled"][0]["topic"], topic, "{stalled}");
    assert_eq!(stalled["stalled"][0]["partition"], 0, "{stalled}");
    assert_eq!(stalled["stalled"][0]["lag"], 20, "{stalled}");

    // Druid comes up where the config points: the retries get through and the commit moves.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", druid_port))
        .await
        .unwrap();
    let druid = DruidLocal::start_on(listener, DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    wait_for_rows(&druid.url(), 20).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match health().await {
            Some((200, body)) => {
                assert_eq!(body["status"], "ok");
                break;
            }
            other => assert!(Instant::now() < deadline, "still unhealthy: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, (received, sent, failed), logs) = connector.terminate().await;
    assert_eq!(code, Some(0), "{logs:#?}");
    // The pipeline counts each attempt: the ones that failed while Druid was away, then the
    // retries that got every message through.
    assert_eq!(sent, 20, "{logs:#?}");
    assert!(failed > 0 && received == sent + failed, "{logs:#?}");
    assert!(
        logs.iter().any(|l| l.contains("consumption stalled")),
        "{logs:#?}"
    );
    assert_eq!(committed(&broker, &group, &topic, 1), vec![20]);
    druid.shutdown().await;
}
