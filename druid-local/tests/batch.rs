//! Inline batch tasks beyond what the conformance body checks against a real Druid: replace
//! with `dropExisting` and with a coarser granularity, the load delay and
//! `awaitSegmentAvailabilityTimeoutMillis`, `maxTaskPayloadSize` (31+), transforms, and
//! published segments surviving a restart.

mod common;

use common::*;
use druid_local::{DruidLocal, DruidLocalConfig};
use serde_json::{json, Value};
use std::time::Duration;

fn task(
    id: &str,
    ds: &str,
    lines: &[Value],
    append: bool,
    granularity: &str,
    intervals: Option<&str>,
) -> Value {
    let data: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let mut gs =
        json!({"segmentGranularity": granularity, "queryGranularity": "NONE", "rollup": false});
    if let Some(i) = intervals {
        gs["intervals"] = json!([i]);
    }
    json!({"type": "index_parallel", "id": id, "spec": {
        "dataSchema": {"dataSource": ds, "timestampSpec": {"column": "ts", "format": "iso"},
            "dimensionsSpec": {"dimensions": ["page"]},
            "metricsSpec": [{"type": "count", "name": "count"}, {"type": "longSum", "name": "n", "fieldName": "n"}],
            "granularitySpec": gs},
        "ioConfig": {"type": "index_parallel", "inputSource": {"type": "inline", "data": data},
            "inputFormat": {"type": "json"}, "appendToExisting": append},
        "tuningConfig": {"type": "index_parallel"}}})
}

fn row(ts: &str, page: &str) -> Value {
    json!({"ts": ts, "page": page, "n": 1})
}

async fn count(c: &reqwest::Client, base: &str, ds: &str) -> i64 {
    let q = json!({"queryType": "timeseries", "dataSource": ds, "granularity": "all",
        "intervals": ["2000/2100"], "aggregations": [{"type": "longSum", "name": "c", "fieldName": "count"}]});
    let (_, v) = post(c, &format!("{base}/druid/v2"), &q).await;
    v[0]["result"]["c"].as_i64().unwrap_or(0)
}

async fn run(c: &reqwest::Client, base: &str, t: &Value) -> String {
    let (code, body) = post(c, &format!("{base}/druid/indexer/v1/task"), t).await;
    assert_eq!(code, 200, "{body}");
    let id = body["task"].as_str().unwrap().to_owned();
    wait_done(c, base, &id, 30).await
}

#[tokio::test]
async fn replace_overshadows_and_drop_existing_empties() {
    let druid = start_version("33.0.0").await;
    let (c, base) = (reqwest::Client::new(), druid.url());
    let rows = [
        row("2025-01-01T10:00:00Z", "a"),
        row("2025-01-01T11:00:00Z", "b"),
        row("2025-01-01T12:00:00Z", "c"),
    ];
    assert_eq!(
        run(&c, &base, &task("a1", "rep", &rows, true, "HOUR", None)).await,
        "SUCCESS"
    );
    assert_eq!(
        run(&c, &base, &task("a2", "rep", &rows, true, "HOUR", None)).await,
        "SUCCESS"
    );
    assert_eq!(count(&c, &base, "rep").await, 6);
    // A replace of 10:00 only: that chunk now holds the new row, the others keep theirs.
    let r = task(
        "r1",
        "rep",
        &[row("2025-01-01T10:30:00Z", "z")],
        false,
        "HOUR",
        None,
    );
    assert_eq!(run(&c, &base, &r).await, "SUCCESS");
    assert_eq!(count(&c, &base, "rep").await, 5);
    // A DAY-granularity replace overshadows every hour of the day.
    let r = task(
        "r2",
        "rep",
        &[row("2025-01-01T05:00:00Z", "y")],
        false,
        "DAY",
        None,
    );
    assert_eq!(run(&c, &base, &r).await, "SUCCESS");
    assert_eq!(count(&c, &base, "rep").await, 1);
    // dropExisting over two days empties the second one, where nothing new is written.
    let next_day = [row("2025-01-02T01:00:00Z", "d")];
    assert_eq!(
        run(&c, &base, &task("a3", "rep", &next_day, true, "DAY", None)).await,
        "SUCCESS"
    );
    assert_eq!(count(&c, &base, "rep").await, 2);
    let mut r = task(
        "r3",
        "rep",
        &[row("2025-01-01T06:00:00Z", "x")],
        false,
        "DAY",
        Some("2025-01-01/2025-01-03"),
    );
    r["spec"]["ioConfig"]["dropExisting"] = json!(true);
    assert_eq!(run(&c, &base, &r).await, "SUCCESS");
    assert_eq!(count(&c, &base, "rep").await, 1);
    druid.shutdown().await;
}

#[tokio::test]
async fn load_delay_and_segment_availability() {
    let mut config = DruidLocalConfig::ephemeral();
    config.segment_load_delay = Duration::from_millis(800);
    let druid = DruidLocal::start(config).await.unwrap();
    let (c, base) = (reqwest::Client::new(), druid.url());
    let rows = [row("2025-01-01T10:00:00Z", "a")];
    assert_eq!(
        run(&c, &base, &task("d1", "delay", &rows, true, "HOUR", None)).await,
        "SUCCESS"
    );
    // Published and listed at once, queryable only once loaded.
    let (code, ids) = get(
        &c,
        &format!("{base}/druid/coordinator/v1/metadata/datasources/delay/segments"),
    )
    .await;
    assert_eq!((code, ids.as_array().map(Vec::len)), (200, Some(1)));
    let (code, _) = get(
        &c,
        &format!("{base}/druid/coordinator/v1/datasources/delay"),
    )
    .await;
    assert_eq!(code, 204, "not loaded yet");
    assert_eq!(count(&c, &base, "delay").await, 0);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(count(&c, &base, "delay").await, 1);
    let (code, served) = get(
        &c,
        &format!("{base}/druid/coordinator/v1/datasources/delay"),
    )
    .await;
    assert_eq!((code, served["segments"]["count"].clone()), (200, json!(1)));
    // With awaitSegmentAvailabilityTimeoutMillis the task ends once the rows are queryable.
    let mut t = task("d2", "delay", &rows, true, "HOUR", None);
    t["spec"]["tuningConfig"]["awaitSegmentAvailabilityTimeoutMillis"] = json!(10000);
    assert_eq!(run(&c, &base, &t).await, "SUCCESS");
    assert_eq!(count(&c, &base, "delay").await, 2);
    let (_, r) = get(&c, &format!("{base}/druid/indexer/v1/task/d2/reports")).await;
    assert_eq!(
        r["ingestionStatsAndErrors"]["payload"]["segmentAvailabilityConfirmed"],
        true
    );
    druid.shutdown().await;
}

#[tokio::test]
async fn payload_limit_from_31_and_transforms() {
    let mut config = DruidLocalConfig::ephemeral();
    config.druid_version = "31.0.1".parse().unwrap();
    config.max_task_payload_size = Some(4000);
    let druid = DruidLocal::start(config).await.unwrap();
    let (c, base) = (reqwest::Client::new(), druid.url());
    let many: Vec<Value> = (0..60)
        .map(|i| row("2025-01-01T10:00:00Z", &format!("p{i}")))
        .collect();
    let (code, body) = post(
        &c,
        &format!("{base}/druid/indexer/v1/task"),
        &task("big", "lim", &many, true, "HOUR", None),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(body["errorCode"], "invalidInput");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("Task[big] has payload of size["),
        "{body}"
    );
    // A transform filter throws rows away.
    let mut t = task(
        "tf",
        "lim",
        &[
            row("2025-01-01T10:00:00Z", "keep"),
            row("2025-01-01T10:00:00Z", "drop"),
        ],
        true,
        "HOUR",
        None,
    );
    t["spec"]["dataSchema"]["transformSpec"] =
        json!({"filter": {"type": "selector", "dimension": "page", "value": "keep"}});
    assert_eq!(run(&c, &base, &t).await, "SUCCESS");
    let (_, r) = get(&c, &format!("{base}/druid/indexer/v1/task/tf/reports")).await;
    let stats = &r["ingestionStatsAndErrors"]["payload"]["rowStats"]["buildSegments"];
    assert_eq!(
        (stats["processed"].clone(), stats["thrownAway"].clone()),
        (json!(1), json!(1))
    );
    druid.shutdown().await;
}

#[tokio::test]
async fn a_task_of_several_megabytes_is_taken_without_a_payload_cap() {
    // Druid sets no request-body limit: an inline batch of a few MiB (Tranquility's batch
    // backend submits up to 5 MiB by default) is taken and runs.
    let druid = start_version("35.0.0").await;
    let (c, base) = (reqwest::Client::new(), druid.url());
    let pad = "x".repeat(200);
    let rows: Vec<Value> = (0..12_000)
        .map(|i| json!({"ts": "2025-01-01T10:00:00Z", "page": format!("p{i}"), "n": 1, "pad": pad}))
        .collect();
    let t = task("large", "large", &rows, true, "HOUR", None);
    assert!(t.to_string().len() > 3 << 20, "{}", t.to_string().len());
    assert_eq!(run(&c, &base, &t).await, "SUCCESS");
    assert_eq!(count(&c, &base, "large").await, 12_000);
    druid.shutdown().await;
}

#[tokio::test]
async fn published_segments_and_task_records_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let druid = start_with(Some(dir.path()), None).await;
    let rows = [
        row("2025-01-01T10:00:00Z", "a"),
        row("2025-01-01T10:00:00Z", "b"),
    ];
    assert_eq!(
        run(
            &c,
            &druid.url(),
            &task("p1", "keep", &rows, true, "HOUR", None)
        )
        .await,
        "SUCCESS"
    );
    druid.shutdown().await;
    let druid = start_with(Some(dir.path()), None).await;
    assert_eq!(count(&c, &druid.url(), "keep").await, 2);
    assert_eq!(status_code(&c, &druid.url(), "p1").await, "SUCCESS");
    // The next append takes the next partition of the same version.
    assert_eq!(
        run(
            &c,
            &druid.url(),
            &task("p2", "keep", &rows, true, "HOUR", None)
        )
        .await,
        "SUCCESS"
    );
    let (_, ids) = get(
        &c,
        &format!(
            "{}/druid/coordinator/v1/metadata/datasources/keep/segments",
            druid.url()
        ),
    )
    .await;
    let ids: Vec<&str> = ids
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(
        ids[1].ends_with("_1") && ids[1].starts_with(ids[0]),
        "{ids:?}"
    );
    druid.shutdown().await;
}
