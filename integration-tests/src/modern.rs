//! Helpers for tests of Druid 31+ ingestion (Kafka supervisors, inline batch tasks), against
//! druid-local and a real Druid alike: Druid's own Kafka IT supervisor templates filled in as
//! its test does, wikipedia-like events with known sums, and polling of the supervisor API.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Druid's Kafka IT supervisor template `name` (`supervisor_spec_template.json` or
/// `supervisor_with_concurrent_locks_spec_template.json`), filled in for `data_source`,
/// `topic` and `bootstrap` the way Druid's test fills it (see the folder's SOURCES.txt);
/// `None` after a visible skip when the peer data is absent.
pub fn it_template(name: &str, data_source: &str, topic: &str, bootstrap: &str) -> Option<Value> {
    let dir = test_support::peer_data(env!("CARGO_MANIFEST_DIR"), "druid-kafka-it")?;
    let template = std::fs::read_to_string(dir.join(name)).expect("read the supervisor template");
    let input_format = std::fs::read_to_string(dir.join("json_input_format.json"))
        .expect("read json_input_format.json");
    let dimensions = json!([
        "page",
        "language",
        "user",
        "unpatrolled",
        "newPage",
        "robot",
        "anonymous",
        "namespace",
        "continent",
        "country",
        "region",
        "city"
    ]);
    let filled = template
        .replace("%%STREAM_TYPE%%", "kafka")
        .replace("%%DATASOURCE%%", data_source)
        .replace("%%PARSER%%", "null")
        .replace("%%TOPIC_KEY%%", "topic")
        .replace("%%TOPIC_VALUE%%", topic)
        .replace("%%STREAM_PROPERTIES_KEY%%", "consumerProperties")
        .replace(
            "%%STREAM_PROPERTIES_VALUE%%",
            &json!({"bootstrap.servers": bootstrap}).to_string(),
        )
        .replace("%%USE_EARLIEST_KEY%%", "useEarliestOffset")
        .replace("%%INPUT_FORMAT%%", &input_format)
        .replace("%%DIMENSIONS%%", &dimensions.to_string());
    Some(serde_json::from_str(&filled).expect("the filled template is JSON"))
}

/// Wikipedia-like events (the IT template's dimensions and metrics) and their expected sums.
#[derive(Debug, Clone)]
pub struct WikiEvents {
    /// One JSON object per line.
    pub lines: Vec<String>,
    /// Sum of `added`.
    pub added: f64,
    /// Sum of `deleted`.
    pub deleted: f64,
    /// Sum of `delta`.
    pub delta: f64,
}

/// `n` events, the `i`-th at `start - i` seconds (event `i` of a run numbered from `first`),
/// so all of them fall in the few minutes before `start`.
pub fn wiki_events(first: usize, n: usize, start_millis: i64) -> WikiEvents {
    let mut out = WikiEvents {
        lines: Vec::new(),
        added: 0.0,
        deleted: 0.0,
        delta: 0.0,
    };
    for i in first..first + n {
        let ts = start_millis - (i % 120) as i64 * 1000;
        let (added, deleted) = ((i % 50) as f64, (i % 7) as f64);
        out.added += added;
        out.deleted += deleted;
        out.delta += added - deleted;
        out.lines.push(
            json!({
                "timestamp": iso(ts), "page": format!("page-{}", i % 11), "language": "en",
                "user": format!("user-{}", i % 5), "unpatrolled": "false", "newPage": "true",
                "robot": "false", "anonymous": "false", "namespace": "article",
                "continent": "Europe", "country": "France", "region": "IdF", "city": "Paris",
                "added": added, "deleted": deleted, "delta": added - deleted
            })
            .to_string(),
        );
    }
    out
}

/// ISO-8601 text of epoch millis, as Druid prints it.
pub fn iso(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .expect("a valid time")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Row count and the sums of `added`, `deleted` and `delta` of a dataSource (all time).
pub async fn sums(broker_url: &str, data_source: &str) -> (i64, f64, f64, f64) {
    let answer = crate::druid::query(
        broker_url,
        &json!({
            "queryType": "timeseries", "dataSource": data_source, "granularity": "all",
            "intervals": ["1000-01-01/3000-01-01"],
            "aggregations": [
                {"type": "longSum", "name": "count", "fieldName": "count"},
                {"type": "doubleSum", "name": "added", "fieldName": "added"},
                {"type": "doubleSum", "name": "deleted", "fieldName": "deleted"},
                {"type": "doubleSum", "name": "delta", "fieldName": "delta"}
            ]
        }),
    )
    .await;
    let r = &answer[0]["result"];
    (
        r["count"].as_i64().unwrap_or(0),
        r["added"].as_f64().unwrap_or(0.0),
        r["deleted"].as_f64().unwrap_or(0.0),
        r["delta"].as_f64().unwrap_or(0.0),
    )
}

/// Polls [`sums`] until the count reaches `count` (or `timeout` passes); returns the last.
pub async fn wait_for_sums(
    broker_url: &str,
    data_source: &str,
    count: i64,
    timeout: Duration,
) -> (i64, f64, f64, f64) {
    let deadline = Instant::now() + timeout;
    loop {
        let s = sums(broker_url, data_source).await;
        if s.0 >= count || Instant::now() >= deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An HTTP answer: status and body (JSON when it parses, else the text).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: Value,
}

/// Sends a request and reads the answer.
pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer { status, body }
}

/// A JSON POST.
pub fn post_json(c: &reqwest::Client, url: &str, body: &Value) -> reqwest::RequestBuilder {
    c.post(url)
        .header("Content-Type", "application/json")
        .body(body.to_string())
}

/// Polls `GET /supervisor/{id}/status` until `ready` accepts its payload; panics with the
/// last payload after `timeout`.
pub async fn wait_supervisor(
    overlord: &str,
    id: &str,
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut(&Value) -> bool,
) -> Value {
    let c = reqwest::Client::new();
    let deadline = Instant::now() + timeout;
    loop {
        let a = send(c.get(format!(
            "{overlord}/druid/indexer/v1/supervisor/{id}/status"
        )))
        .await;
        let payload = a.body["payload"].clone();
        if a.status == 200 && ready(&payload) {
            return payload;
        }
        assert!(
            Instant::now() < deadline,
            "supervisor {id}: {what} not seen after {timeout:?}; last status {}: {}",
            a.status,
            a.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Tasks of a dataSource from `GET /druid/indexer/v1/tasks` (newest first as Druid lists).
pub async fn tasks_of(overlord: &str, data_source: &str) -> Vec<Value> {
    let c = reqwest::Client::new();
    let a = send(c.get(format!(
        "{overlord}/druid/indexer/v1/tasks?datasource={data_source}"
    )))
    .await;
    a.body.as_array().cloned().unwrap_or_default()
}
