//! Tranquility Server end to end against druid-local: events posted over HTTP become rows a
//! native query counts, coordinated in process or through a real ZooKeeper, and the original
//! `server.json.example` / `server.yaml.example` serve unchanged (but for `zookeeper.connect`).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::ZooKeeper;
use serde_json::{json, Value};
use test_support::peer_data_or_skip;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tranquility::coord::LocalCoordinator;
use tranquility::pipeline::{PipelineOptions, Pipelines};
use tranquility::spec::TranquilityConfig;
use tranquility_server::{AppState, DataSourceReport, Server, ServerConfig};

/// A server on a free loopback port, stopped through `stop`.
struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    handle: JoinHandle<std::io::Result<Vec<DataSourceReport>>>,
}

impl Running {
    async fn start(config: &TranquilityConfig, options: PipelineOptions) -> Self {
        let server_config = ServerConfig::from_config(config).unwrap();
        let pipelines = Pipelines::from_config(config, options).unwrap();
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
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap()
    }

    async fn post(&self, data_source: &str, events: &[Value]) -> Value {
        let res = reqwest::Client::new()
            .post(format!("http://{}/v1/post/{data_source}", self.addr))
            .json(&events)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["result"].clone()
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `{count, x}` summed over every row of `data_source`, by a native timeseries query.
async fn totals(druid_url: &str, data_source: &str) -> (u64, f64) {
    let query = json!({
        "queryType": "timeseries",
        "dataSource": data_source,
        "granularity": "all",
        "intervals": ["1970-01-01/2100-01-01"],
        "aggregations": [
            {"type": "longSum", "name": "count", "fieldName": "count"},
            {"type": "doubleSum", "name": "x", "fieldName": "x"}
        ]
    });
    let res = reqwest::Client::new()
        .post(format!("{druid_url}/druid/v2"))
        .json(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let rows: Value = res.json().await.unwrap();
    match rows.get(0) {
        Some(row) => (
            row["result"]["count"].as_u64().unwrap_or(0),
            row["result"]["x"].as_f64().unwrap_or(0.0),
        ),
        None => (0, 0.0),
    }
}

/// Polls until druid-local counts `expected` events (rows are queryable right after the push
/// answer; the poll only absorbs scheduling).
async fn wait_for_count(druid_url: &str, data_source: &str, expected: u64) -> (u64, f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = totals(druid_url, data_source).await;
        if got.0 == expected {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "druid-local counts {} events of {data_source}, expected {expected}",
            got.0
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn wiki_config(properties: Value) -> TranquilityConfig {
    TranquilityConfig::from_value(
        json!({
            "dataSources": [{"spec": {
                "dataSchema": {
                    "dataSource": "wiki",
                    "parser": {"type": "string", "parseSpec": {"format": "json",
                        "timestampSpec": {"column": "timestamp", "format": "auto"},
                        "dimensionsSpec": {"dimensions": []}}},
                    "metricsSpec": [{"type": "count", "name": "count"},
                                    {"type": "doubleSum", "name": "x", "fieldName": "x"}],
                    "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"}
                },
                "tuningConfig": {"type": "realtime", "windowPeriod": "PT10M"}
            }}],
            "properties": properties
        }),
        "wiki.json",
    )
    .unwrap()
}

fn wiki_events(n: u64) -> Vec<Value> {
    (0..n)
        .map(
            |i| json!({"timestamp": now_millis(), "page": format!("p{}", i % 5), "x": 1.0, "i": i}),
        )
        .collect()
}

/// POST `n` events, check the answer, the druid-local count, `/metrics` and the final report.
async fn post_and_count(
    server: Running,
    druid: &DruidLocal,
    data_source: &str,
    events: Vec<Value>,
) {
    let n = events.len() as u64;
    let result = server.post(data_source, &events).await;
    assert_eq!(
        result,
        json!({"received": n, "sent": n, "dropped": 0, "failed": 0})
    );
    let (count, _) = wait_for_count(&druid.url(), data_source, n).await;
    assert_eq!(count, n);
    let metrics = server.metrics().await;
    for line in [
        format!("tranquility_events_received_total{{dataSource=\"{data_source}\"}} {n}"),
        format!("tranquility_events_sent_total{{dataSource=\"{data_source}\"}} {n}"),
        format!("tranquility_events_failed_total{{dataSource=\"{data_source}\"}} 0"),
        format!("tranquility_tasks_created_total{{dataSource=\"{data_source}\"}} 1"),
    ] {
        assert!(metrics.contains(&line), "missing {line} in\n{metrics}");
    }
    let reports = server.stop().await;
    let report = reports.iter().find(|r| r.name == data_source).unwrap();
    assert_eq!(
        (report.tally.received, report.tally.sent, report.pending),
        (n, n, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_reach_druid_local_with_the_in_process_coordinator() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let config = wiki_config(json!({"druidBeam.taskLocator": "overlord"}));
    let options = PipelineOptions {
        coordinator: Some(Arc::new(LocalCoordinator::new())),
        overlord_url: Some(druid.url()),
        ..PipelineOptions::default()
    };
    let server = Running::start(&config, options).await;
    post_and_count(server, &druid, "wiki", wiki_events(40)).await;
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_reach_druid_local_through_zookeeper() {
    let zk = ZooKeeper::start();
    let druid = DruidLocal::start(DruidLocalConfig {
        zk: Some(zk.connect_string()),
        ..DruidLocalConfig::ephemeral()
    })
    .await
    .unwrap();
    // ZooKeeper coordination, Overlord discovery and the curator task locator: all defaults.
    let config = wiki_config(json!({"zookeeper.connect": zk.connect_string()}));
    let server = Running::start(&config, PipelineOptions::default()).await;
    post_and_count(server, &druid, "wiki", wiki_events(40)).await;
    druid.shutdown().await;
}

/// A config file as shipped, with only `properties` (such as `zookeeper.connect`) pointed at
/// the test's services.
fn config_with(path: &Path, properties: &[(&str, String)]) -> TranquilityConfig {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let text = std::fs::read_to_string(path).unwrap();
    let mut root: Value = if name.contains(".json") {
        serde_json::from_str(&text).unwrap()
    } else {
        serde_yaml_ng::from_str(&text).unwrap()
    };
    for (key, value) in properties {
        root["properties"][*key] = Value::from(value.as_str());
    }
    TranquilityConfig::from_value(root, &name).unwrap()
}

/// Serves one of the original's example files (dataSource `foo`) unchanged.
async fn example_serves(path: &Path) {
    let zk = ZooKeeper::start();
    let druid = DruidLocal::start(DruidLocalConfig {
        zk: Some(zk.connect_string()),
        ..DruidLocalConfig::ephemeral()
    })
    .await
    .unwrap();
    let config = config_with(path, &[("zookeeper.connect", zk.connect_string())]);
    assert_eq!(
        config
            .data_sources()
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["foo"]
    );
    let server = Running::start(&config, PipelineOptions::default()).await;
    // The example's schema: dimensions dim1..dim3, metrics count and doubleSum x.
    let events: Vec<Value> = (0..12)
        .map(|i| {
            json!({"timestamp": now_millis(), "dim1": format!("a{}", i % 3),
                   "dim2": "b", "dim3": i, "x": 2.5})
        })
        .collect();
    post_and_count(server, &druid, "foo", events).await;
    let (count, x) = totals(&druid.url(), "foo").await;
    assert_eq!((count, x), (12, 30.0));
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_json_example_serves_unchanged() {
    example_serves(&peer_data_or_skip!(
        "tranquility-configs/server.json.example"
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_yaml_example_serves_unchanged() {
    example_serves(&peer_data_or_skip!(
        "tranquility-configs/server.yaml.example"
    ))
    .await;
}

/// The repository's own examples (JSON in the list shape, YAML in the map shape) serve both
/// of their dataSources through ZooKeeper, with only the addresses changed.
async fn own_example_serves(name: &str) {
    let zk = ZooKeeper::start();
    let druid = DruidLocal::start(DruidLocalConfig {
        zk: Some(zk.connect_string()),
        ..DruidLocalConfig::ephemeral()
    })
    .await
    .unwrap();
    let config = config_with(
        &test_support::example_configs().join(name),
        &[
            ("zookeeper.connect", zk.connect_string()),
            ("druid.overlord.url", druid.url()),
        ],
    );
    let server = Running::start(&config, PipelineOptions::default()).await;
    let clicks: Vec<Value> = (0..9)
        .map(|i| json!({"timestamp": now_millis(), "page": format!("p{}", i % 3), "country": "NZ", "clicks": 2}))
        .collect();
    let metrics: Vec<Value> = (0..5)
        .map(|i| json!({"timestamp": now_millis(), "host": format!("h{i}"), "metric": "cpu", "value": 0.5}))
        .collect();
    for (data_source, events) in [("clicks", &clicks), ("metrics", &metrics)] {
        let n = events.len() as u64;
        let result = server.post(data_source, events).await;
        assert_eq!(
            result,
            json!({"received": n, "sent": n, "dropped": 0, "failed": 0}),
            "{name} {data_source}"
        );
        assert_eq!(wait_for_count(&druid.url(), data_source, n).await.0, n);
    }
    let reports = server.stop().await;
    for (data_source, n) in [("clicks", 9), ("metrics", 5)] {
        let report = reports.iter().find(|r| r.name == data_source).unwrap();
        assert_eq!(
            (report.tally.received, report.tally.sent, report.pending),
            (n, n, 0),
            "{name}"
        );
    }
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_server_json_example_serves() {
    own_example_serves("server.json").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_server_yaml_example_serves() {
    own_example_serves("server.yaml").await;
}
