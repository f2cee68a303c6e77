//! The core against druid-local and a real ZooKeeper: tasks through the Overlord, receivers
//! found through the Overlord or ZooKeeper, partitions x replicants, instances sharing tasks.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::setup::{assert_all_sent, config, events, local_pipelines, now_millis};
use integration_tests::{druid, unique_name, ZooKeeper};
use serde_json::json;
use tranquility::beam::{DropReason, Outcome};
use tranquility::coord::LocalCoordinator;
use tranquility::metrics::Metrics;
use tranquility::pipeline::Pipelines;
use tranquility::spec::TranquilityConfig;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_sends_every_event_and_druid_counts_them() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let ds = unique_name("core-e2e");
    let cfg = config(&ds, "hour", &[("druidBeam.taskLocator", "overlord")]);
    let pipelines = local_pipelines(&cfg, &druid.url());
    let pipeline = pipelines.get(&ds).unwrap();

    let now = now_millis();
    let mut raws = events(500, now, "a");
    raws.push(Bytes::from_static(br#"{"tag":"no timestamp"}"#));
    raws.push(Bytes::from(
        json!({"timestamp": now - 3 * 3_600_000}).to_string(),
    ));
    let outcomes = pipeline.send_all(raws).await;
    assert_all_sent(&outcomes[..500]);
    assert!(matches!(
        outcomes[500],
        Outcome::Dropped(DropReason::Unparseable)
    ));
    assert!(matches!(
        outcomes[501],
        Outcome::Dropped(DropReason::OutsideWindow)
    ));

    let tally = pipeline.metrics().snapshot();
    assert_eq!(
        (
            tally.received,
            tally.sent,
            tally.dropped_total(),
            tally.failed
        ),
        (502, 500, 2, 0)
    );
    assert_eq!(
        druid::wait_for_count(&druid.url(), &ds, "count", 500, WAIT).await,
        500
    );
    assert_eq!(druid::running_task_ids(&druid.url(), &ds).await.len(), 1);
    let text = pipelines.metrics().encode();
    assert!(
        text.contains(&format!(
            "tranquility_tasks_created_total{{dataSource=\"{ds}\"}} 1"
        )),
        "{text}"
    );
    pipelines.close().await;
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_hold_the_data_and_one_lost_replica_loses_nothing() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let ds = unique_name("core-replicas");
    let cfg = config(
        &ds,
        "hour",
        &[
            ("druidBeam.taskLocator", "overlord"),
            ("task.replicants", "2"),
        ],
    );
    let pipelines = local_pipelines(&cfg, &druid.url());
    let pipeline = pipelines.get(&ds).unwrap();
    let now = now_millis();
    assert_all_sent(&pipeline.send_all(events(100, now, "before")).await);
    let tasks = druid::running_task_ids(&druid.url(), &ds).await;
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    // A query reads one copy of a replicated segment.
    assert_eq!(
        druid::wait_for_count(&druid.url(), &ds, "count", 100, WAIT).await,
        100
    );

    // Kill one replica: later events still go through the other.
    let shutdown = reqwest::Client::new()
        .post(format!(
            "{}/druid/indexer/v1/task/{}/shutdown",
            druid.url(),
            tasks[0]
        ))
        .send()
        .await
        .unwrap();
    assert!(shutdown.status().is_success());
    let outcomes = pipeline.send_all(events(100, now, "after")).await;
    assert_all_sent(&outcomes);
    assert_eq!(
        druid::running_task_ids(&druid.url(), &ds).await,
        [tasks[1].clone()]
    );
    assert_eq!(
        druid::wait_for_count(&druid.url(), &ds, "count", 200, WAIT).await,
        200
    );
    let text = pipelines.metrics().encode();
    assert!(
        text.contains(&format!(
            "tranquility_tasks_active{{dataSource=\"{ds}\"}} 1"
        )),
        "{text}"
    );
    pipelines.close().await;
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_gone_drops_as_defunct_not_silently() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let ds = unique_name("core-defunct");
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
    let now = now_millis();
    assert_all_sent(&pipeline.send_all(events(10, now, "x")).await);
    let tasks = druid::running_task_ids(&druid.url(), &ds).await;
    reqwest::Client::new()
        .post(format!(
            "{}/druid/indexer/v1/task/{}/shutdown",
            druid.url(),
            tasks[0]
        ))
        .send()
        .await
        .unwrap();
    let outcomes = pipeline.send_all(events(5, now, "y")).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Dropped(DropReason::BeamDefunct))),
        "{outcomes:?}"
    );
    // The interval is closed for good: no second set of tasks for it.
    let outcomes = pipeline.send_all(events(5, now, "z")).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Dropped(DropReason::IntervalClosed))),
        "{outcomes:?}"
    );
    assert!(druid::running_task_ids(&druid.url(), &ds).await.is_empty());
    let tally = pipeline.metrics().snapshot();
    assert!(tally.is_balanced(), "{tally:?}");
    assert_eq!(tally.dropped(DropReason::BeamDefunct), 5);
    assert_eq!(tally.dropped(DropReason::IntervalClosed), 5);
    pipelines.close().await;
    druid.shutdown().await;
}

/// ZooKeeper-coordinated pipelines of a separate "process": own ZooKeeper sessions.
fn zk_pipelines(cfg: &TranquilityConfig) -> Pipelines {
    Pipelines::builder()
        .metrics(Metrics::new())
        .build(cfg)
        .expect("pipelines")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_partitions_times_replicants_tasks_through_zookeeper() {
    let zk = ZooKeeper::start();
    let druid = DruidLocal::start(DruidLocalConfig {
        zk: Some(zk.connect_string()),
        ..DruidLocalConfig::ephemeral()
    })
    .await
    .unwrap();
    let ds = unique_name("core-zk");
    // Overlord and receivers found through ZooKeeper discovery, beams shared through ZooKeeper.
    let cfg = config(
        &ds,
        "hour",
        &[
            ("zookeeper.connect", &zk.connect_string()),
            ("task.partitions", "2"),
            ("task.replicants", "2"),
        ],
    );
    let instances: Vec<Pipelines> = (0..3).map(|_| zk_pipelines(&cfg)).collect();
    let now = now_millis();
    let sends = instances.iter().enumerate().map(|(i, p)| {
        let pipeline = p.get(&ds).unwrap().clone();
        let raws = (0..300)
            .map(|j| {
                Bytes::from(json!({"timestamp": now, "page": format!("p{i}-{j}")}).to_string())
            })
            .collect();
        async move { pipeline.send_all(raws).await }
    });
    for outcomes in futures::future::join_all(sends).await {
        assert_all_sent(&outcomes);
    }
    let tasks = druid::running_task_ids(&druid.url(), &ds).await;
    assert_eq!(
        tasks.len(),
        4,
        "exactly partitions x replicants tasks: {tasks:?}"
    );
    assert_eq!(
        druid::wait_for_count(&druid.url(), &ds, "count", 900, WAIT).await,
        900
    );
    for p in &instances {
        let tally = p.get(&ds).unwrap().metrics().snapshot();
        assert_eq!((tally.received, tally.sent), (300, 300));
    }
    for p in &instances {
        p.close().await;
    }
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_restart_mid_stream_loses_nothing_and_creates_no_second_set() {
    let mut zk = ZooKeeper::start();
    let druid = DruidLocal::start(DruidLocalConfig {
        zk: Some(zk.connect_string()),
        ..DruidLocalConfig::ephemeral()
    })
    .await
    .unwrap();
    let ds = unique_name("core-zk-restart");
    // MINUTE segments, so later batches need new buckets (and so ZooKeeper) after the restart.
    let cfg = config(
        &ds,
        "minute",
        &[
            ("zookeeper.connect", &zk.connect_string()),
            ("druidBeam.taskLocator", "overlord"),
        ],
    );
    let a = zk_pipelines(&cfg);
    let b = zk_pipelines(&cfg);
    let now = now_millis();
    let minute = 60_000;
    assert_all_sent(
        &a.get(&ds)
            .unwrap()
            .send_all(events(50, now - 3 * minute, "1"))
            .await,
    );

    zk.restart();
    // Both instances: one old bucket (cached or in the metadata) and one new bucket each.
    for (p, tag) in [(&a, "2"), (&b, "3")] {
        let pipeline = p.get(&ds).unwrap();
        let mut raws = events(50, now - 3 * minute, tag);
        raws.extend(events(50, now - 2 * minute, tag));
        assert_all_sent(&pipeline.send_all(raws).await);
    }
    let tasks = druid::running_task_ids(&druid.url(), &ds).await;
    assert_eq!(
        tasks.len(),
        2,
        "one task per bucket, never a second set: {tasks:?}"
    );
    assert_eq!(
        druid::wait_for_count(&druid.url(), &ds, "count", 250, WAIT).await,
        250
    );
    a.close().await;
    b.close().await;
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_acknowledgement_is_retried_without_double_counting() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let proxy = integration_tests::DruidProxy::start(([127, 0, 0, 1], druid.port()).into())
        .await
        .expect("proxy starts");
    let ds = unique_name("core-lost-ack");
    let cfg = config(
        &ds,
        "hour",
        &[
            ("druidBeam.taskLocator", "overlord"),
            ("druidBeam.firehoseChunkSize", "10"),
        ],
    );
    let pipelines = local_pipelines(&cfg, &proxy.url());
    let pipeline = pipelines.get(&ds).unwrap();
    let now = now_millis();
    assert_all_sent(&pipeline.send_all(events(10, now, "warm-up")).await);
    // The next three chunks reach the task, but the client hears 500s and retries them.
    proxy.lose_next_acks(3);
    assert_all_sent(&pipeline.send_all(events(50, now, "lossy")).await);
    assert_eq!(proxy.lost(), 3);
    assert!(proxy.pushes() >= 1 + 5 + 3, "pushes: {}", proxy.pushes());
    assert_eq!(
        druid::wait_for_count(&druid.url(), &ds, "count", 60, WAIT).await,
        60
    );
    // Nothing more arrives later: every retried chunk was skipped as a duplicate.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(druid::count(&druid.url(), &ds, "count").await, 60);
    pipelines.close().await;
    druid.shutdown().await;
}

/// The dimensions a task was created with, from the Overlord's stored spec.
async fn task_dimensions(druid_url: &str, task: &str) -> serde_json::Value {
    let payload: serde_json::Value =
        reqwest::get(format!("{druid_url}/druid/indexer/v1/task/{task}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    payload
        .pointer("/payload/spec/dataSchema/parser/parseSpec/dimensionsSpec/dimensions")
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_schema_applies_from_the_next_interval() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let ds = unique_name("core-rollover");
    let coordinator = Arc::new(LocalCoordinator::new());
    let with_dims = |dims: serde_json::Value| {
        let mut cfg = serde_json::to_value(
            config(&ds, "minute", &[("druidBeam.taskLocator", "overlord")]).data_sources()[0]
                .spec
                .clone(),
        )
        .unwrap();
        cfg["dataSchema"]["parser"]["parseSpec"]["dimensionsSpec"]["dimensions"] = dims;
        let text = json!({"dataSources": [{"spec": cfg}], "properties": {"druidBeam.taskLocator": "overlord"}});
        TranquilityConfig::from_str(&text.to_string(), "rollover.json").unwrap()
    };
    let options = || {
        Pipelines::builder()
            .coordinator(coordinator.clone())
            .overlord_url(druid.url())
    };
    let now = now_millis();
    let minute = 60_000;
    let v1 = options().build(&with_dims(json!(["page"]))).unwrap();
    assert_all_sent(
        &v1.get(&ds)
            .unwrap()
            .send_all(events(5, now - 2 * minute, "v1"))
            .await,
    );
    let first = druid::running_task_ids(&druid.url(), &ds).await;
    assert_eq!(first.len(), 1);

    // A restart with a new dimension: the open interval keeps its task, the next one gets the new schema.
    v1.close().await;
    let v2 = options().build(&with_dims(json!(["page", "tag"]))).unwrap();
    let pipeline = v2.get(&ds).unwrap();
    assert_all_sent(
        &pipeline
            .send_all(events(5, now - 2 * minute, "v2-old"))
            .await,
    );
    assert_all_sent(&pipeline.send_all(events(5, now - minute, "v2-new")).await);
    let tasks = druid::running_task_ids(&druid.url(), &ds).await;
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    let second: Vec<_> = tasks.iter().filter(|t| !first.contains(t)).collect();
    assert_eq!(second.len(), 1);
    assert_eq!(
        task_dimensions(&druid.url(), &first[0]).await,
        json!(["page"])
    );
    assert_eq!(
        task_dimensions(&druid.url(), second[0]).await,
        json!(["page", "tag"])
    );
    assert_eq!(
        druid::wait_for_count(&druid.url(), &ds, "count", 15, WAIT).await,
        15
    );
    v2.close().await;
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_without_shared_metadata_adopts_the_running_task() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let ds = unique_name("core-adopt");
    let cfg = config(&ds, "hour", &[("druidBeam.taskLocator", "overlord")]);
    let now = now_millis();
    // Two "processes", each with its own in-process coordinator: the second knows nothing of
    // the first's task, asks for the same task id, and takes the running task over.
    for run in ["first", "second"] {
        let pipelines = local_pipelines(&cfg, &druid.url());
        assert_all_sent(
            &pipelines
                .get(&ds)
                .unwrap()
                .send_all(events(20, now, run))
                .await,
        );
        pipelines.close().await;
    }
    assert_eq!(druid::running_task_ids(&druid.url(), &ds).await.len(), 1);
    assert_eq!(
        druid::wait_for_count(&druid.url(), &ds, "count", 40, WAIT).await,
        40
    );
    druid.shutdown().await;
}
