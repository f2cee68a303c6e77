//! Apache Druid's own realtime-indexing integration tests (`ITRealtimeIndexTaskTest` and
//! `ITAppenderatorDriverRealtimeIndexTaskTest`, 0.21.1 resources), replayed against
//! druid-local: the task templates as they are (server-named id, a dataSource with spaces and
//! non-ASCII characters, `serverTime` rejection for `index_realtime`), the 22 events pushed one
//! per request to `push-events/`, and every query's result compared exactly, while the task
//! runs and again after handoff.
//!
//! The resources are public peer data, not part of this repository: they are read from
//! `$TRANQUILITY_PEER_DATA/druid-it`, else from `shared/peer-data/druid-it` in the nearest
//! parent directory that has it. Without them each test says it skipped, and why.

mod common;

use chrono::{DateTime, Duration, SubsecRound, Timelike, Utc};
use common::*;
use serde_json::Value;
use std::path::PathBuf;

/// The integration tests' datasource suffix (Druid's `extra.datasource.name.suffix`).
const DATASOURCE: &str = "wikipedia_index_test Россия 한국 中国!?";
const SERVICE: &str = "eventReceiverServiceName";

/// The resources folder; each test has checked it is there (or skipped) before reading.
fn resources() -> PathBuf {
    test_support::peer_data_root(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
        .expect("checked by peer_data_or_skip! at the start of the test")
        .join("druid-it")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(resources().join(name))
        .unwrap_or_else(|e| panic!("cannot read {name}: {e}"))
}

fn fmt_event(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}
fn fmt_ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S.000Z").to_string()
}
fn fmt_interval(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:00Z").to_string()
}

/// Which of Druid's two realtime ITs is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Realtime,
    Appenderator,
}

impl Kind {
    fn task_file(self) -> &'static str {
        match self {
            Kind::Realtime => "wikipedia_realtime_index_task.json",
            Kind::Appenderator => "wikipedia_realtime_appenderator_index_task.json",
        }
    }
    fn type_name(self) -> &'static str {
        match self {
            Kind::Realtime => "index_realtime",
            Kind::Appenderator => "index_realtime_appenderator",
        }
    }
}

struct Timeline {
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    group_by: DateTime<Utc>,
}

/// Pushes the 22 events the way `ITRealtimeIndexTaskTest.postEvents` does. The original sleeps
/// 4 s between events and stamps each with the wall clock; here the stamps follow the same
/// 4 s spacing on a timeline ending near "now", so the server-time window sees what it would.
async fn post_events(client: &reqwest::Client, base: &str, kind: Kind) -> Timeline {
    let data = read("wikipedia_realtime_index_data.json");
    let lines: Vec<&str> = data.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 22, "the IT data file has 22 events");
    let start = Utc::now().trunc_subsecs(0) - Duration::seconds(44);
    let mut dt = start;
    let (mut first, mut last, mut group_by) = (dt, dt, dt);
    for (n, line) in lines.iter().enumerate() {
        let i = n + 1;
        if i == 15 {
            dt -= Duration::minutes(10);
            // The appenderator test keeps this event, so it is the oldest one queried.
            if kind == Kind::Appenderator {
                first = dt;
            }
        } else if i == 16 {
            group_by = dt;
        } else if i == 18 {
            dt -= Duration::seconds(6);
        }
        let text = line
            .trim()
            .trim_end_matches(',')
            .replace("YYYY-MM-DDTHH:MM:SS", &fmt_event(dt));
        let event: Value = serde_json::from_str(&text).expect("event line is a JSON object");
        let url = format!("{base}/druid/worker/v1/chat/{SERVICE}/push-events/");
        let (status, body) = post(client, &url, &Value::Array(vec![event])).await;
        assert_eq!(status, 200, "push of event {i} failed: {body}");
        assert_eq!(body["eventCount"], 1, "event {i} not posted: {body}");
        last = dt;
        dt = start + Duration::seconds(4 * i as i64);
    }
    Timeline {
        first,
        last,
        group_by,
    }
}

fn queries(file: &str, t: &Timeline) -> Vec<(String, Value, Value)> {
    let s = read(file)
        .replace("%%TIMEBOUNDARY_RESPONSE_TIMESTAMP%%", &fmt_ts(t.first))
        .replace("%%TIMEBOUNDARY_RESPONSE_MAXTIME%%", &fmt_ts(t.last))
        .replace("%%TIMEBOUNDARY_RESPONSE_MINTIME%%", &fmt_ts(t.first))
        .replace("%%TIMESERIES_QUERY_START%%", &fmt_interval(t.first))
        .replace(
            "%%TIMESERIES_QUERY_END%%",
            &fmt_interval(t.last + Duration::minutes(2)),
        )
        .replace("%%TIMESERIES_RESPONSE_TIMESTAMP%%", &fmt_ts(t.first))
        .replace("%%POST_AG_REQUEST_START%%", &fmt_interval(t.first))
        .replace(
            "%%POST_AG_REQUEST_END%%",
            &fmt_interval(t.last + Duration::minutes(2)),
        )
        .replace(
            "%%POST_AG_RESPONSE_TIMESTAMP%%",
            &fmt_ts(t.group_by.with_second(0).unwrap_or(t.group_by)),
        )
        .replace("%%DATASOURCE%%", DATASOURCE);
    let v: Value = serde_json::from_str(&s).expect("queries file is JSON");
    v.as_array()
        .expect("list of queries")
        .iter()
        .map(|q| {
            (
                q["description"].as_str().unwrap_or("").to_owned(),
                q["query"].clone(),
                q["expectedResults"].clone(),
            )
        })
        .collect()
}

async fn check_queries(
    client: &reqwest::Client,
    base: &str,
    file: &str,
    t: &Timeline,
    phase: &str,
) {
    for (desc, q, expected) in queries(file, t) {
        let got = query(client, base, &q).await;
        assert_eq!(got, expected, "{phase}: query [{desc}] differs");
    }
}

async fn submit_and_push(client: &reqwest::Client, base: &str, kind: Kind) -> (String, Timeline) {
    let shutoff = iso_in(6);
    let spec = read(kind.task_file())
        .replace("%%DATASOURCE%%", DATASOURCE)
        .replace("#SHUTOFFTIME", &shutoff);
    let r = client
        .post(format!("{base}/druid/indexer/v1/task"))
        .header("Content-Type", "application/json")
        .body(spec)
        .send()
        .await
        .expect("submit");
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.expect("json");
    let id = v["task"].as_str().expect("task id").to_owned();
    assert!(
        id.starts_with(&format!("index_realtime_{DATASOURCE}_0_")),
        "server-named id: {id}"
    );
    // Find the receiver through the task's location, as a client without ZooKeeper would.
    let (_, st) = get(
        client,
        &format!("{base}/druid/indexer/v1/task/{}/status", urlencode(&id)),
    )
    .await;
    assert_eq!(st["status"]["statusCode"], "RUNNING");
    assert_eq!(st["status"]["type"], kind.type_name());
    let mut host = Value::Null;
    for _ in 0..50 {
        let (_, st) = get(
            client,
            &format!("{base}/druid/indexer/v1/task/{}/status", urlencode(&id)),
        )
        .await;
        if !st["status"]["location"]["host"].is_null() {
            host = st["status"]["location"].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let peon = format!(
        "http://{}:{}",
        host["host"].as_str().expect("location host"),
        host["port"]
    );
    wait_handler(client, &peon, SERVICE).await;
    let t = post_events(client, &peon, kind).await;
    (id, t)
}

async fn run_it(kind: Kind, queries_file: &str) {
    test_support::peer_data_or_skip!("druid-it");
    let druid = start().await;
    let base = druid.url();
    let client = reqwest::Client::new();
    let (id, t) = submit_and_push(&client, &base, kind).await;
    // Rows are queryable within a second of the push answer.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let metrics = get(
        &client,
        &format!("{base}/druid-local/v1/task/{}/metrics", urlencode(&id)),
    )
    .await
    .1;
    let (thrown_away, processed) = match kind {
        // The 15th event is outside the serverTime window.
        Kind::Realtime => (1, 21),
        // The appenderator task has no window: every event is kept.
        Kind::Appenderator => (0, 22),
    };
    assert_eq!(metrics["thrownAway"], thrown_away, "{metrics}");
    assert_eq!(metrics["processed"], processed, "{metrics}");
    check_queries(&client, &base, queries_file, &t, "realtime").await;
    assert_eq!(wait_done(&client, &base, &id, 30).await, "SUCCESS");
    check_queries(&client, &base, queries_file, &t, "after handoff").await;
    druid.shutdown().await;
}

/// The three queries Druid's IT has run since 0.14 (timeBoundary, timeseries, groupBy with a
/// post-aggregation having spec).
#[tokio::test]
async fn druid_realtime_index_it_core_queries() {
    run_it(
        Kind::Realtime,
        "wikipedia_realtime_index_queries.druid-0.17.1.json",
    )
    .await;
}

/// The 0.21.1 file adds a topN over a join with an inline datasource and an expression virtual
/// column.
#[tokio::test]
async fn druid_realtime_index_it_0_21_1() {
    run_it(Kind::Realtime, "wikipedia_realtime_index_queries.json").await;
}

/// `ITAppenderatorDriverRealtimeIndexTaskTest`: the `index_realtime_appenderator` template, no
/// rejection window, so all 22 events count.
#[tokio::test]
async fn druid_appenderator_realtime_index_it() {
    run_it(
        Kind::Appenderator,
        "wikipedia_realtime_appenderator_index_queries.json",
    )
    .await;
}
