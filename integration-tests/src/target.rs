//! The Druid a test body runs against: a real cluster ([`RealDruid`]) or druid-local, behind
//! one interface, so the same body checks both (`real_druid_*` and `druid_local_*` tests).
//!
//! Both are found the way a client finds Druid: the Overlord and Broker by URL, a task's
//! receiver through the location in the Overlord's task status (or its ZooKeeper
//! announcement). On a real cluster the Broker and the Overlord are separate processes and the
//! receiver lives in the task's peon; druid-local serves all three on one port.

use std::time::{Duration, Instant};

use druid_local::{DruidLocal, DruidLocalConfig};
use serde_json::{json, Value};

use crate::real_druid::RealDruid;
use crate::ZooKeeper;

/// A Druid to test against.
#[derive(Debug)]
pub enum DruidTarget {
    /// A real cluster started by `scripts/real-druid.sh`.
    Real(RealDruid),
    /// druid-local with a ZooKeeper of its own (for Curator announcements).
    Local {
        /// The server.
        druid: DruidLocal,
        /// Its ZooKeeper.
        zookeeper: ZooKeeper,
    },
}

impl DruidTarget {
    /// druid-local on a free port, announcing in a ZooKeeper of its own.
    pub async fn local() -> DruidTarget {
        let zookeeper = ZooKeeper::start();
        let mut config = DruidLocalConfig::ephemeral();
        config.zk = Some(zookeeper.connect_string());
        let druid = DruidLocal::start(config).await.expect("druid-local starts");
        DruidTarget::Local { druid, zookeeper }
    }

    /// A real cluster of `version`, or `None` (after saying why) when it is not installed; see
    /// [`RealDruid::start_or_skip`].
    pub async fn real(version: &'static str, test: &'static str) -> Option<DruidTarget> {
        tokio::task::spawn_blocking(move || RealDruid::start_or_skip(version, test))
            .await
            .expect("start thread")
            .map(DruidTarget::Real)
    }

    /// Stops the cluster or the server (a real cluster's logs are kept after a failed test).
    pub async fn stop(self) {
        match self {
            DruidTarget::Real(druid) => {
                eprintln!(
                    "Druid {}: cluster RSS {} MiB",
                    druid.version(),
                    druid.rss_kib() / 1024
                );
                tokio::task::spawn_blocking(move || drop(druid))
                    .await
                    .expect("stop thread");
            }
            DruidTarget::Local { druid, .. } => druid.shutdown().await,
        }
    }

    /// `Druid <version>` or `druid-local`, for messages.
    pub fn name(&self) -> String {
        match self {
            DruidTarget::Real(d) => format!("Druid {}", d.version()),
            DruidTarget::Local { .. } => "druid-local".into(),
        }
    }

    /// Whether this is a real Druid.
    pub fn is_real(&self) -> bool {
        matches!(self, DruidTarget::Real(_))
    }

    /// Base URL of the Overlord API.
    pub fn overlord_url(&self) -> String {
        match self {
            DruidTarget::Real(d) => d.overlord_url().to_string(),
            DruidTarget::Local { druid, .. } => druid.url(),
        }
    }

    /// Base URL of the Broker (native queries).
    pub fn broker_url(&self) -> String {
        match self {
            DruidTarget::Real(d) => d.broker_url().to_string(),
            DruidTarget::Local { druid, .. } => druid.url(),
        }
    }

    /// The ZooKeeper where receivers (and the Overlord) are announced.
    pub fn zookeeper_connect(&self) -> String {
        match self {
            DruidTarget::Real(d) => d.zookeeper_connect(),
            DruidTarget::Local { zookeeper, .. } => zookeeper.connect_string(),
        }
    }

    /// Finds the receiver `service` of `task` through the task's location in the Overlord's
    /// status, and waits until it takes an (empty) push; see [`find_receiver`].
    pub async fn receiver(&self, task: &str, service: &str) -> Receiver {
        find_receiver(&client(), &self.overlord_url(), task, service).await
    }

    /// Shuts down (Overlord `/shutdown`) every running task of `data_source`, so the next
    /// check finds the task slots of a small real cluster free; waits until they ended.
    pub async fn kill_tasks(&self, data_source: &str) {
        let overlord = self.overlord_url();
        let c = client();
        let running = crate::druid::running_task_ids(&overlord, data_source).await;
        for id in &running {
            let url = format!("{overlord}/druid/indexer/v1/task/{}/shutdown", segment(id));
            send(c.post(url)).await;
        }
        for id in &running {
            wait_finished(&c, &overlord, id).await;
        }
    }
}

/// A task's receiver, once it answers.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// `http://host:port` of the process serving it (a peon, or druid-local).
    pub base: String,
    /// What pushes got before it answered (status 0: connection refused), oldest first.
    pub before_ready: Vec<Answer>,
}

impl Receiver {
    /// The push-events URL of handler `name` on this process.
    pub fn push_url(&self, name: &str) -> String {
        format!("{}/druid/worker/v1/chat/{name}/push-events", self.base)
    }
}

/// An HTTP client for test requests.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client")
}

/// An HTTP answer: status, content type and body (JSON when it parses, else a string).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Status code (0 when the connection failed).
    pub status: u16,
    /// `Content-Type`, empty when absent.
    pub content_type: String,
    /// The body.
    pub body: Value,
    /// `X-Druid-Task-Id`, when sent.
    pub task_header: Option<String>,
}

impl Answer {
    /// `(status, body)`, for assertions that ignore headers.
    pub fn pair(&self) -> (u16, &Value) {
        (self.status, &self.body)
    }

    /// The body as text (a JSON body re-serialised).
    pub fn text(&self) -> String {
        match &self.body {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// Sends a request; a connection failure is an answer with status 0.
pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return Answer {
                status: 0,
                content_type: String::new(),
                body: Value::String(format!("request failed (connect: {}): {e}", e.is_connect())),
                task_header: None,
            }
        }
    };
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type").unwrap_or_default();
    let task_header = header("x-druid-task-id");
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        content_type,
        body,
        task_header,
    }
}

/// A JSON POST.
pub fn post_json(c: &reqwest::Client, url: &str, body: &Value) -> reqwest::RequestBuilder {
    c.post(url)
        .header("Content-Type", "application/json")
        .body(body.to_string())
}

/// A POST of raw bytes with a content type.
pub fn post_raw(
    c: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::RequestBuilder {
    c.post(url).header("Content-Type", content_type).body(body)
}

/// Percent-encodes a path segment (task ids hold `:`, dataSources spaces and non-ASCII).
pub fn segment(s: &str) -> String {
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

/// An instant as Druid prints it.
pub fn iso(millis: i64) -> String {
    druid_local::time::iso(millis)
}

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// The task Tranquility submits for partition 0, replicant 0 of the hour starting at `start`
/// (the shape of `core/src/druid/task_spec.rs`): dimensions `page` and `language`, metrics
/// `count` and `added` (longSum), minute rollup, millisecond `timestamp`, a shutoff an hour
/// after now.
pub fn realtime_task(id: &str, data_source: &str, service: &str, start: i64) -> Value {
    json!({
        "type": "index_realtime",
        "id": id,
        "resource": {"availabilityGroup": format!("{data_source}-0000-0000"), "requiredCapacity": 1},
        "spec": {
            "dataSchema": {
                "dataSource": data_source,
                "parser": {"type": "map", "parseSpec": {"format": "json",
                    "timestampSpec": {"column": "timestamp", "format": "millis"},
                    "dimensionsSpec": {"dimensions": ["page", "language"], "spatialDimensions": []}}},
                "metricsSpec": [{"type": "count", "name": "count"},
                    {"type": "longSum", "name": "added", "fieldName": "added"}],
                "granularitySpec": {"type": "uniform", "segmentGranularity": "HOUR",
                    "queryGranularity": "MINUTE", "rollup": true}
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

/// Now, in epoch millis.
pub fn now_millis() -> i64 {
    crate::setup::now_millis()
}

/// Polls the task status until it names a location and the receiver there takes an empty
/// push (a real peon publishes its location seconds before it accepts connections).
pub async fn find_receiver(
    c: &reqwest::Client,
    overlord: &str,
    task: &str,
    service: &str,
) -> Receiver {
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
        assert_eq!(
            status.body["status"]["statusCode"], "RUNNING",
            "task {task} ended before its receiver answered: {status:?}"
        );
        let location = &status.body["status"]["location"];
        let (host, port) = (location["host"].as_str(), location["port"].as_i64());
        if let (Some(host), Some(port)) = (host, port.filter(|p| *p > 0)) {
            let receiver = Receiver {
                base: format!("http://{host}:{port}"),
                before_ready: Vec::new(),
            };
            let answer = send(post_raw(
                c,
                &receiver.push_url(service),
                "application/json",
                "[]",
            ))
            .await;
            if answer.status == 200 {
                assert_eq!(answer.body, json!({"eventCount": 0}), "empty push");
                return Receiver {
                    before_ready,
                    ..receiver
                };
            }
            before_ready.push(answer);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls a task's status until it leaves RUNNING (panics after 180 s); returns that status.
pub async fn wait_finished(c: &reqwest::Client, overlord: &str, task_id: &str) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let status = send(c.get(format!(
            "{overlord}/druid/indexer/v1/task/{}/status",
            segment(task_id)
        )))
        .await;
        if status.status == 200 && status.body["status"]["statusCode"] != "RUNNING" {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "task {task_id} still running after 180 s: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs a native query until its answer is `expected` (rows reach a real Broker a few
/// seconds after a push) or `timeout` passes; returns the last answer.
pub async fn query_until(
    broker: &str,
    query: &Value,
    expected: &Value,
    timeout: Duration,
) -> Answer {
    let c = client();
    let deadline = Instant::now() + timeout;
    loop {
        let answer = send(post_json(&c, &format!("{broker}/druid/v2"), query)).await;
        if answer.status == 200 && &answer.body == expected || Instant::now() >= deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
