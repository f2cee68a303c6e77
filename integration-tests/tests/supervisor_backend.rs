//! The supervisor backend against a real Kafka-protocol broker (tansu) and a real ZooKeeper,
//! with a stand-in Overlord that records the supervisor specs it is sent: instances share one
//! topic and post the supervisor once, records are keyed by the partition hash, a spec change
//! posts once more, and a refused supervisor or a topic that cannot be created fail the events
//! with the cause. (The same paths against a real Druid: `backends_real_druid.rs`.)

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use integration_tests::kafka::read_all;
use integration_tests::setup::{config, events, now_millis};
use integration_tests::{unique_name, Tansu, ZooKeeper};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tranquility::beam::Outcome;
use tranquility::pipeline::Pipelines;
use tranquility::spec::TranquilityConfig;

/// The supervisor API of a Druid 33 Overlord, keeping specs in memory.
#[derive(Default)]
struct FakeOverlord {
    specs: HashMap<String, Value>,
    posts: Vec<Value>,
    refuse: Option<String>,
}

type Shared = Arc<Mutex<FakeOverlord>>;

async fn status() -> Json<Value> {
    Json(json!({"version": "33.0.0", "modules": [
        {"name": "org.apache.druid.indexing.kafka.KafkaIndexTaskModule",
         "artifact": "druid-kafka-indexing-service", "version": "33.0.0"}]}))
}

async fn post_supervisor(
    State(fake): State<Shared>,
    Json(spec): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut f = fake.lock();
    if let Some(reason) = &f.refuse {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": reason})));
    }
    let id = spec["spec"]["dataSchema"]["dataSource"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    f.posts.push(spec.clone());
    // Druid re-serialises the spec with its defaults; the context comes back as posted.
    let mut stored = spec;
    stored["spec"]["ioConfig"]["startDelay"] = json!("PT5S");
    f.specs.insert(id.clone(), stored);
    (StatusCode::OK, Json(json!({"id": id})))
}

async fn get_supervisor(
    State(fake): State<Shared>,
    Path(id): Path<String>,
) -> (StatusCode, Json<Value>) {
    match fake.lock().specs.get(&id) {
        Some(spec) => (StatusCode::OK, Json(spec.clone())),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("[{id}] does not exist")})),
        ),
    }
}

async fn stats() -> Json<Value> {
    Json(json!({"0": {"index_kafka_x": {"totals": {"buildSegments":
        {"processed": 42, "processedWithError": 0, "thrownAway": 3, "unparseable": 1}}}}}))
}

async fn supervisor_status() -> Json<Value> {
    Json(json!({"id": "x", "payload": {"state": "RUNNING", "detailedState": "RUNNING"}}))
}

async fn fake_overlord() -> (String, Shared) {
    let fake = Shared::default();
    let app = Router::new()
        .route("/status", get(status))
        .route(
            "/druid/indexer/v1/supervisor",
            axum::routing::post(post_supervisor),
        )
        .route("/druid/indexer/v1/supervisor/{id}", get(get_supervisor))
        .route("/druid/indexer/v1/supervisor/{id}/stats", get(stats))
        .route(
            "/druid/indexer/v1/supervisor/{id}/status",
            get(supervisor_status),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, fake)
}

fn with_dimensions(config: &TranquilityConfig, dims: &[&str]) -> TranquilityConfig {
    let mut root = json!({"dataSources": [{"spec": config.data_sources()[0].spec.clone()}]});
    root["dataSources"][0]["spec"]["dataSchema"]["parser"]["parseSpec"]["dimensionsSpec"] =
        json!({"dimensions": dims});
    let mut props = serde_json::Map::new();
    for (k, v) in config.global_properties().iter() {
        props.insert(k.to_string(), json!(v));
    }
    root["properties"] = Value::Object(props);
    TranquilityConfig::from_value(root, "changed.json").unwrap()
}

fn varied(n: usize, tag: &str) -> Vec<Bytes> {
    let now = now_millis();
    (0..n)
        .map(|i| {
            Bytes::from(
                json!({"timestamp": now, "tag": tag, "page": format!("p{}", i % 7), "i": i})
                    .to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_one_topic_and_post_the_supervisor_once() {
    let zk = ZooKeeper::start();
    // tansu 0.6 in memory answers a fetch from inside a batch with the next batch; its SQLite
    // storage serves every record, as a Kafka broker does.
    let broker = Tansu::start_persistent().expect("tansu starts");
    let (overlord, fake) = fake_overlord().await;
    let ds = unique_name("sup");
    let cfg = config(
        &ds,
        "hour",
        &[
            ("zookeeper.connect", &zk.connect_string()),
            ("druid.overlord.url", &overlord),
            (
                "druid.ingestion.kafka.bootstrap.servers",
                &broker.bootstrap_servers(),
            ),
            ("task.partitions", "3"),
        ],
    );
    // Two instances coordinating through ZooKeeper, as two processes would.
    let a = Pipelines::builder().build(&cfg).unwrap();
    let b = Pipelines::builder().build(&cfg).unwrap();
    let (pa, pb) = (a.get(&ds).unwrap(), b.get(&ds).unwrap());
    let (oa, ob) = tokio::join!(pa.send_all(varied(30, "a")), pb.send_all(varied(30, "b")));
    assert!(oa.iter().chain(&ob).all(Outcome::is_sent), "{oa:?} {ob:?}");
    assert_eq!(pa.backend().unwrap().describe(), "supervisor");
    assert_eq!(
        fake.lock().posts.len(),
        1,
        "one instance posts, the other finds it"
    );

    let topic = format!("tranquility-{ds}");
    let spec = fake.lock().posts[0].clone();
    assert_eq!(spec["spec"]["ioConfig"]["topic"], topic.as_str());
    assert_eq!(spec["spec"]["ioConfig"]["taskCount"], 3);
    assert_eq!(
        spec["spec"]["ioConfig"]["consumerProperties"]["bootstrap.servers"],
        broker.bootstrap_servers().as_str()
    );

    // Every acknowledged event is on the topic once, and one key always lands in one partition.
    let messages = read_all(&broker, &topic, 3);
    assert_eq!(messages.len(), 60);
    let values: HashSet<String> = messages.iter().map(|m| m.value.clone()).collect();
    assert_eq!(values.len(), 60);
    let mut partition_of: HashMap<&str, i32> = HashMap::new();
    for m in &messages {
        assert_eq!(m.key.len(), 16, "an 8-byte hash key: {m:?}");
        let first = *partition_of.entry(&m.key).or_insert(m.partition);
        assert_eq!(first, m.partition, "key {} in two partitions", m.key);
    }

    // Druid's own counts, read from the supervisor's stats, become gauges.
    let deadline = Instant::now() + Duration::from_secs(30);
    while pa.metrics().druid_rows()[0] == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pa.metrics().druid_rows(), [42, 0, 3, 1]);

    // A new dimension list: two more instances, one more post.
    let changed = with_dimensions(&cfg, &["tag", "page"]);
    let c = Pipelines::builder().build(&changed).unwrap();
    let d = Pipelines::builder().build(&changed).unwrap();
    let (oc, od) = tokio::join!(
        c.get(&ds).unwrap().send_all(varied(5, "c")),
        d.get(&ds).unwrap().send_all(varied(5, "d"))
    );
    assert!(oc.iter().chain(&od).all(Outcome::is_sent));
    let posts = fake.lock().posts.clone();
    assert_eq!(posts.len(), 2);
    assert_eq!(
        posts[1]["spec"]["dataSchema"]["dimensionsSpec"]["dimensions"],
        json!(["tag", "page"])
    );
    assert_ne!(
        posts[0]["context"]["tranquility.specSha256"],
        posts[1]["context"]["tranquility.specSha256"]
    );
    for p in [&a, &b, &c, &d] {
        p.close().await;
        let tally = p.get(&ds).unwrap().metrics().snapshot();
        assert!(tally.is_balanced(), "{tally:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_supervisor_or_topic_fails_the_events_with_the_cause() {
    let broker = Tansu::start().expect("tansu starts");
    let (overlord, fake) = fake_overlord().await;
    fake.lock().refuse = Some(
        "Cannot construct instance of `KafkaSupervisorIOConfig`, problem: \
         Either topic or topicPattern must be specified"
            .into(),
    );
    let ds = unique_name("refused");
    let base = [
        ("druid.overlord.url", overlord.as_str()),
        ("druid.ingestion", "supervisor"),
    ];
    let servers = broker.bootstrap_servers();
    let mut props = base.to_vec();
    props.push(("druid.ingestion.kafka.bootstrap.servers", &servers));
    let cfg = config(&ds, "hour", &props);
    let pipelines = Pipelines::builder()
        .coordinator(Arc::new(tranquility::coord::LocalCoordinator::new()))
        .build(&cfg)
        .unwrap();
    let pipeline = pipelines.get(&ds).unwrap();
    let outcomes = pipeline.send_all(events(4, now_millis(), "x")).await;
    for outcome in &outcomes {
        match outcome {
            Outcome::Failed(e) => {
                let text = e.to_string();
                assert!(text.contains("HTTP 400"), "{text}");
                assert!(text.contains("Either topic or topicPattern"), "{text}");
                assert!(!e.is_retriable(), "{text}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }
    let tally = pipeline.metrics().snapshot();
    assert_eq!((tally.received, tally.failed), (4, 4));
    assert!(tally.is_balanced());
    pipelines.close().await;

    // Brokers that do not answer: the topic cannot be created, and the events fail saying so.
    let ds = unique_name("nobroker");
    let gone = format!("127.0.0.1:{}", integration_tests::free_port());
    let mut props = base.to_vec();
    props.push(("druid.ingestion.kafka.bootstrap.servers", &gone));
    props.push(("druid.ingestion.kafka.producer.socket.timeout.ms", "2000"));
    let cfg = config(&ds, "hour", &props);
    let pipelines = Pipelines::builder()
        .coordinator(Arc::new(tranquility::coord::LocalCoordinator::new()))
        .build(&cfg)
        .unwrap();
    let pipeline = pipelines.get(&ds).unwrap();
    let outcomes = pipeline.send_all(events(3, now_millis(), "x")).await;
    for outcome in &outcomes {
        match outcome {
            Outcome::Failed(e) => {
                let text = e.to_string();
                assert!(
                    text.contains(&format!("cannot create Kafka topic tranquility-{ds}"))
                        && text.contains(&gone),
                    "{text}"
                );
                assert!(e.is_retriable(), "{text}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }
    assert!(pipeline.metrics().snapshot().is_balanced());
    pipelines.close().await;
}

#[tokio::test]
async fn the_supervisor_backend_without_brokers_is_a_config_error() {
    let ds = unique_name("nobrokers");
    let cfg = config(
        &ds,
        "hour",
        &[
            ("druid.overlord.url", "http://127.0.0.1:1"),
            ("druid.ingestion", "supervisor"),
        ],
    );
    let err = Pipelines::builder().build(&cfg).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&ds) && text.contains("druid.ingestion.kafka.bootstrap.servers"),
        "{text}"
    );
    // A topic name Kafka would refuse is refused before any broker is asked.
    let cfg = config(
        &ds,
        "hour",
        &[
            ("druid.overlord.url", "http://127.0.0.1:1"),
            ("druid.ingestion", "supervisor"),
            ("druid.ingestion.kafka.bootstrap.servers", "127.0.0.1:1"),
            ("druid.ingestion.kafka.topic", "no spaces {dataSource}"),
        ],
    );
    let text = Pipelines::builder().build(&cfg).unwrap_err().to_string();
    assert!(text.contains("not a Kafka topic name"), "{text}");
}
