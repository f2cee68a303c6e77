//! ClusteredBeam against an in-memory maker, the local coordinator and a manual clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::json;

use super::*;
use crate::beam::testing::{FailableBeam, ManualClock, MemoryBeam};
use crate::beam::{Beam, DropReason, Outcome, SendError};
use crate::coord::{BeamDescriptor, Coordinator, LocalCoordinator};
use crate::time::window::WindowRule;
use crate::time::{Granularity, Interval, Period};

const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;
/// 2024-01-01T13:05:00Z
const T1305: i64 = 1_704_114_300_000;
const T1300: i64 = T1305 - 5 * MINUTE;

/// Shared "Druid": one MemoryBeam per (bucket start, partition), however many makers ask.
#[derive(Debug, Default)]
struct Druid {
    beams: Mutex<HashMap<(i64, u32), MemoryBeam>>,
    created: Mutex<Vec<(i64, u32)>>,
    defunct: Mutex<Vec<i64>>,
}

#[derive(Debug)]
struct TestMaker {
    druid: Arc<Druid>,
    fail: AtomicBool,
}

impl TestMaker {
    fn new(druid: &Arc<Druid>) -> Arc<Self> {
        Arc::new(TestMaker {
            druid: druid.clone(),
            fail: AtomicBool::new(false),
        })
    }
}

#[async_trait]
impl BeamMaker for TestMaker {
    async fn create(
        &self,
        interval: Interval,
        partition: u32,
    ) -> Result<BeamDescriptor, SendError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(SendError::TaskCreation {
                data_source: "test".into(),
                interval: interval.to_string(),
                message: "overlord unreachable".into(),
            });
        }
        // Creation is slow, as submitting tasks is.
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.druid.created.lock().push((interval.start, partition));
        Ok(BeamDescriptor {
            interval: Some(interval),
            timestamp: None,
            partition,
            details: json!({"name": format!("beam-{partition}")})
                .as_object()
                .unwrap()
                .clone(),
        })
    }

    fn open(&self, d: &BeamDescriptor) -> Result<Arc<dyn Beam>, SendError> {
        let start = d.start().unwrap();
        if self.druid.defunct.lock().contains(&start) {
            return Ok(Arc::new(
                FailableBeam::new().drop_if(|_| true, DropReason::BeamDefunct),
            ));
        }
        let beam = self
            .druid
            .beams
            .lock()
            .entry((start, d.partition))
            .or_default()
            .clone();
        Ok(Arc::new(beam))
    }
}

fn config(clock: &ManualClock, partitions: u32, warming: Period) -> ClusteredBeamConfig {
    ClusteredBeamConfig {
        identity: "druid:overlord/test".into(),
        rule: WindowRule {
            segment_granularity: Granularity::HOUR,
            window_period: Period::minutes(10),
            warming_period: warming,
        },
        partitions,
        partitioner: Arc::new(|e: &Event| (e.timestamp_millis() / 1000) as usize),
        clock: Arc::new(clock.clone()),
    }
}

fn events(timestamps: &[i64]) -> Vec<Event> {
    timestamps
        .iter()
        .map(|ts| Event::new(*ts, format!(r#"{{"ts":{ts}}}"#)))
        .collect()
}

fn kinds(outcomes: &[Outcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| match o {
            Outcome::Sent => "sent".to_string(),
            Outcome::Dropped(r) => r.to_string(),
            Outcome::Failed(_) => "failed".to_string(),
        })
        .collect()
}

#[tokio::test]
async fn window_rule_decides_per_event_and_outcomes_keep_order() {
    let druid = Arc::new(Druid::default());
    let clock = ManualClock::at(T1305);
    let coord: Arc<dyn Coordinator> = Arc::new(LocalCoordinator::new());
    let beam = ClusteredBeam::new(
        config(&clock, 1, Period::ZERO),
        TestMaker::new(&druid),
        coord,
    );
    // 12:55 (previous bucket, within W), 13:04, 14:20 (too far ahead), 11:30 (too old)
    let ts = [
        T1300 - 5 * MINUTE,
        T1305 - MINUTE,
        T1300 + HOUR + 20 * MINUTE,
        T1300 - 90 * MINUTE,
    ];
    let outcomes = beam.send_batch(events(&ts)).await;
    assert_eq!(
        kinds(&outcomes),
        ["sent", "sent", "outside_window", "outside_window"]
    );
    let mut created = druid.created.lock().clone();
    created.sort();
    assert_eq!(created, [(T1300 - HOUR, 0), (T1300, 0)]);

    // At 13:25 the 12:00 bucket no longer accepts events.
    clock.set(T1300 + 25 * MINUTE);
    let outcomes = beam
        .send_batch(events(&[T1300 - 5 * MINUTE, T1300 + 24 * MINUTE]))
        .await;
    assert_eq!(kinds(&outcomes), ["outside_window", "sent"]);
    assert_eq!(druid.beams.lock()[&(T1300, 0)].events().len(), 2);
    assert_eq!(beam.open_buckets(), [T1300]);
}

#[tokio::test]
async fn instances_share_one_set_of_beams_per_bucket() {
    let druid = Arc::new(Druid::default());
    let clock = ManualClock::at(T1305);
    let coord: Arc<dyn Coordinator> = Arc::new(LocalCoordinator::new());
    let beams: Vec<ClusteredBeam> = (0..3)
        .map(|_| {
            ClusteredBeam::new(
                config(&clock, 2, Period::ZERO),
                TestMaker::new(&druid),
                coord.clone(),
            )
        })
        .collect();
    let sends = beams.iter().map(|b| {
        let evs = events(&(0..20).map(|i| T1300 + i * 1000).collect::<Vec<_>>());
        b.send_batch(evs)
    });
    let all = futures::future::join_all(sends).await;
    assert!(all.iter().flatten().all(Outcome::is_sent));
    let mut created = druid.created.lock().clone();
    created.sort();
    assert_eq!(
        created,
        [(T1300, 0), (T1300, 1)],
        "exactly partitions beams"
    );
    let total: usize = druid.beams.lock().values().map(|b| b.events().len()).sum();
    assert_eq!(total, 60);
    // Both partitions got events (the partitioner spreads by timestamp).
    assert!(druid.beams.lock().values().all(|b| !b.events().is_empty()));
}

#[tokio::test]
async fn creation_failure_fails_events_with_the_reason() {
    let druid = Arc::new(Druid::default());
    let clock = ManualClock::at(T1305);
    let maker = TestMaker::new(&druid);
    maker.fail.store(true, Ordering::SeqCst);
    let coord: Arc<dyn Coordinator> = Arc::new(LocalCoordinator::new());
    let beam = ClusteredBeam::new(config(&clock, 1, Period::ZERO), maker.clone(), coord);
    let outcomes = beam.send_batch(events(&[T1305])).await;
    match &outcomes[0] {
        Outcome::Failed(e) => assert!(e.to_string().contains("overlord unreachable"), "{e}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    // Recovery: the next batch creates the beam.
    maker.fail.store(false, Ordering::SeqCst);
    assert!(beam.send_batch(events(&[T1305])).await[0].is_sent());
}

#[tokio::test]
async fn expired_buckets_close_and_raise_latest_close_time() {
    let druid = Arc::new(Druid::default());
    let clock = ManualClock::at(T1305);
    let coord = Arc::new(LocalCoordinator::new());
    let beam = ClusteredBeam::new(
        config(&clock, 1, Period::ZERO),
        TestMaker::new(&druid),
        coord.clone(),
    );
    assert!(beam.send_batch(events(&[T1305])).await[0].is_sent());
    // 14:11: the 13:00 bucket ended at 14:00, plus W = 14:10 < now.
    clock.set(T1300 + HOUR + 11 * MINUTE);
    assert!(beam.send_batch(events(&[T1300 + HOUR + 11 * MINUTE])).await[0].is_sent());
    assert_eq!(beam.open_buckets(), [T1300 + HOUR]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(druid.beams.lock()[&(T1300, 0)].is_closed());
    let meta = coord.read("druid:overlord/test").await.unwrap();
    assert_eq!(meta.latest_close_time, Some(T1300));
    assert_eq!(meta.beams.len(), 1);
}

#[tokio::test]
async fn defunct_bucket_drops_later_events_as_closed() {
    let druid = Arc::new(Druid::default());
    druid.defunct.lock().push(T1300);
    let clock = ManualClock::at(T1305);
    let coord = Arc::new(LocalCoordinator::new());
    let beam = ClusteredBeam::new(
        config(&clock, 1, Period::ZERO),
        TestMaker::new(&druid),
        coord.clone(),
    );
    let outcomes = beam.send_batch(events(&[T1305])).await;
    assert_eq!(kinds(&outcomes), ["beam_defunct"]);
    let outcomes = beam.send_batch(events(&[T1305 + 1])).await;
    assert_eq!(kinds(&outcomes), ["interval_closed"]);
    // No second set of tasks for the defunct bucket, and the metadata says it is closed.
    assert_eq!(druid.created.lock().len(), 1);
    let meta = coord.read("druid:overlord/test").await.unwrap();
    assert_eq!(meta.latest_close_time, Some(T1300));
}

#[tokio::test]
async fn warming_creates_the_next_bucket_ahead_of_time() {
    let druid = Arc::new(Druid::default());
    let clock = ManualClock::at(T1300 + 55 * MINUTE);
    let coord: Arc<dyn Coordinator> = Arc::new(LocalCoordinator::new());
    let beam = ClusteredBeam::new(
        config(&clock, 1, Period::minutes(10)),
        TestMaker::new(&druid),
        coord,
    );
    assert!(beam.send_batch(events(&[T1300 + 55 * MINUTE])).await[0].is_sent());
    for _ in 0..100 {
        if druid.created.lock().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut created = druid.created.lock().clone();
    created.sort();
    assert_eq!(created, [(T1300, 0), (T1300 + HOUR, 0)]);
}

#[tokio::test]
async fn closed_beam_answers_every_event() {
    let druid = Arc::new(Druid::default());
    let clock = ManualClock::at(T1305);
    let coord: Arc<dyn Coordinator> = Arc::new(LocalCoordinator::new());
    let beam = ClusteredBeam::new(
        config(&clock, 1, Period::ZERO),
        TestMaker::new(&druid),
        coord,
    );
    assert!(beam.send_batch(events(&[T1305])).await[0].is_sent());
    beam.close().await.unwrap();
    assert!(druid.beams.lock()[&(T1300, 0)].is_closed());
    let outcomes = beam.send_batch(events(&[T1305, 0])).await;
    assert_eq!(kinds(&outcomes), ["interval_closed", "outside_window"]);
}
