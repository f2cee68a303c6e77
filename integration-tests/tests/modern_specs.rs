//! What Tranquility would submit to Druid 31+ (`tranquility::backend::translate`), submitted
//! to a real Druid of that line: the translated `index_parallel` micro-batch runs and its rows
//! are counted by the Broker, a row outside its interval is thrown away and reported, and
//! the translated Kafka supervisor spec is accepted, keeps the hash in its context, and reads
//! its topic from a real Kafka-protocol broker into rows the Broker counts.
//!
//! Runs only when the release is installed (`scripts/real-druid.sh install 33.0.0`).

use std::time::{Duration, Instant};

use integration_tests::kafka::{create_topic, kafka_py};
use integration_tests::real_druid::{RealDruid, MODERN_RELEASE};
use integration_tests::{unique_name, Tansu};
use serde_json::{json, Map, Value};
use tranquility::backend::translate::{
    batch_task, spec_hash, supervisor_spec, BatchLocks, BatchMode, EventFormat, SupervisorSettings,
    SPEC_HASH_KEY,
};
use tranquility::spec::{IngestionSpec, TranquilityConfig};
use tranquility::time::Interval;

/// The repository's example `metrics` dataSource, renamed so runs never share a dataSource.
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

fn hour_of(now: i64) -> Interval {
    let start = now - now.rem_euclid(3_600_000);
    Interval::new(start, start + 3_600_000)
}

fn row(ts: i64, host: &str, value: f64) -> String {
    let iso = chrono::DateTime::from_timestamp_millis(ts)
        .expect("a valid time")
        .to_rfc3339();
    json!({"timestamp": iso, "host": host, "metric": "cpu", "value": value}).to_string()
}

async fn post(url: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Sums `count` and `value` of `data_source` through the Broker until `count` reaches
/// `expected` or `timeout` passes; returns the last sums.
async fn wait_for_rows(
    broker: &str,
    data_source: &str,
    expected: i64,
    timeout: Duration,
) -> (i64, f64) {
    let query = json!({
        "queryType": "timeseries", "dataSource": data_source, "granularity": "all",
        "intervals": ["2000-01-01/2100-01-01"],
        "aggregations": [{"type": "longSum", "name": "count", "fieldName": "count"},
                         {"type": "doubleSum", "name": "value", "fieldName": "value"}]
    });
    let deadline = Instant::now() + timeout;
    loop {
        let (status, answer) = post(&format!("{broker}/druid/v2"), &query).await;
        let sums = (
            answer
                .pointer("/0/result/count")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            answer
                .pointer("/0/result/value")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
        );
        if (status == 200 && sums.0 >= expected) || Instant::now() > deadline {
            return sums;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_druid_runs_the_translated_batch_append() {
    let Some(druid) = RealDruid::start_or_skip(
        MODERN_RELEASE,
        "real_druid_runs_the_translated_batch_append",
    ) else {
        return;
    };
    let name = unique_name("batch").replace('-', "_");
    let spec = metrics_spec(&name);
    let now = integration_tests::setup::now_millis();
    let interval = hour_of(now);
    let mut rows: Vec<String> = (0..5)
        .map(|i| row(interval.start + i * 1000, &format!("h{i}"), 1.5))
        .collect();
    // An hour earlier: outside the task's interval, thrown away and reported.
    rows.push(row(interval.start - 1000, "late", 100.0));
    let id = format!("tranquility_{name}_{}", interval.start);
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
    let overlord = druid.overlord_url();
    let (status, answer) = post(&format!("{overlord}/druid/indexer/v1/task"), &task).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["task"], id.as_str());

    let deadline = Instant::now() + Duration::from_secs(240);
    let state = loop {
        let (_, s) = get(&format!("{overlord}/druid/indexer/v1/task/{id}/status")).await;
        let code = s
            .pointer("/status/statusCode")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if code == "SUCCESS" || code == "FAILED" {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the batch task did not finish: {s}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(state["status"]["statusCode"], "SUCCESS", "{state}");
    let (_, reports) = get(&format!("{overlord}/druid/indexer/v1/task/{id}/reports")).await;
    let stats = reports
        .pointer("/ingestionStatsAndErrors/payload/rowStats/buildSegments")
        .unwrap_or_else(|| panic!("no rowStats in {reports}"));
    assert_eq!(
        (stats["processed"].as_i64(), stats["thrownAway"].as_i64()),
        (Some(5), Some(1)),
        "{stats}"
    );

    // The same id again: Druid refuses it, which is what makes a retried submit safe.
    let (status, again) = post(&format!("{overlord}/druid/indexer/v1/task"), &task).await;
    assert_eq!(status, 400, "{again}");

    let sums = wait_for_rows(druid.broker_url(), &name, 5, Duration::from_secs(180)).await;
    assert_eq!(sums, (5, 7.5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_druid_runs_the_translated_supervisor() {
    let Some(druid) =
        RealDruid::start_or_skip(MODERN_RELEASE, "real_druid_runs_the_translated_supervisor")
    else {
        return;
    };
    let broker = Tansu::start().expect("tansu starts");
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
    let overlord = druid.overlord_url();
    let (status, answer) = post(
        &format!("{overlord}/druid/indexer/v1/supervisor"),
        &supervisor,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["id"], name.as_str());
    // Druid re-serialises the spec, but the context comes back as posted.
    let (status, stored) = get(&format!("{overlord}/druid/indexer/v1/supervisor/{name}")).await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(
        stored["context"][SPEC_HASH_KEY],
        json!(spec_hash(&supervisor)),
        "{stored}"
    );

    let now = integration_tests::setup::now_millis();
    let lines: Vec<String> = (0..10).map(|i| row(now, &format!("h{i}"), 2.0)).collect();
    kafka_py(
        &["produce", &broker.bootstrap_servers(), &topic, "2"],
        lines.join("\n").as_bytes(),
    );
    let sums = wait_for_rows(druid.broker_url(), &name, 10, Duration::from_secs(180)).await;
    assert_eq!(sums, (10, 20.0));
    let (_, stopped) = post(
        &format!("{overlord}/druid/indexer/v1/supervisor/{name}/terminate"),
        &json!({}),
    )
    .await;
    assert_eq!(stopped["id"], name.as_str(), "{stopped}");
}
