//! One test body, two Druids: the push path Tranquility relies on (an `index_realtime` task
//! with a `receiver` firehose, its discovery, pushes with producer dedup headers, a count
//! through the Broker, the firehose closed with a handoff, an Overlord shutdown) run against
//! a real Druid and against druid-local.
//!
//! The real Druid runs only when installed (`scripts/real-druid.sh install 28.0.0`); tests
//! against it carry `real_druid` in their names: `cargo nextest run -E 'test(/real_druid/)'`.

use std::time::{Duration, Instant};

use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::real_druid::{RealDruid, MODERN_RELEASE, REALTIME_RELEASE};
use integration_tests::{unique_name, ZooKeeper};
use serde_json::{json, Value};
use zookeeper_client as zk;

/// The Druid a test body runs against.
enum Target {
    Real(RealDruid),
    Local {
        druid: DruidLocal,
        zookeeper: ZooKeeper,
    },
}

impl Target {
    async fn local() -> Target {
        let zookeeper = ZooKeeper::start();
        let mut config = DruidLocalConfig::ephemeral();
        config.zk = Some(zookeeper.connect_string());
        let druid = DruidLocal::start(config).await.expect("druid-local starts");
        Target::Local { druid, zookeeper }
    }

    fn name(&self) -> String {
        match self {
            Target::Real(d) => format!("Druid {}", d.version()),
            Target::Local { .. } => "druid-local".into(),
        }
    }

    fn overlord_url(&self) -> String {
        match self {
            Target::Real(d) => d.overlord_url().to_string(),
            Target::Local { druid, .. } => druid.url(),
        }
    }

    fn broker_url(&self) -> String {
        match self {
            Target::Real(d) => d.broker_url().to_string(),
            Target::Local { druid, .. } => druid.url(),
        }
    }

    fn zookeeper_connect(&self) -> String {
        match self {
            Target::Real(d) => d.zookeeper_connect(),
            Target::Local { zookeeper, .. } => zookeeper.connect_string(),
        }
    }
}

const HOUR_MS: i64 = 3_600_000;

fn now_millis() -> i64 {
    integration_tests::setup::now_millis()
}

fn iso(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .expect("a valid time")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The task Tranquility submits for partition 0, replicant 0 of the hour starting at `start`
/// (the shape of `core/src/druid/task_spec.rs`), with a shutoff an hour after now.
fn realtime_task(id: &str, data_source: &str, service: &str, start: i64) -> Value {
    json!({
        "type": "index_realtime",
        "id": id,
        "resource": {"availabilityGroup": format!("{data_source}-0000-0000"), "requiredCapacity": 1},
        "spec": {
            "dataSchema": {
                "dataSource": data_source,
                "parser": {"type": "map", "parseSpec": {"format": "json",
                    "timestampSpec": {"column": "timestamp", "format": "millis"},
                    "dimensionsSpec": {"dimensions": [], "spatialDimensions": []}}},
                "metricsSpec": [{"type": "count", "name": "count"}],
                "granularitySpec": {"type": "uniform", "segmentGranularity": "HOUR",
                    "queryGranularity": "NONE", "rollup": true}
            },
            "ioConfig": {"type": "realtime", "plumber": null, "firehose": {
                "type": "clipped", "interval": format!("{}/{}", iso(start), iso(start + HOUR_MS)),
                "delegate": {"type": "timed", "shutoffTime": iso(now_millis() + HOUR_MS),
                    "delegate": {"type": "receiver", "serviceName": service, "bufferSize": 100000}}}},
            "tuningConfig": {"type": "realtime", "maxRowsInMemory": 75000,
                "intermediatePersistPeriod": "PT10M", "windowPeriod": "PT10M",
                "shardSpec": {"type": "linear", "partitionNum": 0},
                "rejectionPolicy": {"type": "none"}}
        }
    })
}

/// An HTTP answer: status and body (JSON when it parses, else a string).
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    body: Value,
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer { status, body }
}

fn post_json(c: &reqwest::Client, url: &str, body: &Value) -> reqwest::RequestBuilder {
    c.post(url)
        .header("Content-Type", "application/json")
        .body(body.to_string())
}

/// Percent-encodes a path segment (task ids hold `:`).
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Polls the task status until it names a location and the receiver takes an empty push;
/// returns the receiver's base URL and the answers seen before it was ready.
async fn find_receiver(
    c: &reqwest::Client,
    overlord: &str,
    task: &str,
    service: &str,
) -> (String, Vec<Answer>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut before_ready = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "receiver {service} of {task} not ready after 120 s; seen {before_ready:?}"
        );
        let status = send(c.get(format!(
            "{overlord}/druid/indexer/v1/task/{}/status",
            segment(task)
        )))
        .await;
        assert_eq!(status.status, 200, "task status: {status:?}");
        let location = &status.body["status"]["location"];
        let (host, port) = (location["host"].as_str(), location["port"].as_i64());
        if let (Some(host), Some(port)) = (host, port.filter(|p| *p > 0)) {
            let base = format!("http://{host}:{port}");
            let push = format!("{base}/druid/worker/v1/chat/{service}/push-events");
            match c
                .post(&push)
                .header("Content-Type", "application/json")
                .body("[]")
                .send()
                .await
            {
                Ok(r) if r.status().as_u16() == 200 => {
                    let body: Value = r.json().await.expect("push answer is JSON");
                    assert_eq!(body, json!({"eventCount": 0}), "empty push");
                    return (base, before_ready);
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    before_ready.push(Answer { status, body });
                }
                // The worker's HTTP server is not up yet.
                Err(e) => before_ready.push(Answer {
                    status: 0,
                    body: Value::String(format!("connect: {}", e.is_connect())),
                }),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The Curator service instance announced for `service` under `/druid/discovery`.
async fn discovered(zookeeper: &str, service: &str) -> Value {
    let client = zk::Client::connect(zookeeper)
        .await
        .expect("connect to ZooKeeper");
    let path = format!("/druid/discovery/{service}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(children) = client.list_children(&path).await {
            if let Some(child) = children.first() {
                let (data, _) = client
                    .get_data(&format!("{path}/{child}"))
                    .await
                    .expect("read the instance node");
                return serde_json::from_slice(&data).expect("instance node is JSON");
            }
        }
        assert!(
            Instant::now() < deadline,
            "nothing announced under {path} after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn events(n: usize, ts: i64, tag: &str) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"timestamp": ts, "tag": tag, "i": i}))
            .collect(),
    )
}

/// Submit, discover, push with dedup headers, count through the Broker, close with handoff.
async fn receiver_push_and_count(target: &Target) {
    let began = Instant::now();
    let c = reqwest::Client::new();
    let overlord = target.overlord_url();
    let data_source = unique_name("conformance");
    let now = now_millis();
    let start = now - now.rem_euclid(HOUR_MS);
    let task_id = format!("index_realtime_{data_source}_{}_0_0", iso(start));
    let service = format!("firehose:druid:overlord:{data_source}-000-0000-0000");
    let task = realtime_task(&task_id, &data_source, &service, start);

    let submitted = send(post_json(
        &c,
        &format!("{overlord}/druid/indexer/v1/task"),
        &task,
    ))
    .await;
    assert_eq!(
        submitted,
        Answer {
            status: 200,
            body: json!({"task": task_id})
        }
    );
    let again = send(post_json(
        &c,
        &format!("{overlord}/druid/indexer/v1/task"),
        &task,
    ))
    .await;
    eprintln!("{}: duplicate task id -> {again:?}", target.name());
    assert_eq!(again.status, 400, "a duplicate task id is refused");

    let (receiver, before_ready) = find_receiver(&c, &overlord, &task_id, &service).await;
    let refused = before_ready.iter().filter(|a| a.status == 0).count();
    let answered: Vec<_> = before_ready.iter().filter(|a| a.status != 0).collect();
    eprintln!(
        "{}: receiver at {receiver} after {:.1} s; before that {refused} refused connection(s) \
         and answers {answered:?}",
        target.name(),
        began.elapsed().as_secs_f64()
    );
    let instance = discovered(&target.zookeeper_connect(), &service).await;
    eprintln!("{}: discovery node {instance}", target.name());
    assert_eq!(instance["name"], service.as_str());
    assert_eq!(
        format!(
            "http://{}:{}",
            instance["address"].as_str().unwrap_or("?"),
            instance["port"]
        ),
        receiver,
        "the announced address is the task's location"
    );

    let push = format!("{receiver}/druid/worker/v1/chat/{service}/push-events");
    let batch = |body: &Value, seq: Option<&str>| {
        let mut request = post_json(&c, &push, body).header("X-Firehose-Producer-Id", "producer-1");
        if let Some(seq) = seq {
            request = request.header("X-Firehose-Producer-Seq", seq);
        }
        send(request)
    };
    let first = events(3, start + 60_000, "first");
    let second = events(2, start + 120_000, "second");
    let answers = [
        batch(&first, Some("1")).await,
        batch(&first, Some("1")).await,
        batch(&first, Some("0")).await,
        batch(&second, Some("2")).await,
        batch(&second, None).await,
        batch(&second, Some("two")).await,
    ];
    let expected = [
        (200, json!({"eventCount": 3})),
        (200, json!({"eventCount": 0, "skipped": true})),
        (200, json!({"eventCount": 0, "skipped": true})),
        (200, json!({"eventCount": 2})),
        (400, json!({"error": "Producer sequence value is missing"})),
        (400, json!({"error": "Producer sequence must be a number"})),
    ];
    for (answer, (status, body)) in answers.iter().zip(expected) {
        assert_eq!((answer.status, &answer.body), (status, &body));
    }

    let broker = target.broker_url();
    let counted = integration_tests::druid::wait_for_count(
        &broker,
        &data_source,
        "count",
        5,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(counted, 5, "events counted through the Broker");

    // Closing the firehose ends the task with a handoff: SUCCESS, and the rows stay countable
    // (on a real Druid, from the Historical that loaded the published segment).
    let close = c
        .post(format!(
            "{receiver}/druid/worker/v1/chat/{service}/shutdown?shutoffTime={}",
            iso(now_millis() - 1000)
        ))
        .send()
        .await
        .expect("firehose shutdown request");
    assert_eq!(close.status().as_u16(), 200, "firehose shutdown");
    let done = wait_finished(&c, &overlord, &task_id).await;
    eprintln!(
        "{}: status after the firehose closed {done:?}",
        target.name()
    );
    assert_eq!(done.body["status"]["statusCode"], "SUCCESS");
    let counted = integration_tests::druid::wait_for_count(
        &broker,
        &data_source,
        "count",
        5,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(counted, 5, "events counted after the handoff");
    eprintln!(
        "{}: push, dedup, count and handoff took {:.1} s",
        target.name(),
        began.elapsed().as_secs_f64()
    );
}

/// Polls a task's status until it leaves RUNNING (panics after 180 s).
async fn wait_finished(c: &reqwest::Client, overlord: &str, task_id: &str) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let status = send(c.get(format!(
            "{overlord}/druid/indexer/v1/task/{}/status",
            segment(task_id)
        )))
        .await;
        if status.body["status"]["statusCode"] != "RUNNING" {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "task {task_id} still running after 180 s: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An Overlord shutdown kills a running task: FAILED, with the reason Druid gives.
async fn overlord_shutdown_fails_the_task(target: &Target) {
    let c = reqwest::Client::new();
    let overlord = target.overlord_url();
    let data_source = unique_name("conformance-kill");
    let now = now_millis();
    let start = now - now.rem_euclid(HOUR_MS);
    let task_id = format!("index_realtime_{data_source}_{}_0_0", iso(start));
    let service = format!("firehose:druid:overlord:{data_source}-000-0000-0000");
    let task = realtime_task(&task_id, &data_source, &service, start);
    let submitted = send(post_json(
        &c,
        &format!("{overlord}/druid/indexer/v1/task"),
        &task,
    ))
    .await;
    assert_eq!(submitted.status, 200, "submit: {submitted:?}");
    find_receiver(&c, &overlord, &task_id, &service).await;

    let shutdown = send(post_json(
        &c,
        &format!(
            "{overlord}/druid/indexer/v1/task/{}/shutdown",
            segment(&task_id)
        ),
        &json!({}),
    ))
    .await;
    assert_eq!(
        shutdown,
        Answer {
            status: 200,
            body: json!({"task": task_id})
        }
    );
    let done = wait_finished(&c, &overlord, &task_id).await;
    eprintln!("{}: status after shutdown {done:?}", target.name());
    assert_eq!(done.body["status"]["statusCode"], "FAILED");
    assert_eq!(
        done.body["status"]["errorMsg"],
        "Shutdown request from user"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_druid_receiver_push_dedup_and_count() {
    let test = "real_druid_receiver_push_dedup_and_count";
    let Some(druid) =
        tokio::task::spawn_blocking(move || RealDruid::start_or_skip(REALTIME_RELEASE, test))
            .await
            .expect("start thread")
    else {
        return;
    };
    let target = Target::Real(druid);
    receiver_push_and_count(&target).await;
    overlord_shutdown_fails_the_task(&target).await;
    if let Target::Real(druid) = &target {
        eprintln!(
            "Druid {}: cluster RSS {} MiB",
            druid.version(),
            druid.rss_kib() / 1024
        );
    }
    tokio::task::spawn_blocking(move || drop(target))
        .await
        .expect("stop thread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn druid_local_receiver_push_dedup_and_count() {
    let target = Target::local().await;
    receiver_push_and_count(&target).await;
    overlord_shutdown_fails_the_task(&target).await;
    if let Target::Local { druid, .. } = target {
        druid.shutdown().await;
    }
}

/// The modern release (31+, no realtime tasks) starts with its Kafka indexing extension loaded
/// and answers the supervisor API that the supervisor backend talks to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_druid_modern_release_loads_kafka_indexing() {
    let test = "real_druid_modern_release_loads_kafka_indexing";
    let Some(druid) =
        tokio::task::spawn_blocking(move || RealDruid::start_or_skip(MODERN_RELEASE, test))
            .await
            .expect("start thread")
    else {
        return;
    };
    let c = reqwest::Client::new();
    let status = send(c.get(format!("{}/status", druid.overlord_url()))).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.body["version"], MODERN_RELEASE);
    let modules: Vec<&str> = status.body["modules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["artifact"].as_str())
        .collect();
    assert!(
        modules.contains(&"druid-kafka-indexing-service"),
        "modules: {modules:?}"
    );
    let supervisors = send(c.get(format!(
        "{}/druid/indexer/v1/supervisor",
        druid.overlord_url()
    )))
    .await;
    assert_eq!(
        supervisors,
        Answer {
            status: 200,
            body: json!([])
        }
    );
    eprintln!(
        "Druid {}: cluster RSS {} MiB",
        druid.version(),
        druid.rss_kib() / 1024
    );
    tokio::task::spawn_blocking(move || drop(druid))
        .await
        .expect("stop thread");
}
