//! Tranquility Server on a real Druid 31+ (no `index_realtime` there): the original
//! `server.json.example`, with `druid.ingestion=auto`, picks its backend from the Overlord's
//! version, and the events posted become rows the Broker counts.
//!
//! - batch: no Kafka address, so micro-batches of `index_parallel` appends; two instances
//!   posting into one interval at once both succeed (concurrent locks).
//! - supervisor: a Kafka address, so a topic and a Kafka supervisor; a second instance on the
//!   same file shares them; a new dimension updates the supervisor once; restarts of
//!   Tranquility and of the broker lose no acknowledged event.
//!
//! Every response, metric and count keeps `received = sent + dropped + failed`. Runs only when
//! the release is installed (`scripts/real-druid.sh install 33.0.0`). The same scenarios run
//! on druid-local in `backends_local.rs`.

use std::time::{Duration, Instant};

use integration_tests::backends::{overlord_get, supervisor_posts, Example, Running};
use integration_tests::real_druid::{RealDruid, MODERN_RELEASE};
use integration_tests::Tansu;
use serde_json::json;
use test_support::peer_data_or_skip;

fn now_millis() -> i64 {
    integration_tests::setup::now_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_backend_two_instances_append_into_one_interval() {
    let path = peer_data_or_skip!("tranquility-configs/server.json.example");
    let Some(druid) = RealDruid::start_or_skip(
        MODERN_RELEASE,
        "batch_backend_two_instances_append_into_one_interval",
    ) else {
        return;
    };
    let example = Example::original(&path);
    // The Overlord is found through ZooKeeper discovery, as the file says; only where
    // ZooKeeper is, and a short batch period, change.
    let config = example.config(&[
        ("zookeeper.connect", druid.zookeeper_connect()),
        ("druid.ingestion.batch.periodMillis", "2000".into()),
    ]);
    let a = Running::start(&config).await;
    let b = Running::start(&config).await;
    let now = now_millis();
    let (ea, eb) = (example.events(30, now, "a"), example.events(25, now, "b"));
    let (ra, rb) = tokio::join!(a.post("foo", &ea), b.post("foo", &eb));
    assert_eq!(
        (ra["received"].as_u64(), ra["sent"].as_u64()),
        (Some(30), Some(30)),
        "{ra}"
    );
    assert_eq!(
        (rb["received"].as_u64(), rb["sent"].as_u64()),
        (Some(25), Some(25)),
        "{rb}"
    );
    let health = a.health().await;
    assert_eq!(health["backends"], json!({"foo": "batch"}), "{health}");

    // Two hours ago is outside the window: dropped with its reason, never submitted.
    let late = a
        .post("foo", &example.events(2, now - 2 * 3_600_000, "late"))
        .await;
    assert_eq!(late["dropped"], 2, "{late}");
    assert_eq!(late["droppedReasons"]["outside_window"], 2, "{late}");

    let sums = example
        .wait_for_rows(druid.broker_url(), 55, Duration::from_secs(240))
        .await;
    assert_eq!(sums, (55, 82.5));
    assert_eq!(a.counts("foo").await, [32, 30, 2, 0]);
    assert_eq!(b.counts("foo").await, [25, 25, 0, 0]);
    for server in [a, b] {
        for report in server.stop().await {
            assert_eq!(report.pending, 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_backend_is_shared_updated_once_and_survives_restarts() {
    let path = peer_data_or_skip!("tranquility-configs/server.json.example");
    let Some(druid) = RealDruid::start_or_skip(
        MODERN_RELEASE,
        "supervisor_backend_is_shared_updated_once_and_survives_restarts",
    ) else {
        return;
    };
    let example = Example::original(&path);
    let overlord = druid.overlord_url();
    let mut kafka = Tansu::start_persistent().expect("tansu starts");
    let props = [
        ("zookeeper.connect", druid.zookeeper_connect()),
        (
            "druid.ingestion.kafka.bootstrap.servers",
            kafka.bootstrap_servers(),
        ),
    ];
    let config = example.config(&props);

    // Two instances on the same file: one topic, one supervisor, posted once.
    let a = Running::start(&config).await;
    let b = Running::start(&config).await;
    let now = now_millis();
    let (ea, eb) = (example.events(20, now, "a"), example.events(15, now, "b"));
    let (ra, rb) = tokio::join!(a.post("foo", &ea), b.post("foo", &eb));
    assert_eq!(ra["sent"], 20, "{ra}");
    assert_eq!(rb["sent"], 15, "{rb}");
    let mut acknowledged = 35;
    let health = a.health().await;
    assert_eq!(health["backends"], json!({"foo": "supervisor"}), "{health}");
    assert_eq!(overlord_get(overlord, "/supervisor").await, json!(["foo"]));
    assert_eq!(supervisor_posts(overlord, "foo").await, 1);
    let sums = example
        .wait_for_rows(druid.broker_url(), acknowledged, Duration::from_secs(240))
        .await;
    assert_eq!(sums, (acknowledged, 1.5 * acknowledged as f64));

    // Tranquility restarts: the new instance finds the supervisor current and posts nothing.
    a.stop().await;
    let a = Running::start(&config).await;
    let sent = a.post("foo", &example.events(10, now_millis(), "a2")).await;
    assert_eq!(sent["sent"], 10);
    acknowledged += 10;
    assert_eq!(supervisor_posts(overlord, "foo").await, 1);

    // A new dimension: two instances with the new spec update the supervisor once.
    let changed = example.config_with(&props, &["dim4"]);
    let c = Running::start(&changed).await;
    let d = Running::start(&changed).await;
    let (ec, ed) = (
        example.events(5, now_millis(), "c"),
        example.events(5, now_millis(), "d"),
    );
    let (rc, rd) = tokio::join!(c.post("foo", &ec), d.post("foo", &ed));
    assert_eq!(
        (rc["sent"].as_u64(), rd["sent"].as_u64()),
        (Some(5), Some(5))
    );
    acknowledged += 10;
    assert_eq!(supervisor_posts(overlord, "foo").await, 2);

    // The broker restarts (keeping its data): producing resumes on the same connection settings.
    kafka.restart().expect("tansu restarts");
    let after = c
        .post("foo", &example.events(7, now_millis(), "after"))
        .await;
    assert_eq!(after["sent"], 7);
    acknowledged += 7;

    let sums = example
        .wait_for_rows(druid.broker_url(), acknowledged, Duration::from_secs(240))
        .await;
    assert_eq!(sums, (acknowledged, 1.5 * acknowledged as f64));
    // Druid's own count of the rows it read, from the supervisor's stats, read every 30 s.
    let deadline = Instant::now() + Duration::from_secs(120);
    while c.druid_rows("foo", "processed").await == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(c.druid_rows("foo", "processed").await > 0);
    let mut total_sent = 0;
    for server in [a, b, c, d] {
        total_sent += server.counts("foo").await[1];
        server.stop().await;
    }
    // The first instance's counts went with it; the rest add up to what Druid holds.
    assert_eq!(total_sent + 20, acknowledged as u64);
}
