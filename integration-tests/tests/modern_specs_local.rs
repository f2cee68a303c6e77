//! What Tranquility would submit to Druid 31+ (`tranquility::backend::translate`), submitted
//! to druid-local playing 33.0.0, as `modern_specs.rs` submits it to a real 33.0.0: the
//! translated `index_parallel` micro-batch (rows counted, one outside its interval thrown
//! away, a resubmit refused) and the translated supervisor spec (its hash kept in the
//! context, its topic read from tansu).

use std::time::Duration;

use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::kafka::{create_topic, produce};
use integration_tests::modern::{post_json, send, wait_supervisor};
use integration_tests::{unique_name, Tansu};
use serde_json::{json, Map, Value};
use tranquility::backend::translate::{
    batch_task, spec_hash, supervisor_spec, BatchLocks, BatchMode, EventFormat, SupervisorSettings,
    SPEC_HASH_KEY,
};
use tranquility::spec::{IngestionSpec, TranquilityConfig};
use tranquility::time::Interval;

fn metrics_spec(name: &str) -> IngestionSpec {
    let path = test_support::example_configs().join("server.json");
    let config = TranquilityConfig::load(&path).expect("the example loads");
    let mut spec = config
        .data_source("metrics")
        .expect("the example has metrics")
        .spec
        .clone();
    spec.data_schema.data_source = name.to_string();
    spec
}

fn row(ts: i64, host: &str, value: f64) -> String {
    json!({"timestamp": ts, "server": host, "metric": "cpu", "value": value}).to_string()
}

async fn druid() -> DruidLocal {
    let mut config = DruidLocalConfig::ephemeral();
    config.druid_version = "33.0.0".parse().expect("version");
    DruidLocal::start(config).await.expect("druid-local starts")
}

async fn sums(url: &str, ds: &str) -> (i64, f64) {
    let q = json!({"queryType": "timeseries", "dataSource": ds, "granularity": "all",
        "intervals": ["2000-01-01/2100-01-01"],
        "aggregations": [{"type": "longSum", "name": "count", "fieldName": "count"},
                         {"type": "doubleSum", "name": "value", "fieldName": "value"}]});
    let a = integration_tests::druid::query(url, &q).await;
    (
        a.pointer("/0/result/count")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        a.pointer("/0/result/value")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn druid_local_runs_the_translated_batch_append() {
    let druid = druid().await;
    let c = reqwest::Client::new();
    let name = unique_name("batch").replace('-', "_");
    let spec = metrics_spec(&name);
    let now = integration_tests::setup::now_millis();
    let start = now / 3_600_000 * 3_600_000;
    let interval = Interval {
        start,
        end: start + 3_600_000,
    };
    let mut rows: Vec<String> = (0..5)
        .map(|i| row(start + i * 1000, &format!("h{i}"), 1.5))
        .collect();
    rows.push(row(start - 1000, "late", 100.0));
    let id = format!("tranquility_{name}_{start}");
    let task = batch_task(
        &spec.data_schema,
        &spec.tuning_config,
        &id,
        interval,
        &(rows.join("\n") + "\n"),
        BatchMode::Append,
        BatchLocks::Concurrent,
    )
    .unwrap();
    let url = format!("{}/druid/indexer/v1/task", druid.url());
    let a = send(post_json(&c, &url, &task)).await;
    assert_eq!(
        (a.status, a.body["task"].clone()),
        (200, json!(id)),
        "{a:?}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let s = send(c.get(format!("{url}/{id}/status"))).await.body;
        let code = s
            .pointer("/status/statusCode")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if code == "SUCCESS" || code == "FAILED" {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "{s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["status"]["statusCode"], "SUCCESS", "{status}");
    let reports = send(c.get(format!("{url}/{id}/reports"))).await.body;
    let stats = &reports["ingestionStatsAndErrors"]["payload"]["rowStats"]["buildSegments"];
    assert_eq!(
        (stats["processed"].as_i64(), stats["thrownAway"].as_i64()),
        (Some(5), Some(1)),
        "{stats}"
    );
    assert_eq!(
        send(post_json(&c, &url, &task)).await.status,
        400,
        "a resubmit is refused"
    );
    assert_eq!(sums(&druid.url(), &name).await, (5, 7.5));
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn druid_local_runs_the_translated_supervisor() {
    let broker = Tansu::start().expect("tansu starts");
    let druid = druid().await;
    let c = reqwest::Client::new();
    let name = unique_name("sup").replace('-', "_");
    let topic = format!("tranquility-{name}");
    create_topic(&broker, &topic, 2);
    let spec = metrics_spec(&name);
    let mut consumer = Map::new();
    consumer.insert(
        "bootstrap.servers".into(),
        json!(broker.bootstrap_servers()),
    );
    let settings = SupervisorSettings {
        topic: topic.clone(),
        consumer_properties: consumer,
        task_count: 1,
        replicas: 1,
        task_duration: None,
        use_earliest_offset: true,
        format: EventFormat::Json,
    };
    let supervisor = supervisor_spec(&spec.data_schema, &spec.tuning_config, &settings).unwrap();
    let url = format!("{}/druid/indexer/v1/supervisor", druid.url());
    let a = send(post_json(&c, &url, &supervisor)).await;
    assert_eq!(
        (a.status, a.body["id"].clone()),
        (200, json!(name)),
        "{a:?}"
    );
    let stored = send(c.get(format!("{url}/{name}"))).await.body;
    assert_eq!(
        stored["context"][SPEC_HASH_KEY],
        json!(spec_hash(&supervisor)),
        "{stored}"
    );
    let now = integration_tests::setup::now_millis();
    let lines: Vec<String> = (0..10).map(|i| row(now, &format!("h{i}"), 2.0)).collect();
    produce(&broker, &topic, 2, &lines);
    wait_supervisor(
        &druid.url(),
        &name,
        "RUNNING",
        Duration::from_secs(60),
        |p| p["state"] == "RUNNING",
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sums(&druid.url(), &name).await.0 < 10 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(sums(&druid.url(), &name).await, (10, 20.0));
    let a = send(c.post(format!("{url}/{name}/terminate"))).await;
    assert_eq!(a.body["id"], name.as_str());
    druid.shutdown().await;
}
