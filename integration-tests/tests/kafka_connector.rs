//! The Kafka connector against a real broker (tansu), with messages produced by an independent
//! client (Python confluent-kafka) and committed offsets read back by it.
//!
//! The dataSources' sinks here are in-memory: each checks the event is a JSON object with a
//! readable timestamp (as the core pipeline does), records it and answers `Sent`, after a
//! small random delay so outcomes arrive out of order. A marked event can be made to fail
//! its first attempts.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use integration_tests::{unique_name, Tansu};
use kafka_common::{committed, create_topic, init_logs, produce, wait_for};

mod kafka_common;
use parking_lot::Mutex;
use serde_json::Value;
use tranquility::beam::{DropReason, Outcome, SendError};
use tranquility::event::TimestampExtractor;
use tranquility::metrics::Metrics;
use tranquility::spec::{DataSourceConfig, TranquilityConfig};
use tranquility_kafka::{ConnectorOptions, KafkaConfig, KafkaConnector, RetryPolicy};
use tranquility_kafka::{EventSink, SinkFactory};

fn now_iso() -> String {
    // Whole seconds are enough: the sinks only check the timestamp is readable.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    secs.to_string()
}

fn events(from: u64, to: u64) -> Vec<String> {
    let ts = now_iso();
    (from..to)
        .map(|n| format!(r#"{{"ts": {ts}000, "n": {n}, "page": "p{n}"}}"#))
        .collect()
}

/// A kafka.json with one dataSource per `(name, pattern)`.
fn config(broker: &Tansu, group: &str, sources: &[(&str, &str)], commit_ms: u64) -> KafkaConfig {
    let data_sources: Vec<Value> = sources
        .iter()
        .map(|(name, pattern)| {
            serde_json::json!({
                "spec": {
                    "dataSchema": {
                        "dataSource": name,
                        "parser": {"type": "string", "parseSpec": {"format": "json",
                            "timestampSpec": {"column": "ts", "format": "auto"},
                            "dimensionsSpec": {"dimensions": ["page"]}}},
                        "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"},
                        "metricsSpec": [{"type": "count", "name": "count"}]
                    },
                    "tuningConfig": {"type": "realtime"}
                },
                "properties": {"topicPattern": pattern}
            })
        })
        .collect();
    let file = serde_json::json!({
        "dataSources": data_sources,
        "properties": {
            "kafka.bootstrap.servers": broker.bootstrap_servers(),
            "kafka.group.id": group,
            "kafka.auto.offset.reset": "earliest",
            // A member that left uncleanly is evicted soon, so the next one gets its partitions.
            "kafka.session.timeout.ms": "6000",
            "kafka.heartbeat.interval.ms": "1000",
            "consumer.numThreads": "1",
            "commit.periodMillis": commit_ms.to_string(),
        }
    });
    let loaded = TranquilityConfig::from_value(file, "kafka.json").expect("config loads");
    KafkaConfig::from_config(&loaded).expect("kafka config")
}

/// Records events per dataSource; fails the first `fail_attempts` sends of events marked
/// `"fail": true` with a retriable error.
#[derive(Debug, Default)]
struct MemoryFactory {
    fail_attempts: u32,
    /// Added to every outcome's delay.
    slow: Duration,
    sinks: Mutex<HashMap<String, Arc<MemorySink>>>,
}

#[derive(Debug)]
struct MemorySink {
    extractor: TimestampExtractor,
    fail_attempts: u32,
    sent: Mutex<Vec<u64>>,
    attempts: Mutex<HashMap<u64, u32>>,
    unparseable: AtomicU64,
}

impl MemoryFactory {
    fn failing(fail_attempts: u32) -> Arc<Self> {
        Arc::new(Self {
            fail_attempts,
            ..Self::default()
        })
    }

    fn slow(slow: Duration) -> Arc<Self> {
        Arc::new(Self {
            slow,
            ..Self::default()
        })
    }

    fn sink(&self, data_source: &str) -> Option<Arc<MemorySink>> {
        self.sinks.lock().get(data_source).cloned()
    }

    /// The `n` of every event sent to `data_source`, in arrival order.
    fn sent(&self, data_source: &str) -> Vec<u64> {
        self.sink(data_source)
            .map(|s| s.sent.lock().clone())
            .unwrap_or_default()
    }
}

#[async_trait]
impl SinkFactory for MemoryFactory {
    async fn sink(
        &self,
        config: &DataSourceConfig,
        data_source: &str,
    ) -> Result<Arc<dyn EventSink>, String> {
        let extractor = TimestampExtractor::new(&config.spec.data_schema.timestamp_spec())
            .map_err(|e| e.to_string())?;
        let sink = Arc::new(MemorySink {
            extractor,
            fail_attempts: self.fail_attempts,
            sent: Mutex::new(Vec::new()),
            attempts: Mutex::new(HashMap::new()),
            unparseable: AtomicU64::new(0),
        });
        self.sinks
            .lock()
            .insert(data_source.to_string(), sink.clone());
        Ok(Arc::new(Delayed(sink, self.slow)))
    }
}

impl MemorySink {
    fn outcome(&self, raw: &[u8]) -> Outcome {
        let Ok(value) = serde_json::from_slice::<Value>(raw) else {
            return Outcome::Dropped(DropReason::Unparseable);
        };
        if self.extractor.extract(raw).is_err() {
            return Outcome::Dropped(DropReason::Unparseable);
        }
        let n = value["n"].as_u64().unwrap_or(u64::MAX);
        if value["fail"] == Value::Bool(true) {
            let mut attempts = self.attempts.lock();
            let a = attempts.entry(n).or_default();
            *a += 1;
            if *a <= self.fail_attempts {
                return Outcome::failed(SendError::Push {
                    target: "memory".into(),
                    message: format!("attempt {a} of event {n} fails on purpose"),
                });
            }
        }
        self.sent.lock().push(n);
        Outcome::Sent
    }
}

/// A sink answering after a short delay that depends on the event, so outcomes arrive out of
/// order.
#[derive(Debug)]
struct Delayed(Arc<MemorySink>, Duration);

impl EventSink for Delayed {
    fn send(&self, raw: Bytes) -> BoxFuture<'static, Outcome> {
        let sink = self.0.clone();
        let slow = self.1;
        Box::pin(async move {
            let micros = (raw.len() % 7) as u64 * 300;
            tokio::time::sleep(slow + Duration::from_micros(micros)).await;
            sink.outcome(&raw)
        })
    }

    fn drop_unparseable(&self, count: u64) {
        self.0.unparseable.fetch_add(count, Ordering::Relaxed);
    }
}

fn options() -> ConnectorOptions {
    ConnectorOptions {
        topic_refresh: Duration::from_millis(500),
        ..ConnectorOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_messages_are_sent_and_committed() {
    let broker = Tansu::start().expect("tansu starts");
    let (topic, group) = (unique_name("wiki"), unique_name("group"));
    create_topic(&broker, &topic, 3);
    const N: u64 = 3000;
    produce(&broker, &topic, 3, &events(0, N));

    let factory = Arc::new(MemoryFactory::default());
    let metrics = Metrics::new();
    let cfg = config(&broker, &group, &[("wiki", &topic)], 200).with_options(options());
    let connector = KafkaConnector::start(cfg, factory.clone(), &metrics).unwrap();
    wait_for("all events sent", Duration::from_secs(60), || {
        factory.sent("wiki").len() as u64 >= N
    })
    .await;
    connector.stop().await.unwrap();

    let sent: HashSet<u64> = factory.sent("wiki").into_iter().collect();
    assert_eq!(sent.len() as u64, N, "every event exactly once");
    assert_eq!(factory.sent("wiki").len() as u64, N);
    let offsets = committed(&broker, &group, &topic, 3);
    assert_eq!(offsets.iter().sum::<i64>(), N as i64, "{offsets:?}");
    assert_eq!(offsets, vec![1000, 1000, 1000]);
    let text = metrics.encode();
    assert!(
        text.contains(&format!(
            "tranquility_kafka_messages_sent_total{{topic=\"{topic}\",partition=\"0\"}} 1000"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "tranquility_kafka_committed_offset{{topic=\"{topic}\",partition=\"2\"}} 1000"
        )),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_event_holds_the_commit_until_its_retry_succeeds() {
    let broker = Tansu::start().expect("tansu starts");
    let (topic, group) = (unique_name("wiki"), unique_name("group"));
    create_topic(&broker, &topic, 1);
    let ts = now_iso();
    let lines: Vec<String> = (0..20u64)
        .map(|n| {
            let fail = n == 5;
            format!(r#"{{"ts": {ts}000, "n": {n}, "fail": {fail}}}"#)
        })
        .collect();
    produce(&broker, &topic, 1, &lines);

    // Event 5 fails its first 4 attempts; retries wait 0.5, 1, 2, 2 s.
    let factory = MemoryFactory::failing(4);
    let metrics = Metrics::new();
    let cfg = config(&broker, &group, &[("wiki", &topic)], 100).with_options(ConnectorOptions {
        retry: RetryPolicy {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(2),
            max_attempts: None,
            period: None,
        },
        ..options()
    });
    let connector = KafkaConnector::start(cfg, factory.clone(), &metrics).unwrap();
    wait_for("the other 19 events sent", Duration::from_secs(30), || {
        factory.sent("wiki").len() >= 19
    })
    .await;
    // Let at least one periodic commit happen while event 5 is still failing.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let attempts = factory.sink("wiki").unwrap().attempts.lock()[&5];
    assert!(
        attempts <= 4,
        "event 5 must still be failing (attempt {attempts})"
    );
    assert_eq!(
        committed(&broker, &group, &topic, 1),
        vec![5],
        "the commit point stops right before the failing event"
    );

    wait_for("event 5 sent on retry", Duration::from_secs(30), || {
        factory.sent("wiki").contains(&5)
    })
    .await;
    connector.stop().await.unwrap();
    let sent: HashSet<u64> = factory.sent("wiki").into_iter().collect();
    assert_eq!(sent, (0..20).collect(), "nothing lost");
    assert_eq!(committed(&broker, &group, &topic, 1), vec![20]);
    let text = metrics.encode();
    assert!(
        text.contains(&format!(
            "tranquility_kafka_send_failures_total{{topic=\"{topic}\",partition=\"0\"}} 4"
        )),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_dropped_counted_and_committed() {
    let broker = Tansu::start().expect("tansu starts");
    let (topic, group) = (unique_name("wiki"), unique_name("group"));
    create_topic(&broker, &topic, 1);
    let mut lines = events(0, 5);
    lines.push("this is not JSON".into());
    lines.push("[1, 2, 3]".into());
    lines.push(r#"{"n": 100, "page": "no timestamp"}"#.into());
    lines.push(r#"{"ts": "not a time", "n": 101}"#.into());
    lines.push(format!(
        r#"{{"ts": {}000, "n": 102, "page": "{}"}}"#,
        now_iso(),
        "x".repeat(3000)
    ));
    lines.extend(events(5, 10));
    produce(&broker, &topic, 1, &lines);

    let factory = Arc::new(MemoryFactory::default());
    let metrics = Metrics::new();
    let cfg = config(&broker, &group, &[("wiki", &topic)], 100).with_options(ConnectorOptions {
        max_message_bytes: 1000,
        ..options()
    });
    let connector = KafkaConnector::start(cfg, factory.clone(), &metrics).unwrap();
    wait_for("good events sent", Duration::from_secs(30), || {
        factory.sent("wiki").len() >= 10
    })
    .await;
    connector.stop().await.unwrap();

    let sent: HashSet<u64> = factory.sent("wiki").into_iter().collect();
    assert_eq!(sent, (0..10).collect());
    let sink = factory.sink("wiki").unwrap();
    assert_eq!(
        sink.unparseable.load(Ordering::Relaxed),
        3,
        "not JSON, an array, too large"
    );
    assert_eq!(
        committed(&broker, &group, &topic, 1),
        vec![15],
        "bad ones committed too"
    );
    let text = metrics.encode();
    for (reason, count) in [("not_json", 2), ("too_large", 1), ("unparseable", 2)] {
        let line = format!(
            "tranquility_kafka_messages_dropped_total{{topic=\"{topic}\",partition=\"0\",reason=\"{reason}\"}} {count}"
        );
        assert!(text.contains(&line), "{line} missing from\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_stream_loses_nothing_and_duplicates_only_the_uncommitted_tail() {
    init_logs();
    let broker = Tansu::start().expect("tansu starts");
    let (topic, group) = (unique_name("wiki"), unique_name("group"));
    create_topic(&broker, &topic, 2);
    const N: u64 = 20_000;
    produce(&broker, &topic, 2, &events(0, N));

    // First run: frequent commits, killed a third of the way through. A small in-flight limit
    // makes fetching pause and resume many times on the way.
    let first = Arc::new(MemoryFactory::default());
    let cfg = config(&broker, &group, &[("wiki", &topic)], 50).with_options(ConnectorOptions {
        max_in_flight: 200,
        ..options()
    });
    let connector = KafkaConnector::start(cfg.clone(), first.clone(), &Metrics::new()).unwrap();
    wait_for(
        "a third of the events sent",
        Duration::from_secs(60),
        || first.sent("wiki").len() as u64 >= N / 3,
    )
    .await;
    connector.abort().await;
    let first_sent = first.sent("wiki");
    let after_kill: i64 = committed(&broker, &group, &topic, 2).iter().sum();
    assert!(
        after_kill > 0 && (after_kill as usize) <= first_sent.len(),
        "committed {after_kill} of {} sent",
        first_sent.len()
    );

    // Second run: the same group resumes from the committed offsets.
    let second = Arc::new(MemoryFactory::default());
    let connector = KafkaConnector::start(cfg, second.clone(), &Metrics::new()).unwrap();
    wait_for("the rest sent", Duration::from_secs(60), || {
        let all: HashSet<u64> = first
            .sent("wiki")
            .into_iter()
            .chain(second.sent("wiki"))
            .collect();
        all.len() as u64 >= N
    })
    .await;
    connector.stop().await.unwrap();

    let second_sent = second.sent("wiki");
    let all: HashSet<u64> = first_sent.iter().chain(&second_sent).copied().collect();
    assert_eq!(all.len() as u64, N, "no event lost");
    let duplicates = (first_sent.len() + second_sent.len()) as i64 - N as i64;
    assert_eq!(
        duplicates,
        first_sent.len() as i64 - after_kill,
        "duplicates are exactly the uncommitted tail of the first run"
    );
    assert_eq!(second_sent.len() as i64, N as i64 - after_kill);
    assert_eq!(
        committed(&broker, &group, &topic, 2).iter().sum::<i64>(),
        N as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_outcomes_pause_and_resume_fetching_without_losing_messages() {
    init_logs();
    let broker = Tansu::start().expect("tansu starts");
    let (topic, group) = (unique_name("wiki"), unique_name("group"));
    create_topic(&broker, &topic, 2);
    const N: u64 = 1000;
    produce(&broker, &topic, 2, &events(0, N));

    // Each outcome takes 300 ms; at 100 in flight the member stops taking messages, and after
    // 50 ms of that it pauses its partitions (librdkafka drops what it prefetched) until half
    // have an outcome: about ten pause/resume cycles.
    let factory = MemoryFactory::slow(Duration::from_millis(300));
    let metrics = Metrics::new();
    let cfg = config(&broker, &group, &[("wiki", &topic)], 100).with_options(ConnectorOptions {
        max_in_flight: 100,
        pause_after: Duration::from_millis(50),
        ..options()
    });
    let connector = KafkaConnector::start(cfg, factory.clone(), &metrics).unwrap();
    let most_in_flight = Arc::new(AtomicU64::new(0));
    wait_for("all events sent", Duration::from_secs(60), || {
        let text = metrics.encode();
        let consumed: u64 = (0..2)
            .map(|p| {
                counter(
                    &text,
                    "tranquility_kafka_messages_consumed_total",
                    &topic,
                    p,
                )
            })
            .sum();
        let sent = factory.sent("wiki").len() as u64;
        most_in_flight.fetch_max(consumed - sent.min(consumed), Ordering::Relaxed);
        sent >= N
    })
    .await;
    connector.stop().await.unwrap();

    let sent = factory.sent("wiki");
    let unique: HashSet<u64> = sent.iter().copied().collect();
    assert_eq!(unique, (0..N).collect(), "nothing lost");
    assert_eq!(sent.len() as u64, N, "nothing consumed twice");
    assert_eq!(committed(&broker, &group, &topic, 2), vec![500, 500]);
    let most = most_in_flight.load(Ordering::Relaxed);
    assert!(
        most <= 100,
        "at most max_in_flight messages wait for an outcome (saw {most})"
    );
}

/// The value of a per-partition counter in a Prometheus text exposition (0 when absent).
fn counter(text: &str, name: &str, topic: &str, partition: i32) -> u64 {
    let prefix = format!("{name}{{topic=\"{topic}\",partition=\"{partition}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_topics_go_to_two_data_sources_by_pattern() {
    let broker = Tansu::start().expect("tansu starts");
    let suffix = unique_name("t");
    let (clicks, views) = (format!("clicks-{suffix}"), format!("views-{suffix}"));
    let group = unique_name("group");
    create_topic(&broker, &clicks, 1);
    create_topic(&broker, &views, 2);
    produce(&broker, &clicks, 1, &events(0, 30));
    produce(&broker, &views, 2, &events(100, 150));

    let factory = Arc::new(MemoryFactory::default());
    let cfg = config(
        &broker,
        &group,
        &[("clicks", "clicks-.*"), ("views", "views-.*")],
        100,
    )
    .with_options(options());
    let connector = KafkaConnector::start(cfg, factory.clone(), &Metrics::new()).unwrap();
    wait_for("both topics consumed", Duration::from_secs(30), || {
        factory.sent("clicks").len() >= 30 && factory.sent("views").len() >= 50
    })
    .await;
    connector.stop().await.unwrap();
    let clicks_sent: HashSet<u64> = factory.sent("clicks").into_iter().collect();
    let views_sent: HashSet<u64> = factory.sent("views").into_iter().collect();
    assert_eq!(clicks_sent, (0..30).collect());
    assert_eq!(views_sent, (100..150).collect());
    assert_eq!(committed(&broker, &group, &clicks, 1), vec![30]);
    assert_eq!(committed(&broker, &group, &views, 2), vec![25, 25]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consuming_resumes_after_a_broker_restart() {
    // A broker that keeps its topics, messages and committed offsets, as a user's does.
    let mut broker = Tansu::start_persistent().expect("tansu starts");
    let (topic, group) = (unique_name("wiki"), unique_name("group"));
    create_topic(&broker, &topic, 1);
    produce(&broker, &topic, 1, &events(0, 50));

    let factory = Arc::new(MemoryFactory::default());
    let cfg = config(&broker, &group, &[("wiki", &topic)], 100).with_options(options());
    let connector = KafkaConnector::start(cfg, factory.clone(), &Metrics::new()).unwrap();
    wait_for("first events sent", Duration::from_secs(30), || {
        factory.sent("wiki").len() >= 50
    })
    .await;

    broker.restart().expect("tansu restarts");
    produce(&broker, &topic, 1, &events(50, 80));
    wait_for(
        "events after the restart sent",
        Duration::from_secs(90),
        || factory.sent("wiki").len() >= 80,
    )
    .await;
    connector.stop().await.unwrap();
    let sent: HashSet<u64> = factory.sent("wiki").into_iter().collect();
    assert_eq!(sent, (0..80).collect());
    assert_eq!(committed(&broker, &group, &topic, 1), vec![80]);
}
