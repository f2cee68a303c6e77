//! Tranquility Server on druid-local playing the newest Druid it knows (no `index_realtime`
//! there), with the example server files served unchanged apart from where Druid is (and a
//! Kafka address): the original `server.json.example` (peer data) and the repository's own
//! `examples/configs/server.json`. `druid.ingestion=auto` picks the backend from the
//! Overlord's version, as on a real Druid (`backends_real_druid.rs`).
//!
//! - batch: two instances posting into one interval at once both succeed; restarts of
//!   Tranquility (with events still waiting for their batch) and of druid-local (with a batch
//!   waiting to be submitted) lose nothing, and Druid holds exactly what was acknowledged.
//! - supervisor (tansu): two instances share one topic and one supervisor; a new dimension
//!   updates the supervisor once; restarts of Tranquility, of the broker and of druid-local
//!   lose no acknowledged event.
//! - refusals: a task Druid refuses (over `maxTaskPayloadSize`), an event over the batch byte
//!   cap, a supervisor Druid refuses (400), a topic that cannot be created (broker down):
//!   each event fails with the cause named, and nothing lands in Druid unaccounted.
//!
//! Every response, metric and final report keeps `received = sent + dropped + failed`.

use std::time::{Duration, Instant};

use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::backends::{overlord_get, supervisor_posts, Example, Running};
use integration_tests::modern::tasks_of;
use integration_tests::setup::now_millis;
use integration_tests::{unique_name, Tansu, ZooKeeper};
use serde_json::{json, Value};
use test_support::peer_data_or_skip;

/// The newest Druid release druid-local plays (its 35+ behaviours: `docs/druid-versions.md`).
const PLAYED: &str = "35.0.0";

const WAIT: Duration = Duration::from_secs(90);

/// druid-local playing [`PLAYED`] on a fixed free port, announced in a ZooKeeper of its own as
/// a Druid cluster announces its Overlord, keeping its data in a folder across restarts.
struct Local {
    zookeeper: ZooKeeper,
    config: DruidLocalConfig,
    druid: Option<DruidLocal>,
    _data: tempfile::TempDir,
}

impl Local {
    async fn start(max_task_payload_size: Option<usize>) -> Local {
        let zookeeper = ZooKeeper::start();
        let data = tempfile::tempdir().expect("data dir");
        let mut config = DruidLocalConfig::ephemeral();
        config.druid_version = PLAYED.parse().expect("version");
        config.zk = Some(zookeeper.connect_string());
        config.data_dir = Some(data.path().to_path_buf());
        config.max_task_payload_size = max_task_payload_size;
        let druid = DruidLocal::start(config.clone())
            .await
            .expect("druid-local starts");
        // Restarts come back on the same port, where clients look for it.
        config.bind.set_port(druid.port());
        Local {
            zookeeper,
            config,
            druid: Some(druid),
            _data: data,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.config.bind.port())
    }

    fn zookeeper(&self) -> String {
        self.zookeeper.connect_string()
    }

    /// Where Druid is, in the example's own terms.
    fn location(&self, example: &Example) -> Vec<(&'static str, String)> {
        example.location(&self.zookeeper(), &self.url())
    }

    async fn stop(&mut self) {
        if let Some(druid) = self.druid.take() {
            druid.shutdown().await;
        }
    }

    async fn start_again(&mut self) {
        let druid = DruidLocal::start(self.config.clone())
            .await
            .expect("druid-local starts again on its port and data dir");
        self.druid = Some(druid);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_backend_original_example() {
    let path = peer_data_or_skip!("tranquility-configs/server.json.example");
    batch_backend(Example::original(&path)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_backend_repository_example() {
    batch_backend(Example::repository()).await;
}

/// Two instances append into one interval at once; a Tranquility restart with events still
/// gathering and a druid-local restart with a batch waiting to be submitted lose nothing.
async fn batch_backend(example: Example) {
    let mut druid = Local::start(None).await;
    let ds = example.data_source.as_str();
    let mut props = druid.location(&example);
    props.push(("druid.ingestion.batch.periodMillis", "2000".into()));
    let config = example.config(&props);
    let a = Running::start(&config).await;
    let b = Running::start(&config).await;
    let now = now_millis();
    let (ea, eb) = (example.events(30, now, "a"), example.events(25, now, "b"));
    let (ra, rb) = tokio::join!(a.post(ds, &ea), b.post(ds, &eb));
    assert_eq!(ra["sent"], 30, "{ra}");
    assert_eq!(rb["sent"], 25, "{rb}");
    let health = a.health().await;
    assert_eq!(health["backends"][ds], "batch", "{health}");
    // Each instance submitted its own batch task for the interval; both succeeded.
    let tasks = tasks_of(&druid.url(), ds).await;
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert!(
        tasks.iter().all(|t| t["statusCode"] == "SUCCESS"
            && t["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("tranquility_batch_"))),
        "{tasks:?}"
    );

    // Two hours ago is outside the window: dropped with its reason, never submitted.
    let late = a
        .post(ds, &example.events(2, now - 2 * 3_600_000, "late"))
        .await;
    assert_eq!(late["dropped"], 2, "{late}");
    assert_eq!(late["droppedReasons"]["outside_window"], 2, "{late}");
    assert_eq!(
        example.wait_for_rows(&druid.url(), 55, WAIT).await,
        (55, 82.5)
    );
    assert_eq!(a.counts(ds).await, [32, 30, 2, 0]);
    assert_eq!(b.counts(ds).await, [25, 25, 0, 0]);

    // Tranquility stops while events still gather for their batch: the stop submits the
    // batch and waits for its task, so the final report counts them sent.
    let answer = a
        .post_answer(
            ds,
            "?async=true",
            &example.events(12, now_millis(), "async"),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let reports = a.stop().await;
    let tally = &reports.iter().find(|r| r.name == ds).expect("report").tally;
    assert_eq!((tally.received, tally.sent), (44, 42), "{tally:?}");
    let a = Running::start(&config).await;

    // druid-local stops: a post's batch cannot be submitted until it is back (on the same
    // port and data dir), then goes through.
    druid.stop().await;
    let events = example.events(9, now_millis(), "restart");
    let (answer, ()) = tokio::join!(a.post_answer(ds, "", &events), async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        druid.start_again().await;
    });
    assert_eq!(answer.counts(), [9, 9, 0, 0], "{}", answer.body);

    let expected = 55 + 12 + 9;
    assert_eq!(
        example.wait_for_rows(&druid.url(), expected, WAIT).await,
        (expected, 1.5 * expected as f64)
    );
    assert_eq!(a.counts(ds).await, [9, 9, 0, 0]);
    for server in [a, b] {
        for report in server.stop().await {
            assert_eq!(report.pending, 0, "{report:?}");
        }
    }
    // Nothing arrived twice: the count stays exact once everything stopped.
    assert_eq!(
        example
            .wait_for_rows(&druid.url(), expected + 1, Duration::ZERO)
            .await,
        (expected, 1.5 * expected as f64)
    );
    druid.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_backend_original_example() {
    let path = peer_data_or_skip!("tranquility-configs/server.json.example");
    supervisor_backend(Example::original(&path)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_backend_repository_example() {
    supervisor_backend(Example::repository()).await;
}

/// Two instances share one topic and supervisor, a new dimension updates it once, and
/// restarts of Tranquility, the broker and druid-local lose no acknowledged event.
async fn supervisor_backend(example: Example) {
    let mut druid = Local::start(None).await;
    let ds = example.data_source.as_str();
    let overlord = druid.url();
    let mut kafka = Tansu::start_persistent().expect("tansu starts");
    let mut props = druid.location(&example);
    props.push((
        "druid.ingestion.kafka.bootstrap.servers",
        kafka.bootstrap_servers(),
    ));
    let config = example.config(&props);

    // Two instances on the same file: one topic, one supervisor, posted once.
    let a = Running::start(&config).await;
    let b = Running::start(&config).await;
    let now = now_millis();
    let (ea, eb) = (example.events(20, now, "a"), example.events(15, now, "b"));
    let (ra, rb) = tokio::join!(a.post(ds, &ea), b.post(ds, &eb));
    assert_eq!(ra["sent"], 20, "{ra}");
    assert_eq!(rb["sent"], 15, "{rb}");
    let mut acknowledged = 35;
    let health = a.health().await;
    assert_eq!(health["backends"][ds], "supervisor", "{health}");
    assert_eq!(overlord_get(&overlord, "/supervisor").await, json!([ds]));
    assert_eq!(supervisor_posts(&overlord, ds).await, 1);
    let spec = overlord_get(&overlord, &format!("/supervisor/{ds}")).await;
    assert_eq!(
        spec["spec"]["ioConfig"]["topic"],
        format!("tranquility-{ds}"),
        "{spec}"
    );
    assert_eq!(
        example.wait_for_rows(&overlord, acknowledged, WAIT).await,
        (acknowledged, 1.5 * acknowledged as f64)
    );

    // Tranquility restarts: the new instance finds the supervisor current and posts nothing.
    a.stop().await;
    let a = Running::start(&config).await;
    let sent = a.post(ds, &example.events(10, now_millis(), "a2")).await;
    assert_eq!(sent["sent"], 10);
    acknowledged += 10;
    assert_eq!(supervisor_posts(&overlord, ds).await, 1);

    // A new dimension: two instances with the new spec update the supervisor once.
    let changed = example.config_with(&props, &["added_dim"]);
    let c = Running::start(&changed).await;
    let d = Running::start(&changed).await;
    let (ec, ed) = (
        example.events(5, now_millis(), "c"),
        example.events(5, now_millis(), "d"),
    );
    let (rc, rd) = tokio::join!(c.post(ds, &ec), d.post(ds, &ed));
    assert_eq!(
        (rc["sent"].as_u64(), rd["sent"].as_u64()),
        (Some(5), Some(5))
    );
    acknowledged += 10;
    assert_eq!(supervisor_posts(&overlord, ds).await, 2);
    let spec = overlord_get(&overlord, &format!("/supervisor/{ds}")).await;
    let dims = spec["spec"]["dataSchema"]["dimensionsSpec"]["dimensions"].to_string();
    assert!(dims.contains("added_dim"), "{dims}");

    // The broker restarts (keeping its data): producing resumes on the same settings.
    kafka.restart().expect("tansu restarts");
    let after = c.post(ds, &example.events(7, now_millis(), "broker")).await;
    assert_eq!(after["sent"], 7);
    acknowledged += 7;

    // druid-local stops: the broker still acknowledges, and Druid reads the events once it is
    // back (the supervisor resumes from its stored spec and offsets).
    druid.stop().await;
    let down = c.post(ds, &example.events(6, now_millis(), "druid")).await;
    assert_eq!(down["sent"], 6);
    acknowledged += 6;
    druid.start_again().await;
    assert_eq!(
        example.wait_for_rows(&overlord, acknowledged, WAIT).await,
        (acknowledged, 1.5 * acknowledged as f64)
    );
    assert_eq!(supervisor_posts(&overlord, ds).await, 2);
    // Druid's own count of the rows it read, from the supervisor's stats, read every 30 s.
    let deadline = Instant::now() + Duration::from_secs(120);
    while c.druid_rows(ds, "processed").await == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(c.druid_rows(ds, "processed").await > 0);
    let mut total_sent = 0;
    for server in [a, b, c, d] {
        total_sent += server.counts(ds).await[1];
        server.stop().await;
    }
    // The first instance's counts went with it; the rest add up to what Druid holds.
    assert_eq!(total_sent + 20, acknowledged as u64);
    assert_eq!(
        example
            .wait_for_rows(&overlord, acknowledged + 1, Duration::ZERO)
            .await,
        (acknowledged, 1.5 * acknowledged as f64),
        "nothing read twice"
    );
    druid.stop().await;
}

/// `n` events of the schemaless test config, each about `bytes` long.
fn sized_events(n: usize, bytes: usize, tag: &str) -> Vec<Value> {
    let now = now_millis();
    (0..n)
        .map(|i| json!({"timestamp": now, "tag": tag, "i": i, "pad": "x".repeat(bytes)}))
        .collect()
}

/// A server over the schemaless config of `ds` with `props`.
async fn schemaless(ds: &str, props: &[(&str, &str)]) -> Running {
    Running::start(&integration_tests::setup::config(ds, "hour", props)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_their_cause_and_lose_nothing() {
    // A payload cap on druid-local: a batch of 60 events of 200 bytes is over it, 5 are not.
    let mut druid = Local::start(Some(8 * 1024)).await;
    let url = druid.url();
    let zk = druid.zookeeper();
    let base = [
        ("druid.overlord.url", url.as_str()),
        ("zookeeper.connect", zk.as_str()),
        ("druid.ingestion.batch.periodMillis", "300"),
    ];

    // A task Druid refuses: every event of the batch fails with Druid's reason, not retried.
    let ds = unique_name("refused").replace('-', "_");
    let server = schemaless(&ds, &base).await;
    let answer = server
        .post_answer(&ds, "", &sized_events(60, 200, "big"))
        .await;
    assert_eq!(answer.status, 500, "{}", answer.body);
    assert_eq!(answer.counts(), [60, 0, 0, 60]);
    for part in [
        "Druid refused batch task tranquility_batch_",
        "HTTP 400",
        "maxTaskPayloadSize",
    ] {
        assert!(answer.body.contains(part), "{part}: {}", answer.body);
    }
    let small = server.post(&ds, &sized_events(5, 200, "small")).await;
    assert_eq!(small["sent"], 5, "{small}");
    assert_eq!(server.counts(&ds).await, [65, 5, 0, 60]);
    let rows = integration_tests::backends::wait_for_rows(&url, &ds, "count", 5, WAIT).await;
    assert_eq!(rows.0, 5, "only the accepted batch's rows");
    server.stop().await;

    // An event over the batch byte cap fails on its own, naming the cap; the others go.
    let ds = unique_name("cap").replace('-', "_");
    let mut props = base.to_vec();
    props.push(("druid.ingestion.batch.maxBytes", "1000"));
    let server = schemaless(&ds, &props).await;
    let mut events = sized_events(4, 50, "fits");
    events.extend(sized_events(1, 3000, "too-big"));
    let answer = server.post_answer(&ds, "", &events).await;
    assert_eq!(answer.status, 500, "{}", answer.body);
    assert_eq!(answer.counts(), [5, 4, 0, 1]);
    assert!(answer.body.contains("maxBytes"), "{}", answer.body);
    let rows = integration_tests::backends::wait_for_rows(&url, &ds, "count", 4, WAIT).await;
    assert_eq!(rows.0, 4);
    assert_eq!(server.counts(&ds).await, [5, 4, 0, 1]);
    server.stop().await;

    // A supervisor Druid refuses (400: a dataSource name Druid does not take): the events
    // fail with Druid's reason.
    let mut broker = Tansu::start_persistent().expect("tansu starts");
    let servers = broker.bootstrap_servers();
    let ds = format!(".{}", unique_name("hidden"));
    let mut props = base.to_vec();
    props.push(("druid.ingestion.kafka.bootstrap.servers", servers.as_str()));
    let server = schemaless(&ds, &props).await;
    let answer = server.post_answer(&ds, "", &sized_events(3, 10, "x")).await;
    assert_eq!(answer.status, 500, "{}", answer.body);
    assert_eq!(answer.counts(), [3, 0, 0, 3]);
    assert!(
        answer.body.contains("HTTP 400") && answer.body.contains("cannot start with '.'"),
        "{}",
        answer.body
    );
    assert_eq!(overlord_get(&url, "/supervisor").await, json!([]));
    assert_eq!(server.counts(&ds).await, [3, 0, 0, 3]);
    server.stop().await;

    // A topic that cannot be created (the broker is down): the events fail saying so, and
    // the same events posted again once it is back are sent, and read once.
    broker.stop();
    let ds = unique_name("nobroker").replace('-', "_");
    let mut props = base.to_vec();
    props.push(("druid.ingestion.kafka.bootstrap.servers", servers.as_str()));
    props.push(("druid.ingestion.kafka.producer.socket.timeout.ms", "2000"));
    let server = schemaless(&ds, &props).await;
    let events = sized_events(4, 10, "retry");
    let answer = server.post_answer(&ds, "", &events).await;
    assert_eq!(answer.status, 500, "{}", answer.body);
    assert_eq!(answer.counts(), [4, 0, 0, 4]);
    assert!(
        answer
            .body
            .contains(&format!("cannot create Kafka topic tranquility-{ds}"))
            && answer.body.contains(&servers),
        "{}",
        answer.body
    );
    broker.restart().expect("tansu restarts");
    let again = server.post(&ds, &events).await;
    assert_eq!(again["sent"], 4, "{again}");
    let rows = integration_tests::backends::wait_for_rows(&url, &ds, "count", 4, WAIT).await;
    assert_eq!(rows.0, 4);
    assert_eq!(server.counts(&ds).await, [8, 4, 0, 4]);
    server.stop().await;
    druid.stop().await;
}
