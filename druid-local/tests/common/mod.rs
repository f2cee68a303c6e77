//! Helpers shared by the druid-local integration tests: an embedded server on a free port and
//! a task spec builder.
#![allow(dead_code)]

use druid_local::{DruidLocal, DruidLocalConfig};
use serde_json::{json, Value};
use std::time::Duration;

/// Starts an in-memory druid-local on a free loopback port.
pub async fn start() -> DruidLocal {
    DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .expect("druid-local starts")
}

/// Starts an in-memory druid-local playing Druid `version`.
pub async fn start_version(version: &str) -> DruidLocal {
    let mut c = DruidLocalConfig::ephemeral();
    c.druid_version = version.parse().expect("a Druid version");
    DruidLocal::start(c).await.expect("druid-local starts")
}

/// Starts druid-local with a data dir.
pub async fn start_with(data_dir: Option<&std::path::Path>, zk: Option<String>) -> DruidLocal {
    let mut c = DruidLocalConfig::ephemeral();
    c.data_dir = data_dir.map(|p| p.to_path_buf());
    c.zk = zk;
    DruidLocal::start(c).await.expect("druid-local starts")
}

/// ISO string of now + `secs` seconds.
pub fn iso_in(secs: i64) -> String {
    druid_local::time::iso(druid_local::time::now_millis() + secs * 1000)
}

/// A Tranquility-style task spec (`rejectionPolicy` none, hourly segments, minute rollup).
pub fn task(id: &str, ds: &str, service: &str, shutoff: &str, buffer: usize) -> Value {
    json!({
      "type": "index_realtime",
      "id": id,
      "resource": {"availabilityGroup": format!("{ds}-g"), "requiredCapacity": 1},
      "spec": {
        "dataSchema": {
          "dataSource": ds,
          "parser": {"type": "map", "parseSpec": {"format": "json",
            "timestampSpec": {"column": "timestamp", "format": "iso", "missingValue": null},
            "dimensionsSpec": {"dimensions": ["page", "language"], "spatialDimensions": []}}},
          "metricsSpec": [{"type": "count", "name": "count"}, {"type": "longSum", "name": "added", "fieldName": "added"}],
          "granularitySpec": {"type": "uniform", "segmentGranularity": "HOUR", "queryGranularity": {"type": "duration", "duration": 60000, "origin": "1970-01-01T00:00:00.000Z"}, "rollup": true}
        },
        "ioConfig": {"type": "realtime", "plumber": null, "firehose": {
          "type": "clipped", "interval": "2024-01-01T10:00:00.000Z/2024-01-01T11:00:00.000Z",
          "delegate": {"type": "timed", "shutoffTime": shutoff,
            "delegate": {"type": "receiver", "serviceName": service, "bufferSize": buffer}}}},
        "tuningConfig": {"type": "realtime", "maxRowsInMemory": 75000, "intermediatePersistPeriod": "PT10M",
          "windowPeriod": "PT10M", "shardSpec": {"type": "linear", "partitionNum": 0}, "rejectionPolicy": {"type": "none"}}
      }
    })
}

/// POSTs JSON and returns (status, body as JSON or string).
pub async fn post(client: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let r = client
        .post(url)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// POSTs a raw JSON-typed body and returns (status, body as JSON or string).
pub async fn post_raw(client: &reqwest::Client, url: &str, body: &str) -> (u16, Value) {
    let r = client
        .post(url)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// GETs and returns (status, body).
pub async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = client.get(url).send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Status code of a task.
pub async fn status_code(client: &reqwest::Client, base: &str, id: &str) -> String {
    let url = format!("{base}/druid/indexer/v1/task/{}/status", urlencode(id));
    let (_, v) = get(client, &url).await;
    v["status"]["statusCode"].as_str().unwrap_or("").to_owned()
}

/// Waits until the task leaves RUNNING (panics after `secs`).
pub async fn wait_done(client: &reqwest::Client, base: &str, id: &str, secs: u64) -> String {
    for _ in 0..secs * 10 {
        let s = status_code(client, base, id).await;
        if s != "RUNNING" {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("task {id} still running after {secs}s");
}

/// Waits until a chat handler answers (not 503).
pub async fn wait_handler(client: &reqwest::Client, base: &str, service: &str) {
    for _ in 0..100 {
        let r = client
            .post(format!("{base}/druid/worker/v1/chat/{service}/push-events"))
            .header("Content-Type", "application/json")
            .body("[]")
            .send()
            .await
            .expect("request");
        if r.status().as_u16() == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("chat handler {service} never appeared");
}

/// Percent-encodes a path segment.
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs a native query.
pub async fn query(client: &reqwest::Client, base: &str, q: &Value) -> Value {
    let (status, v) = post(client, &format!("{base}/druid/v2"), q).await;
    assert_eq!(status, 200, "query failed: {v}");
    v
}
