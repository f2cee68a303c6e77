//! The batch beam against a fake Overlord on a loopback port: ids, intervals, locks, report
//! counts, resubmits, refusals, the byte cap and closing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::*;
use crate::beam::testing::ManualClock;
use crate::druid::overlord::{OverlordConfig, OverlordEndpoint};
use crate::metrics::Metrics;
use crate::retry::RetryPolicy;
use crate::spec::IngestionSpec;
use crate::time::Period;

const HOUR: i64 = 3_600_000;
/// 2025-01-01T10:00:00Z
const T0: i64 = 1_735_725_600_000;

/// What the fake Overlord was sent and how it answers.
#[derive(Default)]
struct Fake {
    tasks: Vec<Value>,
    ids: HashSet<String>,
    /// Ids whose task ends FAILED.
    fail: HashSet<String>,
    /// Ids refused with 400 and this body.
    refuse: Option<String>,
    /// Answer the next N accepted submits with 503 (the task is kept: a lost answer).
    lose_answers: usize,
    /// thrownAway / unparseable counts reported per task.
    thrown_away: u64,
    unparseable: u64,
    polls: HashMap<String, usize>,
}

type Shared = Arc<Mutex<Fake>>;

async fn submit(State(fake): State<Shared>, Json(task): Json<Value>) -> (StatusCode, Json<Value>) {
    let mut f = fake.lock();
    let id = task["id"].as_str().unwrap_or_default().to_string();
    if let Some(body) = &f.refuse {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": body})));
    }
    if !f.ids.insert(id.clone()) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "entryAlreadyExists",
                        "errorMessage": format!("Task [{id}] already exists")})),
        );
    }
    f.tasks.push(task);
    if f.lose_answers > 0 {
        f.lose_answers -= 1;
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({})));
    }
    (StatusCode::OK, Json(json!({"task": id})))
}

async fn status(State(fake): State<Shared>, Path(id): Path<String>) -> Json<Value> {
    let mut f = fake.lock();
    let polls = f.polls.entry(id.clone()).or_default();
    *polls += 1;
    let code = if *polls < 2 {
        "RUNNING"
    } else if f.fail.contains(&id) {
        "FAILED"
    } else {
        "SUCCESS"
    };
    Json(
        json!({"task": id, "status": {"id": id, "statusCode": code, "status": code,
                                       "errorMsg": (code == "FAILED").then_some("worker lost")}}),
    )
}

async fn reports(State(fake): State<Shared>, Path(id): Path<String>) -> Json<Value> {
    let f = fake.lock();
    let task = f.tasks.iter().find(|t| t["id"] == id.as_str()).cloned();
    let rows = task
        .and_then(|t| {
            t.pointer("/spec/ioConfig/inputSource/data")?
                .as_str()
                .map(str::to_string)
        })
        .map(|d| d.lines().count() as u64)
        .unwrap_or(0);
    let dropped = f.thrown_away + f.unparseable;
    Json(
        json!({"ingestionStatsAndErrors": {"taskId": id, "payload": {"rowStats": {
        "buildSegments": {"processed": rows.saturating_sub(dropped), "processedWithError": 0,
                          "thrownAway": f.thrown_away, "unparseable": f.unparseable}}}}}),
    )
}

async fn overlord(fake: Shared) -> OverlordClient {
    let app = Router::new()
        .route("/druid/indexer/v1/task", post(submit))
        .route("/druid/indexer/v1/task/{id}/status", get(status))
        .route("/druid/indexer/v1/task/{id}/reports", get(reports))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    OverlordClient::new(
        OverlordEndpoint::Url(url),
        OverlordConfig {
            retry: RetryPolicy {
                period: Some(Duration::from_secs(5)),
                initial_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(10),
                max_attempts: None,
            },
            ..OverlordConfig::default()
        },
    )
}

fn spec() -> IngestionSpec {
    serde_json::from_value(json!({
        "dataSchema": {
            "dataSource": "wiki",
            "parser": {"type": "string", "parseSpec": {"format": "json",
                "timestampSpec": {"column": "ts", "format": "millis"},
                "dimensionsSpec": {"dimensions": ["page"]}}},
            "metricsSpec": [{"type": "count", "name": "count"}],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"}
        },
        "tuningConfig": {"type": "realtime", "windowPeriod": "PT10M"}
    }))
    .unwrap()
}

fn beam(client: OverlordClient, period: Duration, max_bytes: usize) -> BatchBeam {
    let spec = spec();
    let rule = WindowRule {
        segment_granularity: spec.data_schema.granularity_spec.segment_granularity,
        window_period: Period::minutes(10),
        warming_period: Period::minutes(0),
    };
    let mut config = BatchConfig::new(
        "wiki",
        spec.data_schema,
        spec.tuning_config,
        rule,
        period,
        max_bytes,
        BatchLocks::Concurrent,
    );
    config.poll_period = Duration::from_millis(5);
    BatchBeam::new(
        config,
        client,
        Arc::new(ManualClock::at(T0 + 5 * 60_000)),
        Metrics::new().data_source("wiki"),
    )
}

fn ev(ts: i64, page: &str) -> Event {
    Event::new(ts, format!(r#"{{"ts":{ts},"page":"{page}"}}"#))
}

fn rows_of(task: &Value) -> Vec<Value> {
    task.pointer("/spec/ioConfig/inputSource/data")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn one_task_per_interval_with_every_row_and_concurrent_locks() {
    let fake = Shared::default();
    let beam = beam(
        overlord(fake.clone()).await,
        Duration::from_millis(30),
        1 << 20,
    );
    // At 10:05 with PT10M: 09:xx and 10:xx are open, 12:00 is outside.
    let events = vec![
        ev(T0 + 1, "a"),
        ev(T0 - HOUR + 59 * 60_000, "b"),
        ev(T0 + 2 * HOUR, "late"),
        ev(T0 + 2, "c\nmulti"),
    ];
    // A line break inside a string is escaped in JSON; between tokens it is whitespace.
    let mut events = events;
    events[3] = Event::new(T0 + 2, "{\"ts\":1735725600002,\n\"page\":\"c\"}");
    let outcomes = beam.send_batch(events).await;
    let kinds: Vec<_> = outcomes.iter().map(|o| format!("{o:?}")).collect();
    assert!(
        outcomes[0].is_sent() && outcomes[1].is_sent() && outcomes[3].is_sent(),
        "{kinds:?}"
    );
    assert!(matches!(
        outcomes[2],
        Outcome::Dropped(DropReason::OutsideWindow)
    ));

    let f = fake.lock();
    assert_eq!(f.tasks.len(), 2, "{:?}", f.tasks);
    let mut by_interval: Vec<(String, usize)> = f
        .tasks
        .iter()
        .map(|t| {
            assert_eq!(t["context"], json!({"useConcurrentLocks": true}));
            assert_eq!(t["spec"]["ioConfig"]["appendToExisting"], true);
            let id = t["id"].as_str().unwrap();
            assert!(id.starts_with("tranquility_batch_wiki_"), "{id}");
            (
                t["spec"]["dataSchema"]["granularitySpec"]["intervals"][0]
                    .as_str()
                    .unwrap()
                    .to_string(),
                rows_of(t).len(),
            )
        })
        .collect();
    by_interval.sort();
    assert_eq!(
        by_interval,
        [
            (
                "2025-01-01T09:00:00.000Z/2025-01-01T10:00:00.000Z".to_string(),
                1
            ),
            (
                "2025-01-01T10:00:00.000Z/2025-01-01T11:00:00.000Z".to_string(),
                2
            ),
        ]
    );
}

#[tokio::test]
async fn concurrent_sends_into_one_interval_share_a_batch() {
    let fake = Shared::default();
    let beam = beam(
        overlord(fake.clone()).await,
        Duration::from_millis(100),
        1 << 20,
    );
    let sends = (0..5).map(|i| {
        let beam = beam.clone();
        async move {
            beam.send_batch(vec![ev(T0 + i, "x"), ev(T0 + 100 + i, "y")])
                .await
        }
    });
    let all: Vec<Outcome> = futures::future::join_all(sends)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(all.len(), 10);
    assert!(all.iter().all(Outcome::is_sent));
    let f = fake.lock();
    assert_eq!(f.tasks.len(), 1);
    assert_eq!(rows_of(&f.tasks[0]).len(), 10);
}

#[tokio::test]
async fn the_byte_cap_splits_batches_and_refuses_larger_events() {
    let fake = Shared::default();
    let one = ev(T0, "p").raw().len() + 1;
    let beam = beam(
        overlord(fake.clone()).await,
        Duration::from_secs(3600),
        2 * one,
    );
    let huge = Event::new(
        T0,
        format!(r#"{{"ts":{T0},"page":"{}"}}"#, "x".repeat(3 * one)),
    );
    let outcomes = beam
        .send_batch(vec![
            ev(T0, "p"),
            ev(T0, "q"),
            huge,
            ev(T0, "r"),
            ev(T0, "s"),
        ])
        .await;
    // Two full batches went at once, without waiting for the (hour-long) period.
    assert!(outcomes[0].is_sent() && outcomes[1].is_sent());
    assert!(outcomes[3].is_sent() && outcomes[4].is_sent());
    match &outcomes[2] {
        Outcome::Failed(e) => {
            let text = e.to_string();
            assert!(text.contains("druid.ingestion.batch.maxBytes"), "{text}");
            assert!(!e.is_retriable());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.lock().tasks.len(), 2);
    beam.close().await.unwrap();
}

#[tokio::test]
async fn report_counts_become_drops_of_the_last_rows() {
    let fake = Shared::default();
    {
        let mut f = fake.lock();
        f.thrown_away = 1;
        f.unparseable = 1;
    }
    let beam = beam(
        overlord(fake.clone()).await,
        Duration::from_millis(10),
        1 << 20,
    );
    let outcomes = beam
        .send_batch((0..4).map(|i| ev(T0 + i, "p")).collect())
        .await;
    let tally = crate::metrics::Tally::of(&outcomes);
    assert_eq!(tally.sent, 2);
    assert_eq!(tally.dropped(DropReason::Unparseable), 1);
    assert_eq!(tally.dropped(DropReason::ThrownAway), 1);
    assert!(tally.is_balanced());
    assert!(matches!(
        outcomes[3],
        Outcome::Dropped(DropReason::ThrownAway)
    ));
}

#[tokio::test]
async fn a_failed_task_is_submitted_again_under_a_new_id() {
    let fake = Shared::default();
    let client = overlord(fake.clone()).await;
    let b = beam(client.clone(), Duration::from_millis(10), 1 << 20);
    // Fail the first attempt of the first batch: its id is known from the beam's instance.
    let first = format!(
        "tranquility_batch_wiki_2025-01-01T10:00:00.000Z_{}_0",
        b.inner.instance
    );
    fake.lock().fail.insert(first.clone());
    let outcomes = b.send_batch(vec![ev(T0, "a"), ev(T0 + 1, "b")]).await;
    assert!(outcomes.iter().all(Outcome::is_sent), "{outcomes:?}");
    let ids: Vec<String> = fake
        .lock()
        .tasks
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, [first.clone(), format!("{first}_2")]);

    // Failing every attempt fails the events, naming the task and its reason.
    let b = beam(client, Duration::from_millis(10), 1 << 20);
    let base = format!(
        "tranquility_batch_wiki_2025-01-01T10:00:00.000Z_{}_0",
        b.inner.instance
    );
    {
        let mut f = fake.lock();
        f.fail.insert(base.clone());
        f.fail.insert(format!("{base}_2"));
        f.fail.insert(format!("{base}_3"));
    }
    let outcomes = b.send_batch(vec![ev(T0, "a")]).await;
    match &outcomes[0] {
        Outcome::Failed(e) => {
            let text = e.to_string();
            assert!(
                text.contains(&format!("{base}_3")) && text.contains("worker lost"),
                "{text}"
            );
            assert!(text.contains("3 attempts"), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_refused_task_fails_with_druids_reason() {
    let fake = Shared::default();
    fake.lock().refuse = Some("Task payload size [9000] exceeds maxTaskPayloadSize".into());
    let b = beam(
        overlord(fake.clone()).await,
        Duration::from_millis(10),
        1 << 20,
    );
    let outcomes = b.send_batch(vec![ev(T0, "a")]).await;
    match &outcomes[0] {
        Outcome::Failed(e) => {
            let text = e.to_string();
            assert!(
                text.contains("HTTP 400") && text.contains("maxTaskPayloadSize"),
                "{text}"
            );
            assert!(!e.is_retriable());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_lost_submit_answer_is_followed_not_duplicated() {
    let fake = Shared::default();
    fake.lock().lose_answers = 1;
    let b = beam(
        overlord(fake.clone()).await,
        Duration::from_millis(10),
        1 << 20,
    );
    let outcomes = b.send_batch(vec![ev(T0, "a"), ev(T0 + 1, "b")]).await;
    assert!(outcomes.iter().all(Outcome::is_sent), "{outcomes:?}");
    // The retried POST was refused as a duplicate; one task holds the rows.
    let f = fake.lock();
    assert_eq!(f.tasks.len(), 1);
    assert_eq!(f.ids.len(), 1);
}

#[tokio::test]
async fn close_sends_what_gathers_and_later_events_are_dropped() {
    let fake = Shared::default();
    let b = beam(
        overlord(fake.clone()).await,
        Duration::from_secs(3600),
        1 << 20,
    );
    let waiting = {
        let b = b.clone();
        tokio::spawn(async move { b.send_batch(vec![ev(T0, "a")]).await })
    };
    // Let the event reach its batch before closing.
    while b.inner.state.lock().open.is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    b.close().await.unwrap();
    assert!(waiting.await.unwrap()[0].is_sent());
    assert_eq!(fake.lock().tasks.len(), 1);
    let after = b.send_batch(vec![ev(T0, "b")]).await;
    assert!(matches!(after[0], Outcome::Dropped(DropReason::BeamClosed)));
}

#[test]
fn row_stats_read_both_report_shapes() {
    let sequential = json!({"ingestionStatsAndErrors": {"payload": {"rowStats": {
        "buildSegments": {"processed": 3, "thrownAway": 1}}}}});
    let parallel = json!({"ingestionStatsAndErrors": {"payload": {"rowStats": {
        "totals": {"buildSegments": {"processed": 3, "unparseable": 2}}}}}});
    assert_eq!(
        RowStats::from_report(&sequential).unwrap(),
        RowStats {
            processed: 3,
            thrown_away: 1,
            ..RowStats::default()
        }
    );
    assert_eq!(RowStats::from_report(&parallel).unwrap().unparseable, 2);
    assert_eq!(RowStats::from_report(&json!({})), None);
    // More drops counted than rows: capped, every row still has one outcome.
    let odd = RowStats {
        thrown_away: 9,
        ..RowStats::default()
    }
    .outcomes(2);
    assert_eq!(odd.len(), 2);
}
