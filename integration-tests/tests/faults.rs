//! Faults against real services, each checking received = sent + dropped + failed.

use std::time::{Duration, Instant};

use bytes::Bytes;
use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::setup::{self, config, local_pipelines};
use integration_tests::{druid, free_port, unique_name};
use tranquility::beam::{Outcome, SendError};

fn events(n: usize) -> Vec<Bytes> {
    setup::events(n, setup::now_millis(), "fault")
}

async fn druid_on(port: u16) -> DruidLocal {
    DruidLocal::start(DruidLocalConfig {
        bind: ([127, 0, 0, 1], port).into(),
        ..DruidLocalConfig::ephemeral()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlord_down_at_task_creation_fails_with_a_reason_then_recovers() {
    let port = free_port();
    let ds = unique_name("fault-overlord");
    let cfg = config(
        &ds,
        "hour",
        &[
            ("druidBeam.taskLocator", "overlord"),
            ("druidBeam.indexRetryPeriod", "PT2S"),
            // Task creation is what fails here; auto would fail earlier, reading the version.
            ("druid.ingestion", "realtime"),
        ],
    );
    let pipelines = local_pipelines(&cfg, &format!("http://127.0.0.1:{port}"));
    let pipeline = pipelines.get(&ds).unwrap();

    // Nothing listens: creation is retried for indexRetryPeriod, then every event fails, saying why.
    let started = Instant::now();
    let outcomes = pipeline.send_all(events(20)).await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "retried for the period"
    );
    for outcome in &outcomes {
        match outcome {
            Outcome::Failed(e) => {
                assert!(matches!(**e, SendError::TaskCreation { .. }), "{e}");
                assert!(e.to_string().contains(&ds), "{e}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    // The Overlord comes back: the same pipeline recovers.
    let druid = druid_on(port).await;
    let outcomes = pipeline.send_all(events(30)).await;
    assert!(outcomes.iter().all(Outcome::is_sent), "{outcomes:?}");
    assert_eq!(
        druid::wait_for_count(&druid.url(), &ds, "count", 30, Duration::from_secs(30)).await,
        30
    );
    let tally = pipeline.metrics().snapshot();
    assert_eq!((tally.received, tally.sent, tally.failed), (50, 30, 20));
    assert!(tally.is_balanced());
    pipelines.close().await;
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_replica_task_gone_is_reported_never_silent() {
    let druid = druid_on(0).await;
    let ds = unique_name("fault-one-replica");
    let cfg = config(
        &ds,
        "hour",
        &[
            ("druidBeam.taskLocator", "overlord"),
            ("druidBeam.firehoseRetryPeriod", "PT2S"),
        ],
    );
    let pipelines = local_pipelines(&cfg, &druid.url());
    let pipeline = pipelines.get(&ds).unwrap();
    assert!(pipeline
        .send_all(events(10))
        .await
        .iter()
        .all(Outcome::is_sent));
    // druid-local stops: its tasks fail, and pushes cannot reach them.
    druid.shutdown().await;
    let outcomes = pipeline.send_all(events(10)).await;
    assert!(outcomes.iter().all(|o| !o.is_sent()), "{outcomes:?}");
    let tally = pipeline.metrics().snapshot();
    assert_eq!(tally.received, 20);
    assert_eq!(tally.sent, 10);
    assert_eq!(tally.dropped_total() + tally.failed, 10, "{tally:?}");
    assert!(tally.is_balanced());
    pipelines.close().await;
}

/// The Overlord refuses the second replica's task once: the first replica's task keeps
/// running, and the retry adopts it and creates the second, so the interval is not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_created_partition_is_adopted_by_the_retry() {
    half_created_then_adopted("1", "2", "_0_1", "_0_0").await;
}

/// The same one level up: partition 0 created, partition 1 refused once; the retry takes
/// partition 0's task over and creates partition 1's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_created_interval_is_adopted_by_the_retry() {
    half_created_then_adopted("2", "1", "_1_0", "_0_0").await;
}

/// Task ids end with `_<partition>_<replicant>`: the submit of `refused` fails once, after
/// `kept` was created.
async fn half_created_then_adopted(partitions: &str, replicants: &str, refused: &str, kept: &str) {
    let druid = druid_on(0).await;
    let proxy = integration_tests::DruidProxy::start(([127, 0, 0, 1], druid.port()).into())
        .await
        .expect("proxy starts");
    let ds = unique_name("fault-half");
    let cfg = config(
        &ds,
        "hour",
        &[
            ("task.partitions", partitions),
            ("task.replicants", replicants),
            ("druidBeam.taskLocator", "overlord"),
            // One attempt per submission: a refusal fails the creation at once.
            ("druidBeam.indexRetryPeriod", "PT0S"),
        ],
    );
    proxy.refuse_task_submits(refused, 1);
    let pipelines = local_pipelines(&cfg, &proxy.url());
    let pipeline = pipelines.get(&ds).unwrap();

    let outcomes = pipeline.send_all(events(10)).await;
    for outcome in &outcomes {
        match outcome {
            Outcome::Failed(e) => {
                assert!(matches!(**e, SendError::TaskCreation { .. }), "{e}");
                assert!(e.to_string().contains("refused by the test"), "{e}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }
    let first = druid::running_task_ids(&druid.url(), &ds).await;
    assert_eq!(first.len(), 1, "the task created keeps running: {first:?}");
    assert!(first[0].ends_with(kept), "{first:?}");

    let outcomes = pipeline.send_all(events(10)).await;
    setup::assert_all_sent(&outcomes);
    let both = druid::running_task_ids(&druid.url(), &ds).await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both.contains(&first[0]), "adopted: {both:?}");
    assert_eq!(
        druid::wait_for_count(&druid.url(), &ds, "count", 10, Duration::from_secs(30)).await,
        10
    );
    let tally = pipeline.metrics().snapshot();
    assert_eq!((tally.received, tally.sent, tally.failed), (20, 10, 10));
    assert!(tally.is_balanced());
    pipelines.close().await;
    druid.shutdown().await;
}
