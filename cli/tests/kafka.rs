//! `tranquility kafka` as a user runs it, against real ZooKeeper, tansu and druid-local:
//! SIGTERM while messages are still arriving drains what was consumed, commits exactly that,
//! logs the final counts and exits 0; a restart resumes at the commit, so every message ends
//! up in Druid once. SIGKILL leaves no drain and no final commit: the restart reads the
//! uncommitted messages again, and the tasks skip the ones they have.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::kafka::{committed, create_topic, kafka_py};
use integration_tests::setup::now_millis;
use integration_tests::{druid, lines_of, unique_name, Tansu, ZooKeeper};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_tranquility");

/// Messages produced in all by the SIGTERM test, in rounds of `ROUND` while it runs.
const N: u64 = 6000;
const ROUND: u64 = 200;
/// SIGKILLs in the SIGKILL test before its last run.
const KILLS: usize = 4;

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

    /// SIGKILL, as a crash or the OOM killer would: no drain, no final commit. Returns what
    /// it logged.
    fn kill(mut self) -> Vec<String> {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.logs.iter().collect()
    }

    /// SIGTERM; then the exit code and the final counts (received, sent, failed).
    async fn terminate(self) -> (Option<i32>, (u64, u64, u64), Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let (this, exit) = tokio::task::spawn_blocking(move || {
            let mut this = self;
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(exit) = this.child.try_wait().unwrap() {
                    return (this, exit);
                }
                if Instant::now() > deadline {
                    panic!("tranquility kafka did not stop within 60 s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .await
        .unwrap();
        let logs: Vec<String> = this.logs.iter().collect();
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

impl Drop for Connector {
    /// A test that fails leaves no connector running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_drains_commits_and_a_restart_resumes_exactly() {
    let zk = ZooKeeper::start();
    let broker = Tansu::start().expect("tansu starts");
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
    let broker = Tansu::start().expect("tansu starts");
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

/// A small xorshift generator: the kill points of a run, reproducible from the seed it prints.
struct Points(u64);

impl Points {
    fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low)
    }
}

/// `tranquility kafka` killed with SIGKILL at random points while messages keep arriving on
/// three partitions, into tasks with two replicas, then run to the end: Druid has every
/// message exactly once, and so does each replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_again_and_again_still_leaves_every_message_in_druid_exactly_once() {
    let seed = std::env::var("KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now_millis() as u64 | 1);
    eprintln!("kill points from KILL_SEED={seed}");
    let mut points = Points(seed);
    let zk = ZooKeeper::start();
    let broker = Tansu::start().expect("tansu starts");
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let topic = unique_name("sigkill");
    let group = unique_name("group");
    create_topic(&broker, &topic, 3);
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
            "properties": {"topicPattern": topic, "task.replicants": "2"}
        }],
        "properties": {
            "zookeeper.connect": zk.connect_string(),
            "druid.overlord.url": druid.url(),
            "druidBeam.taskLocator": "overlord",
            "kafka.bootstrap.servers": broker.bootstrap_servers(),
            "kafka.group.id": group,
            "kafka.auto.offset.reset": "earliest",
            "consumer.numThreads": "1",
            "commit.periodMillis": "1000",
            // A killed member leaves the group only when its session times out; until then
            // tansu hands it partitions in each new generation.
            "kafka.session.timeout.ms": "6000",
            "kafka.heartbeat.interval.ms": "1000"
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kafka.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let path = path.to_string_lossy().into_owned();

    // Messages keep arriving in rounds until the kills are over, so each kill lands
    // mid-stream.
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (servers, topic, stop) = (broker.bootstrap_servers(), topic.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut produced = 0;
            while !stop.load(Ordering::SeqCst) {
                let ts = now_millis();
                let lines: Vec<String> = (produced..produced + ROUND)
                    .map(|n| format!(r#"{{"timestamp":{ts},"n":"{n}"}}"#))
                    .collect();
                kafka_py(
                    &["produce", &servers, &topic, "3"],
                    lines.join("\n").as_bytes(),
                );
                produced += ROUND;
                std::thread::sleep(Duration::from_millis(200));
            }
            produced
        })
    };

    for kill in 0..KILLS {
        let before = clicks_rows(&druid.url()).await;
        let connector = Connector::start(&path);
        // Once this run has pushed some rows of its own, at a random point after: before,
        // at or after a commit (every second), within a push or between two.
        let target = before + points.between(1, 400);
        let got = druid::wait_for_count(
            &druid.url(),
            "clicks",
            "count",
            target as i64,
            Duration::from_secs(90),
        )
        .await;
        if got < target as i64 {
            let logs = connector.kill();
            panic!("run {kill}: {got} rows, expected {target}; its logs: {logs:#?}");
        }
        let wait = points.between(0, 1500);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        connector.kill();
        eprintln!("kill {kill}: {wait} ms after the run passed its first rows");
    }
    stop.store(true, Ordering::SeqCst);
    let n = producer.join().unwrap();
    // The last run goes to the end: every message committed (so every one has its outcome).
    let last = Connector::start(&path);
    let deadline = Instant::now() + Duration::from_secs(90);
    while committed(&broker, &group, &topic, 3).iter().sum::<i64>() < n as i64 {
        assert!(
            Instant::now() < deadline,
            "the last run did not commit all {n} messages"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    wait_for_rows(&druid.url(), n).await;
    let (code, (_, _, failed), logs) = last.terminate().await;
    assert_eq!(code, Some(0), "{logs:#?}");
    assert_eq!(failed, 0, "{logs:#?}");

    // Every message once: n rows, one per value of `n`.
    assert_eq!(clicks_rows(&druid.url()).await, n);
    let per_message = json!({
        "queryType": "groupBy", "dataSource": "clicks", "granularity": "all",
        "intervals": ["1970-01-01/2100-01-01"], "dimensions": ["n"],
        "aggregations": [{"type": "longSum", "name": "rows", "fieldName": "count"}]
    });
    let per_message = druid::query(&druid.url(), &per_message).await;
    let rows = per_message.as_array().unwrap();
    assert_eq!(rows.len() as u64, n);
    let twice: Vec<&Value> = rows.iter().filter(|r| r["event"]["rows"] != 1).collect();
    assert!(twice.is_empty(), "in Druid more than once: {twice:?}");

    // And in each replica: the replicas of an interval (ids ending `_<partition>_<replica>`)
    // ingested the same rows, n in all; the restarts' re-reads were skipped.
    let mut per_replica: std::collections::BTreeMap<String, u64> = Default::default();
    let mut skipped = 0;
    for task in druid::running_task_ids(&druid.url(), "clicks").await {
        let counters = druid::task_metrics(&druid.url(), &task).await;
        skipped += counters["skippedRequests"].as_u64().unwrap();
        let replica = task.rsplit('_').next().unwrap().to_owned();
        *per_replica.entry(replica).or_default() += counters["processed"].as_u64().unwrap();
    }
    assert_eq!(
        per_replica.into_iter().collect::<Vec<_>>(),
        [("0".to_owned(), n), ("1".to_owned(), n)],
        "each replica has every message once"
    );
    assert!(skipped > 0, "the restarts read messages the tasks had");
    druid.shutdown().await;
}
