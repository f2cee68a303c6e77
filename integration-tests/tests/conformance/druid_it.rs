//! Apache Druid's own realtime-indexing integration tests (`ITRealtimeIndexTaskTest` and
//! `ITAppenderatorDriverRealtimeIndexTaskTest`, 0.21.1 resources), replayed against a
//! [`DruidTarget`]: the task templates as they are (server-named id, a dataSource with spaces
//! and non-ASCII characters, `serverTime` rejection for `index_realtime`), the 22 events
//! pushed one per request to `push-events/`, and every query's result compared exactly,
//! while the task runs and again after the handoff.
//!
//! The original sleeps 4 s between events and stamps each with the wall clock; here the stamps
//! follow the same 4 s spacing on a timeline ending near "now", so the server-time window sees
//! what it would, without the wait. The task's shutoff is far enough for a real peon to start;
//! the firehose is closed through its `/shutdown` once the queries passed.
//!
//! The resources are public peer data, not part of this repository: read from
//! `$TRANQUILITY_PEER_DATA/druid-it`, else from `shared/peer-data/druid-it` in the nearest
//! parent directory that has it. Without them each check says it skipped, and why.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Timelike, Utc};
use integration_tests::target::{
    client, iso, now_millis, post_json, post_raw, query_until, segment, send, wait_finished,
    DruidTarget,
};
use serde_json::Value;

/// The integration tests' datasource suffix (Druid's `extra.datasource.name.suffix`).
const DATASOURCE: &str = "wikipedia_index_test Россия 한국 中国!?";
const SERVICE: &str = "eventReceiverServiceName";

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
    /// The dataSource: Druid's IT name, suffixed for the appenderator test, so both can run
    /// on one cluster (Druid's own ITs drop the dataSource after each test instead).
    fn data_source(self) -> String {
        match self {
            Kind::Realtime => DATASOURCE.to_owned(),
            Kind::Appenderator => format!("{DATASOURCE}_appenderator"),
        }
    }
    fn type_name(self) -> &'static str {
        match self {
            Kind::Realtime => "index_realtime",
            Kind::Appenderator => "index_realtime_appenderator",
        }
    }
}

/// `ITRealtimeIndexTaskTest` with the 0.21.1 queries (a topN over a join to an inline
/// datasource with an expression virtual column among them).
pub async fn realtime(t: &DruidTarget) {
    let dir = test_support::peer_data_or_skip!("druid-it");
    run(
        t,
        &dir,
        Kind::Realtime,
        "wikipedia_realtime_index_queries.json",
    )
    .await;
}

/// `ITRealtimeIndexTaskTest` with the three queries it ran from 0.14 to 0.17.1.
pub async fn realtime_0_17_1(t: &DruidTarget) {
    let dir = test_support::peer_data_or_skip!("druid-it");
    run(
        t,
        &dir,
        Kind::Realtime,
        "wikipedia_realtime_index_queries.druid-0.17.1.json",
    )
    .await;
}

/// `ITAppenderatorDriverRealtimeIndexTaskTest`: the `index_realtime_appenderator` template,
/// no rejection window, so all 22 events count.
pub async fn appenderator(t: &DruidTarget) {
    let dir = test_support::peer_data_or_skip!("druid-it");
    run(
        t,
        &dir,
        Kind::Appenderator,
        "wikipedia_realtime_appenderator_index_queries.json",
    )
    .await;
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("cannot read {name}: {e}"))
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

struct Timeline {
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    group_by: DateTime<Utc>,
}

/// Pushes the 22 events the way `ITRealtimeIndexTaskTest.postEvents` does.
async fn post_events(dir: &Path, push: &str, kind: Kind) -> Timeline {
    let c = client();
    let data = read(dir, "wikipedia_realtime_index_data.json");
    let lines: Vec<&str> = data.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 22, "the IT data file has 22 events");
    let start = Utc::now().trunc_subsecs(0) - chrono::Duration::seconds(44);
    let mut dt = start;
    let (mut first, mut last, mut group_by) = (dt, dt, dt);
    for (n, line) in lines.iter().enumerate() {
        let i = n + 1;
        if i == 15 {
            dt -= chrono::Duration::minutes(10);
            // The appenderator test keeps this event, so it is the oldest one queried.
            if kind == Kind::Appenderator {
                first = dt;
            }
        } else if i == 16 {
            group_by = dt;
        } else if i == 18 {
            dt -= chrono::Duration::seconds(6);
        }
        let text = line
            .trim()
            .trim_end_matches(',')
            .replace("YYYY-MM-DDTHH:MM:SS", &fmt_event(dt));
        let event: Value = serde_json::from_str(&text).expect("event line is a JSON object");
        let answer = send(post_json(&c, push, &Value::Array(vec![event]))).await;
        assert_eq!(answer.status, 200, "push of event {i} failed: {answer:?}");
        assert_eq!(
            answer.body["eventCount"], 1,
            "event {i} not posted: {answer:?}"
        );
        last = dt;
        dt = start + chrono::Duration::seconds(4 * i as i64);
    }
    Timeline {
        first,
        last,
        group_by,
    }
}

fn queries(dir: &Path, file: &str, t: &Timeline, data_source: &str) -> Vec<(String, Value, Value)> {
    let s = read(dir, file)
        .replace("%%TIMEBOUNDARY_RESPONSE_TIMESTAMP%%", &fmt_ts(t.first))
        .replace("%%TIMEBOUNDARY_RESPONSE_MAXTIME%%", &fmt_ts(t.last))
        .replace("%%TIMEBOUNDARY_RESPONSE_MINTIME%%", &fmt_ts(t.first))
        .replace("%%TIMESERIES_QUERY_START%%", &fmt_interval(t.first))
        .replace(
            "%%TIMESERIES_QUERY_END%%",
            &fmt_interval(t.last + chrono::Duration::minutes(2)),
        )
        .replace("%%TIMESERIES_RESPONSE_TIMESTAMP%%", &fmt_ts(t.first))
        .replace("%%POST_AG_REQUEST_START%%", &fmt_interval(t.first))
        .replace(
            "%%POST_AG_REQUEST_END%%",
            &fmt_interval(t.last + chrono::Duration::minutes(2)),
        )
        .replace(
            "%%POST_AG_RESPONSE_TIMESTAMP%%",
            &fmt_ts(t.group_by.with_second(0).unwrap_or(t.group_by)),
        )
        .replace("%%DATASOURCE%%", data_source);
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
    broker: &str,
    dir: &Path,
    file: &str,
    t: &Timeline,
    data_source: &str,
    phase: &str,
) {
    for (desc, query, expected) in queries(dir, file, t, data_source) {
        let answer = query_until(broker, &query, &expected, Duration::from_secs(60)).await;
        assert_eq!(
            answer.pair(),
            (200, &expected),
            "{phase}: query [{desc}] differs"
        );
    }
}

async fn run(t: &DruidTarget, dir: &Path, kind: Kind, queries_file: &str) {
    let c = client();
    let overlord = t.overlord_url();
    // Far enough for a real peon to start and the events and queries to pass; the firehose is
    // closed by hand afterwards.
    let shutoff = iso(now_millis() + 600_000);
    let data_source = kind.data_source();
    let spec = read(dir, kind.task_file())
        .replace("%%DATASOURCE%%", &data_source)
        .replace("#SHUTOFFTIME", &shutoff);
    let answer = send(post_raw(
        &c,
        &format!("{overlord}/druid/indexer/v1/task"),
        "application/json",
        spec,
    ))
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let id = answer.body["task"].as_str().expect("task id").to_owned();
    assert!(
        id.starts_with(&format!("index_realtime_{data_source}_0_")),
        "server-named id: {id}"
    );
    let status = send(c.get(format!(
        "{overlord}/druid/indexer/v1/task/{}/status",
        segment(&id)
    )))
    .await;
    assert_eq!(
        (
            &status.body["status"]["statusCode"],
            &status.body["status"]["type"]
        ),
        (&Value::from("RUNNING"), &Value::from(kind.type_name()))
    );
    // Found through the task's location, as a client without ZooKeeper would.
    let receiver = t.receiver(&id, SERVICE).await;
    let timeline = post_events(dir, &format!("{}/", receiver.push_url(SERVICE)), kind).await;

    if let DruidTarget::Local { druid, .. } = t {
        // druid-local's own counters: the 15th event is outside the serverTime window of
        // `index_realtime`; the appenderator task has no window.
        let metrics_url = format!(
            "{}/druid-local/v1/task/{}/metrics",
            druid.url(),
            segment(&id)
        );
        let expected = match kind {
            Kind::Realtime => (1, 21),
            Kind::Appenderator => (0, 22),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let m = send(c.get(&metrics_url)).await.body;
            let got = (m["thrownAway"].as_u64(), m["processed"].as_u64());
            if got == (Some(expected.0), Some(expected.1)) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{m}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let broker = t.broker_url();
    check_queries(
        &broker,
        dir,
        queries_file,
        &timeline,
        &data_source,
        "realtime",
    )
    .await;

    let close = send(c.post(format!(
        "{}/druid/worker/v1/chat/{SERVICE}/shutdown",
        receiver.base
    )))
    .await;
    assert_eq!(close.status, 200, "{close:?}");
    let done = wait_finished(&c, &overlord, &id).await;
    assert_eq!(done.body["status"]["statusCode"], "SUCCESS", "{done:?}");
    check_queries(
        &broker,
        dir,
        queries_file,
        &timeline,
        &data_source,
        "after handoff",
    )
    .await;
}
