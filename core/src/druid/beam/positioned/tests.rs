//! Positioned pushes against a scripted task that applies Druid's producer-sequence rule.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::StatusCode;
use parking_lot::Mutex;
use serde_json::Value;

use super::super::{DruidBeam, DruidBeamContext, EventShape};
use crate::beam::{Beam, Outcome};
use crate::druid::locator::{LocateError, TaskLocator, TaskTarget};
use crate::druid::overlord::{OverlordClient, OverlordConfig, OverlordEndpoint};
use crate::druid::receiver::{ReceiverClient, ReceiverConfig};
use crate::druid::testing::{json, Recorded, Scripted};
use crate::druid::Endpoint;
use crate::event::{Event, TimestampExtractor};
use crate::metrics::Metrics;
use crate::retry::RetryPolicy;
use crate::source::{Origin, Ownership, PartitionId};
use crate::spec::properties::SerializationFormat;
use crate::spec::TimestampSpec;

/// What one task took: the `n` of every event ingested, and its producer map.
#[derive(Debug, Default)]
struct Task {
    ingested: Vec<i64>,
    producers: HashMap<String, i64>,
}

#[derive(Debug, Default)]
struct Druid {
    tasks: HashMap<String, Task>,
    /// Pushes holding this `n` answer 503 while the count lasts.
    fail: Option<(i64, usize)>,
}

impl Druid {
    fn push(&mut self, req: &Recorded) -> axum::response::Response {
        let name = req.path.split('/').nth(5).unwrap_or_default().to_owned();
        let events: Vec<Value> = serde_json::from_slice(&req.body).unwrap_or_default();
        let ns: Vec<i64> = events.iter().filter_map(|e| e["n"].as_i64()).collect();
        if let Some((n, left)) = &mut self.fail {
            if *left > 0 && ns.contains(n) {
                *left -= 1;
                return json(StatusCode::SERVICE_UNAVAILABLE, "");
            }
        }
        let task = self.tasks.entry(name).or_default();
        if let Some(id) = req.header("x-firehose-producer-id") {
            let seq: i64 = req
                .header("x-firehose-producer-seq")
                .and_then(|s| s.parse().ok())
                .unwrap_or(i64::MIN);
            let last = task.producers.entry(id).or_insert(i64::MIN);
            if seq <= *last {
                return json(StatusCode::OK, r#"{"eventCount":0,"skipped":true}"#);
            }
            *last = seq;
        }
        task.ingested.extend(&ns);
        json(StatusCode::OK, &format!(r#"{{"eventCount":{}}}"#, ns.len()))
    }

    fn ingested(&self, task: usize) -> Vec<i64> {
        let name = format!("firehose:druid:overlord:wiki-{task}");
        self.tasks
            .get(&name)
            .map(|t| t.ingested.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug)]
struct At(Endpoint);

#[async_trait]
impl TaskLocator for At {
    async fn locate(&self, _task: &TaskTarget) -> Result<Option<Endpoint>, LocateError> {
        Ok(Some(self.0.clone()))
    }
    fn forget(&self, _task: &TaskTarget) {}
}

async fn start(druid: &Arc<Mutex<Druid>>) -> Scripted {
    let druid = druid.clone();
    Scripted::start(move |_, req| {
        if req.path.ends_with("/push-events") {
            druid.lock().push(req)
        } else {
            json(StatusCode::NOT_FOUND, "{}")
        }
    })
    .await
}

fn beam(server: &Scripted, replicas: usize, chunk_size: usize) -> DruidBeam {
    let port = server.url.rsplit(':').next().unwrap().parse().unwrap();
    let spec = TimestampSpec::new("timestamp", "millis");
    let timestamps = Arc::new(TimestampExtractor::new(&spec).unwrap());
    let context = Arc::new(DruidBeamContext {
        data_source: "wiki".into(),
        receiver: ReceiverClient::new(ReceiverConfig {
            retry: RetryPolicy {
                period: Some(Duration::from_millis(200)),
                max_attempts: None,
                initial_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(20),
            },
            quiet_period: Duration::from_secs(60),
            request_timeout: Duration::from_secs(5),
            auth: None,
        }),
        locator: Arc::new(At(Endpoint {
            host: "127.0.0.1".into(),
            port,
            tls: false,
        })),
        overlord: OverlordClient::new(
            OverlordEndpoint::Url(server.url.clone()),
            OverlordConfig::default(),
        ),
        chunk_size,
        format: SerializationFormat::Json,
        indexing_service_key: "druid:overlord".into(),
        metrics: Metrics::new().data_source("wiki"),
    });
    let tasks = (0..replicas)
        .map(|i| TaskTarget {
            task_id: format!("task-{i}"),
            service_name: format!("firehose:druid:overlord:wiki-{i}"),
        })
        .collect();
    let shape = EventShape::created(&timestamps);
    DruidBeam::new(tasks, context, timestamps, Some(shape))
}

/// Events at `offsets` of partition 0, read under `ownership`, each carrying `n` = offset.
fn events(ownership: &Arc<Ownership>, offsets: impl IntoIterator<Item = i64>) -> Vec<Event> {
    offsets
        .into_iter()
        .map(|o| {
            let raw = format!(r#"{{"timestamp":1700000000000,"n":{o}}}"#);
            Event::new(1_700_000_000_000, raw.into_bytes())
                .with_origin(Origin::new(ownership.clone(), o))
        })
        .collect()
}

fn hold() -> Arc<Ownership> {
    Ownership::new("kafka:test", PartitionId::new("wiki", 0))
}

#[tokio::test]
async fn messages_read_again_by_a_new_owner_are_skipped_by_every_replica() {
    let druid = Arc::new(Mutex::new(Druid::default()));
    let server = start(&druid).await;
    let beam = beam(&server, 2, 4);

    let first = hold();
    let outcomes = beam.send_batch(events(&first, 0..10)).await;
    assert!(outcomes.iter().all(Outcome::is_sent));
    // A restart: a new owner reads from offset 4 (the last commit) and on.
    first.fence();
    let second = hold();
    let outcomes = beam.send_batch(events(&second, 4..23)).await;
    assert!(outcomes.iter().all(Outcome::is_sent), "{outcomes:?}");

    for task in 0..2 {
        assert_eq!(
            druid.lock().ingested(task),
            (0..23).collect::<Vec<_>>(),
            "replica {task}: every message once"
        );
    }
    let requests = server.requests.lock().clone();
    let seqs = |from: usize| -> Vec<(i64, usize)> {
        requests[from..]
            .iter()
            .filter(|r| r.path.ends_with("wiki-0/push-events"))
            .map(|r| {
                let seq = r
                    .header("x-firehose-producer-seq")
                    .unwrap()
                    .parse()
                    .unwrap();
                let n = serde_json::from_slice::<Vec<Value>>(&r.body).unwrap().len();
                (seq, n)
            })
            .collect()
    };
    // First owner: one event (position unknown), then chunks of 4 up to their last offset.
    assert_eq!(seqs(0)[..4], [(0, 1), (4, 4), (8, 4), (9, 1)]);
    // Second owner: one by one while the task has them (4..=9 skipped), 10 taken, then chunks.
    let again: Vec<(i64, usize)> = seqs(0)[4..].to_vec();
    assert_eq!(
        again,
        [
            (4, 1),
            (5, 1),
            (6, 1),
            (7, 1),
            (8, 1),
            (9, 1),
            (10, 1),
            (14, 4),
            (18, 4),
            (22, 4)
        ]
    );
    for r in &requests {
        assert_eq!(
            r.header("x-firehose-producer-id").as_deref(),
            Some("tranquility:kafka%3Atest:wiki:0")
        );
    }
}

#[tokio::test]
async fn a_failed_chunk_holds_back_what_follows_until_it_goes_again() {
    let druid = Arc::new(Mutex::new(Druid {
        fail: Some((5, usize::MAX)),
        ..Druid::default()
    }));
    let server = start(&druid).await;
    let beam = beam(&server, 1, 3);
    let owner = hold();
    let outcomes = beam.send_batch(events(&owner, 0..12)).await;
    let sent: Vec<bool> = outcomes.iter().map(Outcome::is_sent).collect();
    // Chunks [0] [1 2 3] [4 5 6]: the third fails, nothing after it is pushed.
    assert_eq!(sent, [vec![true; 4], vec![false; 8]].concat());
    assert!(outcomes[4..].iter().all(Outcome::is_failed));
    assert!(outcomes[4..]
        .iter()
        .all(|o| matches!(o, Outcome::Failed(e) if e.is_retriable())));
    assert_eq!(druid.lock().ingested(0), [0, 1, 2, 3]);
    assert!(
        server
            .requests
            .lock()
            .iter()
            .all(|r| r.header("x-firehose-producer-seq").as_deref() != Some("9")),
        "nothing after the failed chunk was pushed"
    );

    // The failed records go again first, then the rest: one by one until one is taken.
    druid.lock().fail = None;
    let outcomes = beam.send_batch(events(&owner, 4..15)).await;
    assert!(outcomes.iter().all(Outcome::is_sent));
    assert_eq!(druid.lock().ingested(0), (0..15).collect::<Vec<_>>());
}

#[tokio::test]
async fn nothing_is_pushed_for_a_fenced_ownership_and_late_records_go_without_dedup() {
    let druid = Arc::new(Mutex::new(Druid::default()));
    let server = start(&druid).await;
    let beam = beam(&server, 1, 10);
    let owner = hold();
    assert!(beam
        .send_batch(events(&owner, 0..5))
        .await
        .iter()
        .all(Outcome::is_sent));
    // Offset 2 again under the same ownership: only a broken order upstream could do this.
    // It cannot be skipped safely, so it goes under a pooled id, at least once.
    let late = beam.send_batch(events(&owner, [2])).await;
    assert!(late[0].is_sent());
    assert_eq!(druid.lock().ingested(0), [0, 1, 2, 3, 4, 2]);
    let last = server.requests.lock().last().cloned().unwrap();
    assert!(last
        .header("x-firehose-producer-id")
        .is_some_and(|id| !id.starts_with("tranquility:kafka")));

    owner.fence();
    let pushes = server.count();
    let fenced = beam.send_batch(events(&owner, 5..8)).await;
    assert!(fenced.iter().all(Outcome::is_failed));
    assert_eq!(
        server.count(),
        pushes,
        "nothing pushed for a fenced ownership"
    );

    // Events without an origin in the same batch go as before.
    let mut mixed = events(&hold(), [100]);
    mixed.insert(
        0,
        Event::new(
            1_700_000_000_000,
            &br#"{"timestamp":1700000000000,"n":-1}"#[..],
        ),
    );
    let outcomes = beam.send_batch(mixed).await;
    assert!(outcomes.iter().all(Outcome::is_sent));
    assert!(druid.lock().ingested(0).ends_with(&[-1, 100]));
}
