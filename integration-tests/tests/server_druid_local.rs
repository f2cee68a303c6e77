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
use tranquility::pipeline::{PipelineBuilder, Pipelines};
use tranquility::spec::TranquilityConfig;
use tranquility_server::{AppState, DataSourceReport, Server, ServerConfig};

/// A server on a free loopback port, stopped through `stop`.
struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    handle: JoinHandle<std::io::Result<Vec<DataSourceReport>>>,
}

impl Running {
    async fn start(config: &TranquilityConfig, options: PipelineBuilder) -> Self {
        let server_config = ServerConfig::from_config(config).unwrap();
        let pipelines = options.build(config).unwrap();
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
    let options = Pipelines::builder()
        .coordinator(Arc::new(LocalCoordinator::new()))
        .overlord_url(druid.url());
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
    let server = Running::start(&config, Pipelines::builder()).await;
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
    let server = Running::start(&config, Pipelines::builder()).await;
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
    let server = Running::start(&config, Pipelines::builder()).await;
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

/// The start of the minute holding `millis`, as Druid writes timestamps.
fn minute_of(millis: u64) -> String {
    let start = (millis - millis % 60_000) as i64;
    chrono::DateTime::from_timestamp_millis(start)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The original's own `direct-druid-test-flattenSpec.yaml`, unchanged but for its ZooKeeper
/// placeholder, served through ZooKeeper (its discovery path and Overlord service name): nested
/// events posted as JSON are flattened, and their fields are queryable in druid-local (`ts` as
/// the time, `foo` as a dimension, `bar` through the `barr` metric, `lat` and `lon` through the
/// spatial dimension `coord.geo`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flatten_spec_peer_file_serves_nested_events() {
    let path = peer_data_or_skip!("tranquility-configs/direct-druid-test-flattenSpec.yaml");
    let zk = ZooKeeper::start();
    let druid = DruidLocal::start(DruidLocalConfig {
        zk: Some(zk.connect_string()),
        discovery_path: "/disco-fever".into(),
        overlord_service_name: "druid/tranquility/indexer".into(),
        ..DruidLocalConfig::ephemeral()
    })
    .await
    .unwrap();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("@ZKPLACEHOLDER@", &zk.connect_string());
    let config = TranquilityConfig::from_str(&text, "direct-druid-test-flattenSpec.yaml").unwrap();
    let server = Running::start(&config, Pipelines::builder()).await;

    let now = now_millis();
    let events: Vec<Value> = (0..12)
        .map(|i| {
            json!({"ts": now / 1000, "geo": {"lat": 37.7, "lon": -122.4},
                   "data": {"foo": format!("f{}", i % 3), "bar": i}, "unlisted": {"deep": i}})
        })
        .collect();
    let result = server.post("xxx", &events).await;
    assert_eq!(
        result,
        json!({"received": 12, "sent": 12, "dropped": 0, "failed": 0})
    );
    let barr = integration_tests::druid::wait_for_count(
        &druid.url(),
        "xxx",
        "barr",
        66,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(barr, 66);
    let rows = integration_tests::druid::group_by(
        &druid.url(),
        "xxx",
        "minute",
        &["foo", "coord.geo"],
        json!([{"type": "longSum", "name": "barr", "fieldName": "barr"}]),
    )
    .await;
    let seen: Vec<(String, String, String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["timestamp"].as_str().unwrap_or_default().to_string(),
                r["foo"].as_str().unwrap_or_default().to_string(),
                r["coord.geo"].as_str().unwrap_or_default().to_string(),
                r["barr"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    // ts is in seconds (posix): every row falls in the minute of the posted time.
    let minute = minute_of(now / 1000 * 1000);
    let geo = "37.7,-122.4".to_string();
    assert_eq!(
        seen,
        [
            (minute.clone(), "f0".to_string(), geo.clone(), 18),
            (minute.clone(), "f1".to_string(), geo.clone(), 22),
            (minute, "f2".to_string(), geo, 26),
        ]
    );
    let reports = server.stop().await;
    let report = reports.iter().find(|r| r.name == "xxx").unwrap();
    assert_eq!((report.tally.received, report.tally.sent), (12, 12));
    druid.shutdown().await;
}

/// The repository's own `nested.json` (no peer data needed): root, path (with an index, a
/// bracketed name and `length()`), jq and tree fields, and discovered root fields, all
/// queryable after a POST of nested events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nested_example_flattens_posted_events() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let config = config_with(
        &test_support::example_configs().join("nested.json"),
        &[("druid.overlord.url", druid.url())],
    );
    let options = Pipelines::builder().coordinator(Arc::new(LocalCoordinator::new()));
    let server = Running::start(&config, options).await;
    let events: Vec<Value> = (0..6)
        .map(|i| {
            json!({"timestamp": now_millis(), "status": if i % 2 == 0 { "paid" } else { "sent" },
                   "customer": {"id": format!("c{}", i % 2), "address": {"country": "NZ"}},
                   "items": [{"sku": "sku-1", "qty": 1}, {"sku": "sku-2", "qty": 2}],
                   "payment": {"total": 10.5, "currency": "NZD"},
                   "context": {"channel": "web"}})
        })
        .collect();
    let result = server.post("orders", &events).await;
    assert_eq!(
        result,
        json!({"received": 6, "sent": 6, "dropped": 0, "failed": 0})
    );
    assert_eq!(wait_for_count(&druid.url(), "orders", 6).await.0, 6);
    let rows = integration_tests::druid::group_by(
        &druid.url(),
        "orders",
        "all",
        &[
            "customer",
            "country",
            "first_sku",
            "currency",
            "channel",
            "status",
        ],
        json!([{"type": "longSum", "name": "count", "fieldName": "count"},
               {"type": "doubleSum", "name": "revenue", "fieldName": "revenue"},
               {"type": "longSum", "name": "items", "fieldName": "items"}]),
    )
    .await;
    let mut seen: Vec<Value> = rows
        .into_iter()
        .map(|mut r| {
            r.as_object_mut().unwrap().remove("timestamp");
            r
        })
        .collect();
    seen.sort_by_key(|r| r["customer"].as_str().unwrap_or_default().to_string());
    let row = |customer: &str, status: &str| {
        json!({"customer": customer, "country": "NZ", "first_sku": "sku-1", "currency": "NZD",
               "channel": "web", "status": status, "count": 3, "revenue": 31.5, "items": 6})
    };
    assert_eq!(seen, [row("c0", "paid"), row("c1", "sent")]);
    server.stop().await;
    druid.shutdown().await;
}
