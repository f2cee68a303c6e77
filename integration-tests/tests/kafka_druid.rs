//! Kafka topics into druid-local through the connector and the core pipelines: messages
//! produced by an independent client (Python confluent-kafka) into tansu, counted in Druid with
//! native timeseries queries, committed offsets read back by that client.
//!
//! Test plumbing, not part of any config file under test: one process without ZooKeeper, so
//! the pipelines use the in-process coordinator, the Overlord URL of druid-local, and find
//! tasks through the Overlord (`druidBeam.taskLocator=overlord`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::DruidProxy;
use integration_tests::{unique_name, Tansu};
use kafka_common::{committed, create_topic, init_logs, produce, wait_for};
use serde_json::{json, Value};
use tranquility::coord::LocalCoordinator;
use tranquility::metrics::Metrics;
use tranquility::pipeline::Pipelines;
use tranquility::spec::TranquilityConfig;
use tranquility_kafka::{KafkaConfig, KafkaConnector, PipelineSinks};

mod kafka_common;

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Production sinks for one process: local coordination, druid-local's Overlord.
fn sinks(druid: &DruidLocal, metrics: &Arc<Metrics>) -> Arc<PipelineSinks> {
    sinks_with(druid, metrics, Arc::new(LocalCoordinator::new()))
}

/// Production sinks sharing `coordinator` (a restarted process finds its beams again, as it
/// would in ZooKeeper).
fn sinks_with(
    druid: &DruidLocal,
    metrics: &Arc<Metrics>,
    coordinator: Arc<LocalCoordinator>,
) -> Arc<PipelineSinks> {
    Arc::new(PipelineSinks::new(
        Pipelines::builder()
            .metrics(metrics.clone())
            .coordinator(coordinator)
            .overlord_url(druid.url()),
    ))
}

/// The number of events ingested into `data_source` (the sum of the `count` metric `metric`),
/// with an optional filter.
async fn druid_count(
    http: &reqwest::Client,
    druid: &DruidLocal,
    data_source: &str,
    metric: &str,
    filter: Option<Value>,
) -> u64 {
    let mut query = json!({
        "queryType": "timeseries",
        "dataSource": data_source,
        "intervals": ["2000-01-01/2100-01-01"],
        "granularity": "all",
        "aggregations": [{"type": "longSum", "name": "events", "fieldName": metric}],
    });
    if let Some(f) = filter {
        query["filter"] = f;
    }
    let response = http
        .post(format!("{}/druid/v2", druid.url()))
        .json(&query)
        .send()
        .await
        .expect("query druid-local");
    let status = response.status();
    let body: Value = response.json().await.expect("query answer is JSON");
    assert!(status.is_success(), "query failed: {status} {body}");
    body.get(0)
        .and_then(|r| r["result"]["events"].as_u64())
        .unwrap_or(0)
}

/// Waits until Druid counts exactly `expected` events, then checks no more arrive.
async fn expect_count(
    http: &reqwest::Client,
    druid: &DruidLocal,
    data_source: &str,
    metric: &str,
    filter: Option<Value>,
    expected: u64,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = druid_count(http, druid, data_source, metric, filter.clone()).await;
        assert!(
            n <= expected,
            "{data_source}: {n} events in Druid, expected {expected}"
        );
        if n == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{data_source}: {n} of {expected} events in Druid after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let n = druid_count(http, druid, data_source, metric, filter).await;
    assert_eq!(n, expected, "{data_source}: events kept arriving");
}

/// The event count of `data_source` once two reads a second apart agree.
async fn stable_count(http: &reqwest::Client, druid: &DruidLocal, data_source: &str) -> u64 {
    let mut last = druid_count(http, druid, data_source, "count", None).await;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let n = druid_count(http, druid, data_source, "count", None).await;
        if n == last {
            return n;
        }
        last = n;
    }
}

/// Wikipedia-like events with `n` in `from..to`, timestamped now.
fn events(from: u64, to: u64) -> Vec<String> {
    let ts = now_millis();
    (from..to)
        .map(|n| format!(r#"{{"timestamp": {ts}, "page": "p{n}", "n": {n}}}"#))
        .collect()
}

/// A kafka.json whose one dataSource takes every `events-*` topic, named after the topic.
fn topic_as_data_source_config(broker: &Tansu, group: &str, commit_ms: u64) -> KafkaConfig {
    let file = json!({
        "dataSources": [{
            "spec": {
                "dataSchema": {
                    "dataSource": "events",
                    "parser": {"type": "string", "parseSpec": {"format": "json",
                        "timestampSpec": {"column": "timestamp", "format": "auto"},
                        "dimensionsSpec": {"dimensions": ["page"]}}},
                    "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"},
                    "metricsSpec": [{"type": "count", "name": "count"}]
                },
                "tuningConfig": {"type": "realtime", "windowPeriod": "PT10M"}
            },
            "properties": {"topicPattern": "events-.*", "useTopicAsDataSource": "true"}
        }],
        "properties": {
            "kafka.bootstrap.servers": broker.bootstrap_servers(),
            "kafka.group.id": group,
            "kafka.auto.offset.reset": "earliest",
            "consumer.numThreads": "1",
            "commit.periodMillis": commit_ms.to_string(),
            "druidBeam.taskLocator": "overlord",
            // A member that left uncleanly is evicted soon, so the next one gets its partitions
            // (tansu keeps handing a gone member partitions until its session times out).
            "kafka.session.timeout.ms": "6000",
            "kafka.heartbeat.interval.ms": "1000",
        }
    });
    let loaded = TranquilityConfig::from_value(file, "kafka.json").expect("config loads");
    KafkaConfig::from_config(&loaded).expect("kafka config")
}

fn sum_series(text: &str, name: &str, topic: &str) -> u64 {
    let prefix = format!("{name}{{topic=\"{topic}\",");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_become_data_sources_and_every_message_is_one_druid_row() {
    init_logs();
    let broker = Tansu::start().expect("tansu starts");
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .expect("druid-local starts");
    let http = reqwest::Client::new();
    let suffix = unique_name("t");
    let (clicks, views) = (
        format!("events-clicks-{suffix}"),
        format!("events-views-{suffix}"),
    );
    create_topic(&broker, &clicks, 2);
    create_topic(&broker, &views, 1);
    produce(&broker, &clicks, 2, &events(0, 1500));
    produce(&broker, &views, 1, &events(0, 400));

    let metrics = Metrics::new();
    let sinks = sinks(&druid, &metrics);
    let group = unique_name("group");
    let connector = KafkaConnector::start(
        topic_as_data_source_config(&broker, &group, 300),
        sinks.clone(),
        &metrics,
    )
    .expect("connector starts");
    expect_count(&http, &druid, &clicks, "count", None, 1500).await;
    expect_count(&http, &druid, &views, "count", None, 400).await;
    connector.stop().await.expect("clean stop");

    assert_eq!(committed(&broker, &group, &clicks, 2), vec![750, 750]);
    assert_eq!(committed(&broker, &group, &views, 1), vec![400]);
    let mut names: Vec<String> = sinks
        .pipelines()
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    names.sort();
    assert_eq!(names, vec![clicks.clone(), views.clone()]);
    for p in sinks.pipelines() {
        let tally = p.metrics().snapshot();
        assert!(tally.is_balanced(), "{}: {tally:?}", p.name());
        assert_eq!(tally.sent, tally.received, "{}: {tally:?}", p.name());
    }
    let text = metrics.encode();
    assert_eq!(
        sum_series(&text, "tranquility_kafka_messages_sent_total", &clicks),
        1500
    );
    sinks.close().await;
    druid.shutdown().await;
}

/// The shipped example file, unchanged but for `kafka.bootstrap.servers` (and the test
/// plumbing above), with messages matching its `wikipedia` schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_kafka_json_runs_with_only_the_brokers_added() {
    let example = test_support::peer_data_or_skip!("tranquility-configs/kafka.json.example");
    init_logs();
    let broker = Tansu::start().expect("tansu starts");
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .expect("druid-local starts");
    let http = reqwest::Client::new();
    let text = std::fs::read_to_string(example).expect("read kafka.json.example");
    let mut file: Value = serde_json::from_str(&text).expect("example is JSON");
    file["properties"]["kafka.bootstrap.servers"] = broker.bootstrap_servers().into();
    // Test plumbing (see the module docs).
    file["properties"]["druidBeam.taskLocator"] = "overlord".into();
    let loaded = TranquilityConfig::from_value(file, "kafka.json.example").expect("loads");
    let config = KafkaConfig::from_config(&loaded).expect("kafka config");
    let topic = "wikipedia";
    create_topic(&broker, topic, 2);

    let metrics = Metrics::new();
    let sinks = sinks(&druid, &metrics);
    let connector = KafkaConnector::start(config, sinks.clone(), &metrics).expect("starts");
    // Two members (consumer.numThreads): wait for the group to settle, one partition each, so
    // no rebalance happens while messages are in flight.
    wait_for("one partition per member", Duration::from_secs(60), || {
        let text = metrics.encode();
        (0..2).all(|m| {
            text.contains(&format!(
                "tranquility_kafka_assigned_partitions{{member=\"{m}\"}} 1\n"
            ))
        })
    })
    .await;

    // The file leaves `auto.offset.reset` at librdkafka's `latest`: messages produced before
    // the group has a position are skipped. Warm-up messages go in until one arrives; after
    // that every message counts.
    let ts = now_millis();
    let warm_up = format!(
        r#"{{"timestamp": {ts}, "page": "warm-up", "language": "en", "added": 1, "deleted": 0, "delta": 1}}"#
    );
    let warmed = |text: &str| sum_series(text, "tranquility_kafka_messages_sent_total", topic) > 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut warm_ups = 0u64;
    while !warmed(&metrics.encode()) {
        assert!(
            Instant::now() < deadline,
            "no warm-up message arrived in 60 s"
        );
        produce(&broker, topic, 2, std::slice::from_ref(&warm_up));
        warm_ups += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    const N: u64 = 2000;
    let lines: Vec<String> = (0..N)
        .map(|n| {
            format!(
                r#"{{"timestamp": {ts}, "page": "Page_{n}", "language": "en", "user": "u{u}", "unpatrolled": "false", "newPage": "false", "robot": "false", "anonymous": "false", "namespace": "article", "continent": "Europe", "country": "France", "region": "IDF", "city": "Paris", "added": {n}, "deleted": 1, "delta": {d}}}"#,
                u = n % 17,
                d = n as i64 - 1
            )
        })
        .collect();
    produce(&broker, topic, 2, &lines);
    let not_warm_up = json!({"type": "not", "field": {"type": "selector", "dimension": "page", "value": "warm-up"}});
    expect_count(
        &http,
        &druid,
        "wikipedia",
        "count",
        Some(not_warm_up.clone()),
        N,
    )
    .await;
    connector.stop().await.expect("clean stop");

    let added = {
        let query = json!({"queryType": "timeseries", "dataSource": "wikipedia",
            "intervals": ["2000-01-01/2100-01-01"], "granularity": "all", "filter": not_warm_up,
            "aggregations": [{"type": "doubleSum", "name": "added", "fieldName": "added"}]});
        let v: Value = http
            .post(format!("{}/druid/v2", druid.url()))
            .json(&query)
            .send()
            .await
            .expect("query")
            .json()
            .await
            .expect("JSON");
        v[0]["result"]["added"].as_f64().unwrap_or(-1.0)
    };
    assert_eq!(
        added,
        (N * (N - 1) / 2) as f64,
        "the metrics are the events'"
    );
    let all = sum_series(
        &metrics.encode(),
        "tranquility_kafka_messages_consumed_total",
        topic,
    );
    let offsets = committed(&broker, "tranquility-kafka", topic, 2);
    // Warm-ups produced before the group had a position were skipped (`latest`), not
    // consumed; the commit point still passes every message in the topic.
    assert!(
        all > N && all <= N + warm_ups,
        "consumed {all} of {N} + {warm_ups} warm-ups"
    );
    assert_eq!(
        offsets.iter().sum::<i64>() as u64,
        N + warm_ups,
        "every message in the topic is behind the commit point ({offsets:?})"
    );
    sinks.close().await;
    druid.shutdown().await;
}

/// Killed mid-stream, restarted: the restart reads the uncommitted tail again, and the task
/// skips what it already has (each partition pushes under its own producer id, with offsets as
/// sequence numbers): every message is in Druid exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_restart_ingests_every_message_exactly_once() {
    init_logs();
    let broker = Tansu::start().expect("tansu starts");
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .expect("druid-local starts");
    let http = reqwest::Client::new();
    const N: u64 = 10_000;

    // First run: killed a third of the way through (no flush, no final commit), with sent
    // messages beyond the last commit. Beams live on in the coordinator (ZooKeeper in
    // production) across the restart. On a busy machine a commit can land between seeing the
    // uncommitted tail and the kill, leaving no tail: then the run is repeated on a new topic
    // (at most three times), since the point is what a restart does with a tail.
    let mut attempt = 0;
    let (topic, group, config, coordinator, killed) = loop {
        attempt += 1;
        let topic = format!("events-{}", unique_name("restart"));
        create_topic(&broker, &topic, 2);
        produce(&broker, &topic, 2, &events(0, N));
        let group = unique_name("group");
        let config = topic_as_data_source_config(&broker, &group, 100);
        let coordinator = Arc::new(LocalCoordinator::new());
        let metrics = Metrics::new();
        let first_sinks = sinks_with(&druid, &metrics, coordinator.clone());
        let connector = KafkaConnector::start(config.clone(), first_sinks.clone(), &metrics)
            .expect("first run starts");
        wait_for(
            "a third sent, some committed, and a tail sent but not committed",
            Duration::from_secs(60),
            || {
                let text = metrics.encode();
                let sent = sum_series(&text, "tranquility_kafka_messages_sent_total", &topic);
                let committed = sum_series(&text, "tranquility_kafka_committed_offset", &topic);
                sent >= N / 3 && committed > 0 && sent > committed + 100
            },
        )
        .await;
        connector.abort().await;
        let text = metrics.encode();
        let first_sent = sum_series(&text, "tranquility_kafka_messages_sent_total", &topic);
        let first_consumed = sum_series(&text, "tranquility_kafka_messages_consumed_total", &topic);
        // Pushes on the wire at the kill still land; nothing more goes (the partitions' pushes
        // are fenced at the abort).
        first_sinks.close().await;
        let first_in_druid = stable_count(&http, &druid, &topic).await;
        let commit_points = committed(&broker, &group, &topic, 2);
        let after_kill = commit_points.iter().sum::<i64>() as u64;
        if after_kill < first_sent || attempt == 3 {
            let killed = [after_kill, first_sent, first_consumed, first_in_druid];
            break (topic, group, config, coordinator, killed);
        }
        eprintln!("attempt {attempt}: all {first_sent} sent were committed before the kill; again");
    };
    let [after_kill, first_sent, first_consumed, first_in_druid] = killed;
    assert!(
        0 < after_kill && after_kill < first_sent && first_sent <= first_in_druid,
        "committed {after_kill}, sent {first_sent}, in Druid {first_in_druid}"
    );
    // The topic is produced up front, so on a busy machine the first run may have consumed
    // all of it before the kill; what the test needs is the tail sent and not committed.
    assert!(
        first_in_druid <= first_consumed,
        "in Druid {first_in_druid}, consumed {first_consumed}"
    );

    // Second run, same group: resumes at the committed offsets, reads the tail again.
    let metrics2 = Metrics::new();
    let second_sinks = sinks_with(&druid, &metrics2, coordinator);
    let connector =
        KafkaConnector::start(config, second_sinks.clone(), &metrics2).expect("second run starts");
    expect_count(&http, &druid, &topic, "count", None, N).await;
    connector.stop().await.expect("clean stop");
    let second_sent = sum_series(
        &metrics2.encode(),
        "tranquility_kafka_messages_sent_total",
        &topic,
    );
    assert_eq!(
        second_sent,
        N - after_kill,
        "the second run starts at the commit, {} messages Druid had already",
        first_in_druid - after_kill
    );
    assert_eq!(
        committed(&broker, &group, &topic, 2).iter().sum::<i64>() as u64,
        N
    );
    let tasks = integration_tests::druid::running_task_ids(&druid.url(), &topic).await;
    let mut skipped = 0;
    for task in &tasks {
        let counters = integration_tests::druid::task_metrics(&druid.url(), task).await;
        skipped += counters["skippedRequests"].as_u64().unwrap_or(0);
    }
    assert!(
        skipped > 0,
        "the task skipped the tail read again ({tasks:?})"
    );

    // Every event once: one row per page (event), each counted once.
    assert_pages_once(&http, &druid, &topic, N).await;
    second_sinks.close().await;
    druid.shutdown().await;
}

/// Every `page` of `data_source` is in Druid with a count of exactly one, and there are `n`.
async fn assert_pages_once(http: &reqwest::Client, druid: &DruidLocal, data_source: &str, n: u64) {
    let query = json!({"queryType": "groupBy", "dataSource": data_source,
        "intervals": ["2000-01-01/2100-01-01"], "granularity": "all", "dimensions": ["page"],
        "aggregations": [{"type": "longSum", "name": "events", "fieldName": "count"}]});
    let v: Value = http
        .post(format!("{}/druid/v2", druid.url()))
        .json(&query)
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("JSON");
    let rows = v.as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len() as u64, n, "every event is in Druid");
    let twice: Vec<&Value> = rows
        .iter()
        .filter(|r| r["event"]["events"].as_u64() != Some(1))
        .collect();
    assert!(twice.is_empty(), "in Druid more than once: {twice:?}");
}

/// Consumers join and leave the group while messages flow. Each join happens while pushes that
/// Druid has taken still wait for their answers (a proxy holds them back), so the rebalance finds messages on their way: the eager protocol
/// revokes every partition, their next owner reads the uncommitted messages again, and the
/// tasks skip what they already have. Every message is in Druid exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_joining_and_leaving_leave_every_message_in_druid_once() {
    init_logs();
    let broker = Tansu::start().expect("tansu starts");
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .expect("druid-local starts");
    let proxy = DruidProxy::start(([127, 0, 0, 1], druid.port()).into())
        .await
        .expect("proxy starts");
    let http = reqwest::Client::new();
    let topic = format!("events-{}", unique_name("rebalance"));
    create_topic(&broker, &topic, 4);
    let group = unique_name("group");
    let config = topic_as_data_source_config(&broker, &group, 500);

    // Messages arrive round after round until the group changes are over.
    let stop_producing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producing = {
        let (servers, topic) = (broker.bootstrap_servers(), topic.clone());
        let stop = stop_producing.clone();
        std::thread::spawn(move || {
            const ROUND: u64 = 100;
            let mut produced = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let lines = events(produced, produced + ROUND);
                kafka_common::kafka_py(
                    &["produce", &servers, &topic, "4"],
                    lines.join("\n").as_bytes(),
                );
                produced += ROUND;
                std::thread::sleep(Duration::from_millis(100));
            }
            produced
        })
    };
    let coordinator = Arc::new(LocalCoordinator::new());
    let member = |metrics: &Arc<Metrics>| {
        let sinks = Arc::new(PipelineSinks::new(
            Pipelines::builder()
                .metrics(metrics.clone())
                .coordinator(coordinator.clone())
                .overlord_url(proxy.url()),
        ));
        let connector =
            KafkaConnector::start(config.clone(), sinks.clone(), metrics).expect("starts");
        (connector, sinks)
    };
    let consumed = |metrics: &Arc<Metrics>| {
        sum_series(
            &metrics.encode(),
            "tranquility_kafka_messages_consumed_total",
            &topic,
        )
    };
    let owns = |metrics: &Arc<Metrics>| {
        metrics
            .encode()
            .lines()
            .any(|l| l.starts_with("tranquility_kafka_assigned_partitions") && !l.ends_with(" 0"))
    };

    let (ma, mb, mc) = (Metrics::new(), Metrics::new(), Metrics::new());
    let (a, sinks_a) = member(&ma);
    wait_for("A consumes", Duration::from_secs(60), || {
        consumed(&ma) >= 300
    })
    .await;
    // B joins while Druid holds a push of A's: every partition is revoked from A, then
    // shared; the held push's messages are read again.
    let in_flight = || async {
        proxy.hold_answers();
        let before = proxy.held();
        wait_for(
            "a push taken, its answer held",
            Duration::from_secs(60),
            || proxy.held() > before,
        )
        .await;
    };
    in_flight().await;
    let (b, sinks_b) = member(&mb);
    wait_for("B owns partitions", Duration::from_secs(60), || owns(&mb)).await;
    proxy.release_answers();
    wait_for("B consumes", Duration::from_secs(60), || {
        consumed(&mb) >= 300
    })
    .await;
    // C joins (the same way), then A and B leave: C ends with every partition.
    in_flight().await;
    let (c, sinks_c) = member(&mc);
    wait_for("C owns partitions", Duration::from_secs(60), || owns(&mc)).await;
    proxy.release_answers();
    stop_within_a_minute(a, "A").await;
    wait_for("C consumes", Duration::from_secs(60), || {
        consumed(&mc) >= 300
    })
    .await;
    stop_within_a_minute(b, "B").await;
    let alone = consumed(&mc);
    wait_for("C consumes alone", Duration::from_secs(60), || {
        consumed(&mc) >= alone + 300
    })
    .await;
    stop_producing.store(true, std::sync::atomic::Ordering::SeqCst);
    let n = producing.join().expect("producer");
    expect_count(&http, &druid, &topic, "count", None, n).await;
    stop_within_a_minute(c, "C").await;

    let read = consumed(&ma) + consumed(&mb) + consumed(&mc);
    assert!(
        read > n,
        "the rebalances had messages read twice ({read} reads of {n} messages)"
    );
    assert_eq!(
        committed(&broker, &group, &topic, 4).iter().sum::<i64>() as u64,
        n
    );
    assert_pages_once(&http, &druid, &topic, n).await;
    for sinks in [sinks_a, sinks_b, sinks_c] {
        sinks.close().await;
    }
    druid.shutdown().await;
}

/// Stops a group member, failing the test (instead of hanging it) if stopping takes a minute.
async fn stop_within_a_minute(member: KafkaConnector, name: &str) {
    tokio::time::timeout(Duration::from_secs(60), member.stop())
        .await
        .unwrap_or_else(|_| panic!("{name} did not stop within a minute"))
        .unwrap_or_else(|e| panic!("{name} did not stop cleanly: {e}"));
}
