//! Tranquility Server on a real Druid 31+ (no `index_realtime` there): the original
//! `server.json.example`, with `druid.ingestion=auto`, picks its backend from the Overlord's
//! version, and the events posted become rows the Broker counts.
//!
//! - batch: no Kafka address, so micro-batches of `index_parallel` appends; two instances
//!   posting into one interval at once both succeed (concurrent locks).
//! - supervisor: a Kafka address, so a topic and a Kafka supervisor; a second instance on the
//!   same file shares them; a new dimension updates the supervisor once; restarts of
//!   Tranquility and of the broker lose no acknowledged event.
//!
//! Every response, metric and count keeps `received = sent + dropped + failed`. Runs only when
//! the release is installed (`scripts/real-druid.sh install 33.0.0`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use integration_tests::real_druid::{RealDruid, MODERN_RELEASE};
use integration_tests::Tansu;
use serde_json::{json, Value};
use test_support::peer_data_or_skip;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tranquility::pipeline::{PipelineOptions, Pipelines};
use tranquility::spec::TranquilityConfig;
use tranquility_server::{AppState, DataSourceReport, Server, ServerConfig};

/// A Tranquility Server on a free loopback port.
struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    handle: JoinHandle<std::io::Result<Vec<DataSourceReport>>>,
}

impl Running {
    async fn start(config: &TranquilityConfig) -> Self {
        let server_config = ServerConfig::from_config(config).unwrap();
        let pipelines = Pipelines::from_config(config, PipelineOptions::default()).unwrap();
        let state = AppState::from_pipelines(server_config, config, &pipelines);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::from_listener(listener, state);
        let addr = server.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Self { addr, stop, handle }
    }

    async fn stop(self) -> Vec<DataSourceReport> {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(120), self.handle)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap()
    }

    /// Posts `events` to `foo`; returns the result, checked to balance.
    async fn post(&self, events: &[Value]) -> Value {
        let res = reqwest::Client::new()
            .post(format!("http://{}/v1/post/foo", self.addr))
            .json(&events)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        assert_eq!(status, 200, "{body}");
        let result = serde_json::from_str::<Value>(&body).unwrap()["result"].clone();
        let n = |k: &str| result[k].as_u64().unwrap_or(0);
        assert_eq!(
            n("received"),
            n("sent") + n("dropped") + n("failed"),
            "{result}"
        );
        result
    }

    async fn get(&self, path: &str) -> String {
        reqwest::get(format!("http://{}{path}", self.addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The `foo` series of `/metrics`: received, sent, dropped, failed; checked to balance.
    async fn counts(&self) -> [u64; 4] {
        let text = self.get("/metrics").await;
        let sum = |name: &str| -> u64 {
            text.lines()
                .filter(|l| l.starts_with(name) && l.contains("dataSource=\"foo\""))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .map(|v| v as u64)
                .sum()
        };
        let counts = [
            sum("tranquility_events_received_total"),
            sum("tranquility_events_sent_total"),
            sum("tranquility_events_dropped_total"),
            sum("tranquility_events_failed_total"),
        ];
        assert_eq!(counts[0], counts[1] + counts[2] + counts[3], "{text}");
        counts
    }
}

/// The original example file with only `properties` changed.
fn example(path: &Path, properties: &[(&str, String)]) -> TranquilityConfig {
    example_with(path, properties, &[])
}

/// The example with `properties` changed and `more_dimensions` added to its dimensions.
fn example_with(
    path: &Path,
    properties: &[(&str, String)],
    more_dimensions: &[&str],
) -> TranquilityConfig {
    let mut root: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for (key, value) in properties {
        root["properties"][*key] = Value::from(value.as_str());
    }
    let dims = root
        .pointer_mut("/dataSources/0/spec/dataSchema/parser/parseSpec/dimensionsSpec/dimensions")
        .and_then(Value::as_array_mut)
        .expect("the example lists dimensions");
    dims.extend(more_dimensions.iter().map(|d| json!(d)));
    TranquilityConfig::from_value(root, "server.json.example").unwrap()
}

fn now_millis() -> i64 {
    integration_tests::setup::now_millis()
}

/// `n` events of the example's schema (dimensions dim1..dim3, doubleSum x) at `ts`.
fn events(n: usize, ts: i64, tag: &str) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"timestamp": ts, "dim1": tag, "dim2": format!("b{}", i % 4), "dim3": i, "x": 1.5}))
        .collect()
}

/// Sums `count` and `x` of `foo` through the Broker until `count` reaches `expected` or
/// `timeout` passes.
async fn wait_for_rows(broker: &str, expected: i64, timeout: Duration) -> (i64, f64) {
    let query = json!({
        "queryType": "timeseries", "dataSource": "foo", "granularity": "all",
        "intervals": ["2000-01-01/2100-01-01"],
        "aggregations": [{"type": "longSum", "name": "count", "fieldName": "count"},
                         {"type": "doubleSum", "name": "x", "fieldName": "x"}]
    });
    let deadline = Instant::now() + timeout;
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
        let sums = (
            answer
                .pointer("/0/result/count")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            answer
                .pointer("/0/result/x")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
        );
        if sums.0 >= expected || Instant::now() > deadline {
            return sums;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_backend_two_instances_append_into_one_interval() {
    let path = peer_data_or_skip!("tranquility-configs/server.json.example");
    let Some(druid) = RealDruid::start_or_skip(
        MODERN_RELEASE,
        "batch_backend_two_instances_append_into_one_interval",
    ) else {
        return;
    };
    // The Overlord is found through ZooKeeper discovery, as the file says; only where
    // ZooKeeper is, and a short batch period, change.
    let config = example(
        &path,
        &[
            ("zookeeper.connect", druid.zookeeper_connect()),
            ("druid.ingestion.batch.periodMillis", "2000".into()),
        ],
    );
    let a = Running::start(&config).await;
    let b = Running::start(&config).await;
    let now = now_millis();
    let (ea, eb) = (events(30, now, "a"), events(25, now, "b"));
    let (ra, rb) = tokio::join!(a.post(&ea), b.post(&eb));
    assert_eq!(
        (ra["received"].as_u64(), ra["sent"].as_u64()),
        (Some(30), Some(30)),
        "{ra}"
    );
    assert_eq!(
        (rb["received"].as_u64(), rb["sent"].as_u64()),
        (Some(25), Some(25)),
        "{rb}"
    );
    let health: Value = serde_json::from_str(&a.get("/health").await).unwrap();
    assert_eq!(health["backends"], json!({"foo": "batch"}), "{health}");

    // Two hours ago is outside the window: dropped with its reason, never submitted.
    let late = a.post(&events(2, now - 2 * 3_600_000, "late")).await;
    assert_eq!(late["dropped"], 2, "{late}");
    assert_eq!(late["droppedReasons"]["outside_window"], 2, "{late}");

    let sums = wait_for_rows(druid.broker_url(), 55, Duration::from_secs(240)).await;
    assert_eq!(sums, (55, 82.5));
    assert_eq!(a.counts().await, [32, 30, 2, 0]);
    assert_eq!(b.counts().await, [25, 25, 0, 0]);
    for server in [a, b] {
        for report in server.stop().await {
            assert!(report.tally.is_balanced(), "{report:?}");
            assert_eq!(report.pending, 0);
        }
    }
}

/// Druid's answer to `GET {overlord}/druid/indexer/v1{path}`.
async fn overlord_get(druid: &RealDruid, path: &str) -> Value {
    reqwest::get(format!("{}/druid/indexer/v1{path}", druid.overlord_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null)
}

/// How many specs Druid's history holds for the supervisor `foo` (one per post).
async fn supervisor_posts(druid: &RealDruid) -> usize {
    overlord_get(druid, "/supervisor/foo/history")
        .await
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_backend_is_shared_updated_once_and_survives_restarts() {
    let path = peer_data_or_skip!("tranquility-configs/server.json.example");
    let Some(druid) = RealDruid::start_or_skip(
        MODERN_RELEASE,
        "supervisor_backend_is_shared_updated_once_and_survives_restarts",
    ) else {
        return;
    };
    let mut kafka = Tansu::start_persistent();
    let props = [
        ("zookeeper.connect", druid.zookeeper_connect()),
        (
            "druid.ingestion.kafka.bootstrap.servers",
            kafka.bootstrap_servers(),
        ),
    ];
    let config = example(&path, &props);

    // Two instances on the same file: one topic, one supervisor, posted once.
    let a = Running::start(&config).await;
    let b = Running::start(&config).await;
    let now = now_millis();
    let (ea, eb) = (events(20, now, "a"), events(15, now, "b"));
    let (ra, rb) = tokio::join!(a.post(&ea), b.post(&eb));
    assert_eq!(ra["sent"], 20, "{ra}");
    assert_eq!(rb["sent"], 15, "{rb}");
    let mut acknowledged = 35;
    let health: Value = serde_json::from_str(&a.get("/health").await).unwrap();
    assert_eq!(health["backends"], json!({"foo": "supervisor"}), "{health}");
    assert_eq!(overlord_get(&druid, "/supervisor").await, json!(["foo"]));
    assert_eq!(supervisor_posts(&druid).await, 1);
    let sums = wait_for_rows(druid.broker_url(), acknowledged, Duration::from_secs(240)).await;
    assert_eq!(sums, (acknowledged, 1.5 * acknowledged as f64));

    // Tranquility restarts: the new instance finds the supervisor current and posts nothing.
    a.stop().await;
    let a = Running::start(&config).await;
    assert_eq!(a.post(&events(10, now_millis(), "a2")).await["sent"], 10);
    acknowledged += 10;
    assert_eq!(supervisor_posts(&druid).await, 1);

    // A new dimension: two instances with the new spec update the supervisor once.
    let changed = example_with(&path, &props, &["dim4"]);
    let c = Running::start(&changed).await;
    let d = Running::start(&changed).await;
    let (ec, ed) = (events(5, now_millis(), "c"), events(5, now_millis(), "d"));
    let (rc, rd) = tokio::join!(c.post(&ec), d.post(&ed));
    assert_eq!(
        (rc["sent"].as_u64(), rd["sent"].as_u64()),
        (Some(5), Some(5))
    );
    acknowledged += 10;
    assert_eq!(supervisor_posts(&druid).await, 2);

    // The broker restarts (keeping its data): producing resumes on the same connection settings.
    kafka.restart();
    assert_eq!(c.post(&events(7, now_millis(), "after")).await["sent"], 7);
    acknowledged += 7;

    let sums = wait_for_rows(druid.broker_url(), acknowledged, Duration::from_secs(240)).await;
    assert_eq!(sums, (acknowledged, 1.5 * acknowledged as f64));
    // Druid's own count of the rows it read, from the supervisor's stats, read every 30 s.
    let processed = |text: &str| -> i64 {
        text.lines()
            .find(|l| l.starts_with("tranquility_druid_rows{") && l.contains("kind=\"processed\""))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while processed(&c.get("/metrics").await) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(processed(&c.get("/metrics").await) > 0);
    let mut total_sent = 0;
    for server in [a, b, c, d] {
        let counts = server.counts().await;
        total_sent += counts[1];
        for report in server.stop().await {
            assert!(report.tally.is_balanced(), "{report:?}");
        }
    }
    // The first instance's counts went with it; the rest add up to what Druid holds.
    assert_eq!(total_sent + 20, acknowledged as u64);
}
