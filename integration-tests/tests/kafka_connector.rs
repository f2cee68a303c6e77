//! The Kafka connector against a real broker (tansu), with messages produced by an independent
//! client (Python confluent-kafka) and committed offsets read back by it.
//!
//! The dataSources' sinks here are in-memory: each checks the event is a JSON object with a
//! readable timestamp (as the core pipeline does), records it and answers `Sent`, after a
//! small random delay so outcomes arrive out of order. A marked event can be made to fail
//! its first attempts.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use integration_tests::{python, unique_name, Tansu};
use parking_lot::Mutex;
use serde_json::Value;
use tranquility::beam::{DropReason, Outcome, SendError};
use tranquility::event::TimestampExtractor;
use tranquility::metrics::Metrics;
use tranquility::spec::{DataSourceConfig, TranquilityConfig};
use tranquility_kafka::{ConnectorOptions, KafkaConfig, KafkaConnector, RetryPolicy};
use tranquility_kafka::{EventSink, SinkFactory};

const KAFKA_PY: &str = r#"
import json, sys
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
cmd, bootstrap = sys.argv[1], sys.argv[2]
if cmd == "create":
    topic, parts = sys.argv[3], int(sys.argv[4])
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, num_partitions=parts, replication_factor=1)]).values():
        f.result(30)
elif cmd == "produce":
    topic, parts = sys.argv[3], int(sys.argv[4])
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i, line in enumerate(sys.stdin.buffer.read().split(b"\n")):
        if line:
            p.produce(topic, line, partition=i % parts)
            p.poll(0)
    assert p.flush(60) == 0, "messages left undelivered"
elif cmd == "committed":
    group, topic, parts = sys.argv[3], sys.argv[4], int(sys.argv[5])
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    tps = c.committed([TopicPartition(topic, i) for i in range(parts)], timeout=30)
    print(json.dumps([max(tp.offset, 0) for tp in tps]))
    c.close()
"#;

fn kafka_py(args: &[&str], stdin: &[u8]) -> String {
    let mut child = Command::new(python())
        .arg("-c")
        .arg(KAFKA_PY)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    let out = child.wait_with_output().expect("python output");
    assert!(
        out.status.success(),
        "python {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn create_topic(broker: &Tansu, topic: &str, partitions: usize) {
    kafka_py(
        &[
            "create",
            &broker.bootstrap_servers(),
            topic,
            &partitions.to_string(),
        ],
        b"",
    );
}

/// Produces the lines (round-robin over the partitions).
fn produce(broker: &Tansu, topic: &str, partitions: usize, lines: &[String]) {
    kafka_py(
        &[
            "produce",
            &broker.bootstrap_servers(),
            topic,
            &partitions.to_string(),
        ],
        lines.join("\n").as_bytes(),
    );
}

fn committed(broker: &Tansu, group: &str, topic: &str, partitions: usize) -> Vec<i64> {
    let out = kafka_py(
        &[
            "committed",
            &broker.bootstrap_servers(),
            group,
            topic,
            &partitions.to_string(),
        ],
        b"",
    );
    serde_json::from_str(out.trim()).expect("committed offsets as JSON")
}

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
        Ok(Arc::new(Delayed(sink)))
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
struct Delayed(Arc<MemorySink>);

impl EventSink for Delayed {
    fn send(&self, raw: Bytes) -> BoxFuture<'static, Outcome> {
        let sink = self.0.clone();
        Box::pin(async move {
            let micros = (raw.len() % 7) as u64 * 300;
            tokio::time::sleep(Duration::from_micros(micros)).await;
            sink.outcome(&raw)
        })
    }

    fn drop_unparseable(&self, count: u64) {
        self.0.unparseable.fetch_add(count, Ordering::Relaxed);
    }
}

async fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what}: not reached after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
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
    let broker = Tansu::start();
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
    let broker = Tansu::start();
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
    let broker = Tansu::start();
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
#[ignore = "fails: after an abort the second run does not receive the rest within 60 s (under investigation: pause/resume at max_in_flight, or the group handover on tansu)"]
async fn restart_mid_stream_loses_nothing_and_duplicates_only_the_uncommitted_tail() {
    let broker = Tansu::start();
    let (topic, group) = (unique_name("wiki"), unique_name("group"));
    create_topic(&broker, &topic, 2);
    const N: u64 = 20_000;
    produce(&broker, &topic, 2, &events(0, N));

    // First run: frequent commits, killed a third of the way through.
    let first = Arc::new(MemoryFactory::default());
    let cfg = config(&broker, &group, &[("wiki", &topic)], 50).with_options(options());
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
async fn two_topics_go_to_two_data_sources_by_pattern() {
    let broker = Tansu::start();
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
    let mut broker = Tansu::start();
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

    // tansu keeps topics in memory: after the restart the topic is created again, empty.
    broker.restart();
    create_topic(&broker, &topic, 1);
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
    assert_eq!(committed(&broker, &group, &topic, 1), vec![30]);
}
