//! Tranquility Server on the backends of Druid 31+ (supervisor, batch), for tests against a
//! real Druid and druid-local alike: a server on a free port built from an example file whose
//! only changes are where Druid and Kafka are, events of the file's schema, the counts of
//! `/metrics` and of a failed post checked against `received = sent + dropped + failed`, and
//! Druid's sums polled through the Broker.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tranquility::pipeline::Pipelines;
use tranquility::spec::TranquilityConfig;
use tranquility_server::{AppState, DataSourceReport, Server, ServerConfig};

/// A server example file and the dataSource the tests post to.
#[derive(Debug, Clone)]
pub struct Example {
    /// The file.
    pub path: PathBuf,
    /// The dataSource posted to.
    pub data_source: String,
    /// Its dimensions, as the file lists them.
    pub dimensions: Vec<String>,
    /// Its `doubleSum` metric (events carry 1.5 in its field).
    pub sum_metric: String,
    /// Whether the file names the Overlord by URL (`druid.overlord.url`) rather than finding
    /// it through ZooKeeper.
    pub names_overlord: bool,
}

impl Example {
    /// The original Tranquility's `server.json.example` (dataSource `foo`, metric `x`).
    pub fn original(path: &Path) -> Example {
        Self::read(path, "foo")
    }

    /// The repository's own `examples/configs/server.json` (dataSource `metrics`, metric
    /// `value`), which a plain clone has.
    pub fn repository() -> Example {
        Self::read(
            &test_support::example_configs().join("server.json"),
            "metrics",
        )
    }

    fn read(path: &Path, data_source: &str) -> Example {
        let root = Self::root_of(path);
        let entry = Self::entry(&root, data_source);
        let dims = entry
            .pointer("/spec/dataSchema/parser/parseSpec/dimensionsSpec/dimensions")
            .and_then(Value::as_array)
            .expect("the example lists dimensions");
        let sum_metric = entry
            .pointer("/spec/dataSchema/metricsSpec")
            .and_then(Value::as_array)
            .and_then(|m| m.iter().find(|a| a["type"] == "doubleSum"))
            .and_then(|a| a["name"].as_str())
            .expect("the example has a doubleSum metric");
        Example {
            path: path.to_path_buf(),
            data_source: data_source.to_string(),
            dimensions: dims
                .iter()
                .filter_map(|d| d.as_str().map(str::to_owned))
                .collect(),
            sum_metric: sum_metric.to_string(),
            names_overlord: root["properties"].get("druid.overlord.url").is_some(),
        }
    }

    fn root_of(path: &Path) -> Value {
        let text = std::fs::read_to_string(path).expect("read the example");
        serde_json::from_str(&text).expect("the example is JSON")
    }

    fn entry<'a>(root: &'a Value, data_source: &str) -> &'a Value {
        root["dataSources"]
            .as_array()
            .and_then(|list| {
                list.iter()
                    .find(|d| d.pointer("/spec/dataSchema/dataSource") == Some(&json!(data_source)))
            })
            .expect("the example has the dataSource")
    }

    /// Where Druid is, as the file says it: ZooKeeper always (coordination and, without
    /// `druid.overlord.url`, Overlord discovery), the Overlord's URL when the file names one.
    pub fn location(&self, zookeeper: &str, overlord_url: &str) -> Vec<(&'static str, String)> {
        let mut props = vec![("zookeeper.connect", zookeeper.to_string())];
        if self.names_overlord {
            props.push(("druid.overlord.url", overlord_url.to_string()));
        }
        props
    }

    /// The file with only `properties` changed.
    pub fn config(&self, properties: &[(&str, String)]) -> TranquilityConfig {
        self.config_with(properties, &[])
    }

    /// The file with `properties` changed and `more_dimensions` added to the dataSource's.
    pub fn config_with(
        &self,
        properties: &[(&str, String)],
        more_dimensions: &[&str],
    ) -> TranquilityConfig {
        let mut root = Self::root_of(&self.path);
        for (key, value) in properties {
            root["properties"][*key] = Value::from(value.as_str());
        }
        let list = root["dataSources"].as_array_mut().expect("dataSources");
        let entry = list
            .iter_mut()
            .find(|d| d.pointer("/spec/dataSchema/dataSource") == Some(&json!(self.data_source)))
            .expect("the example has the dataSource");
        let dims = entry
            .pointer_mut("/spec/dataSchema/parser/parseSpec/dimensionsSpec/dimensions")
            .and_then(Value::as_array_mut)
            .expect("the example lists dimensions");
        dims.extend(more_dimensions.iter().map(|d| json!(d)));
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        TranquilityConfig::from_value(root, &name).expect("the changed example loads")
    }

    /// `n` events at `ts`: the first dimension `tag`, the second one of four values, the third
    /// the event's number, and 1.5 in the summed metric's field.
    pub fn events(&self, n: usize, ts: i64, tag: &str) -> Vec<Value> {
        (0..n)
            .map(|i| {
                let mut e = json!({"timestamp": ts});
                let values = [json!(tag), json!(format!("b{}", i % 4)), json!(i)];
                for (dim, value) in self.dimensions.iter().zip(values) {
                    e[dim.as_str()] = value;
                }
                e[self.sum_metric.as_str()] = json!(1.5);
                e
            })
            .collect()
    }

    /// Polls `count` and the summed metric of the dataSource through the Broker until the
    /// count reaches `expected` or `timeout` passes; returns the last sums.
    pub async fn wait_for_rows(
        &self,
        broker: &str,
        expected: i64,
        timeout: Duration,
    ) -> (i64, f64) {
        wait_for_rows(
            broker,
            &self.data_source,
            &self.sum_metric,
            expected,
            timeout,
        )
        .await
    }
}

/// Sums `count` and `metric` of `data_source` through the Broker until `count` reaches
/// `expected` or `timeout` passes; returns the last sums (0 while Druid does not answer).
pub async fn wait_for_rows(
    broker: &str,
    data_source: &str,
    metric: &str,
    expected: i64,
    timeout: Duration,
) -> (i64, f64) {
    let query = json!({
        "queryType": "timeseries", "dataSource": data_source, "granularity": "all",
        "intervals": ["2000-01-01/2100-01-01"],
        "aggregations": [{"type": "longSum", "name": "count", "fieldName": "count"},
                         {"type": "doubleSum", "name": "sum", "fieldName": metric}]
    });
    let deadline = Instant::now() + timeout;
    loop {
        let answer: Value = match reqwest::Client::new()
            .post(format!("{broker}/druid/v2"))
            .json(&query)
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        let sums = (
            answer
                .pointer("/0/result/count")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            answer
                .pointer("/0/result/sum")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
        );
        if sums.0 >= expected || Instant::now() > deadline {
            return sums;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The counts of a post that did not fully succeed, read from the server's 500 answer
/// (`Server error: F of R events failed (S sent, D dropped): cause`): received, sent,
/// dropped, failed, and the cause.
pub fn failed_post_counts(body: &str) -> Option<([u64; 4], String)> {
    let rest = body.trim().strip_prefix("Server error: ")?;
    let (failed, rest) = rest.split_once(" of ")?;
    let (received, rest) = rest.split_once(" events failed (")?;
    let (sent, rest) = rest.split_once(" sent, ")?;
    let (dropped, cause) = rest.split_once(" dropped): ")?;
    let n = |s: &str| s.trim().parse::<u64>().ok();
    Some((
        [n(received)?, n(sent)?, n(dropped)?, n(failed)?],
        cause.to_string(),
    ))
}

/// A Tranquility Server on a free loopback port.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    handle: JoinHandle<std::io::Result<Vec<DataSourceReport>>>,
}

/// A post's answer: status and body.
#[derive(Debug, Clone)]
pub struct PostAnswer {
    /// HTTP status.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

impl PostAnswer {
    /// received, sent, dropped, failed: from the `result` of a 200, or from the text of a
    /// 500; panics on anything else or when they do not balance.
    pub fn counts(&self) -> [u64; 4] {
        let counts = if self.status == 200 {
            let result = &serde_json::from_str::<Value>(&self.body).expect("JSON")["result"];
            let n = |k: &str| result[k].as_u64().unwrap_or(0);
            [n("received"), n("sent"), n("dropped"), n("failed")]
        } else {
            failed_post_counts(&self.body)
                .unwrap_or_else(|| panic!("not a post answer: {} {}", self.status, self.body))
                .0
        };
        assert_eq!(
            counts[0],
            counts[1] + counts[2] + counts[3],
            "{}",
            self.body
        );
        counts
    }
}

impl Running {
    /// Builds the pipelines of `config` (with its own ZooKeeper settings) and serves them.
    pub async fn start(config: &TranquilityConfig) -> Self {
        let server_config = ServerConfig::from_config(config).expect("server config");
        let pipelines = Pipelines::builder().build(config).expect("pipelines");
        let state = AppState::from_pipelines(server_config, config, &pipelines);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = Server::from_listener(listener, state);
        let addr = server.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Self { addr, stop, handle }
    }

    /// Stops it (draining what is pending) and returns each dataSource's final counts,
    /// checked to balance.
    pub async fn stop(self) -> Vec<DataSourceReport> {
        let _ = self.stop.send(());
        let reports = tokio::time::timeout(Duration::from_secs(120), self.handle)
            .await
            .expect("the server stops")
            .expect("the server task")
            .expect("the server ran");
        for report in &reports {
            assert!(report.tally.is_balanced(), "{report:?}");
        }
        reports
    }

    /// Posts `events` to `data_source` (`query` such as `?async=true` appended); any answer.
    pub async fn post_answer(
        &self,
        data_source: &str,
        query: &str,
        events: &[Value],
    ) -> PostAnswer {
        let res = reqwest::Client::new()
            .post(format!("http://{}/v1/post/{data_source}{query}", self.addr))
            .json(&events)
            .send()
            .await
            .expect("post");
        PostAnswer {
            status: res.status().as_u16(),
            body: res.text().await.expect("body"),
        }
    }

    /// Posts `events` to `data_source`; returns the `result`, checked to be a 200 and to
    /// balance.
    pub async fn post(&self, data_source: &str, events: &[Value]) -> Value {
        let answer = self.post_answer(data_source, "", events).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.counts();
        serde_json::from_str::<Value>(&answer.body).expect("JSON")["result"].clone()
    }

    /// The body of `GET {path}`.
    pub async fn get(&self, path: &str) -> String {
        reqwest::get(format!("http://{}{path}", self.addr))
            .await
            .expect("get")
            .text()
            .await
            .expect("body")
    }

    /// The `/health` answer.
    pub async fn health(&self) -> Value {
        serde_json::from_str(&self.get("/health").await).expect("health is JSON")
    }

    /// The series of `data_source` in `/metrics`: received, sent, dropped, failed; checked
    /// to balance.
    pub async fn counts(&self, data_source: &str) -> [u64; 4] {
        let text = self.get("/metrics").await;
        let label = format!("dataSource=\"{data_source}\"");
        let sum = |name: &str| -> u64 {
            text.lines()
                .filter(|l| l.starts_with(name) && l.contains(&label))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .map(|v| v as u64)
                .sum()
        };
        let counts = [
            sum("tranquility_events_received_total"),
            sum("tranquility_events_sent_total"),
            sum("tranquility_events_dropped_total"),
            sum("tranquility_events_failed_total"),
        ];
        assert_eq!(counts[0], counts[1] + counts[2] + counts[3], "{text}");
        counts
    }

    /// Druid's own count of rows of `kind` (`processed`, `thrownAway`, ...) in `data_source`
    /// as the supervisor backend's `tranquility_druid_rows` gauge shows it (read from `/stats`
    /// every 30 s).
    pub async fn druid_rows(&self, data_source: &str, kind: &str) -> i64 {
        let text = self.get("/metrics").await;
        let labels = [
            format!("dataSource=\"{data_source}\""),
            format!("kind=\"{kind}\""),
        ];
        text.lines()
            .find(|l| {
                l.starts_with("tranquility_druid_rows{") && labels.iter().all(|x| l.contains(x))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    }
}

/// Druid's answer to `GET {overlord}/druid/indexer/v1{path}` (`null` when not JSON).
pub async fn overlord_get(overlord: &str, path: &str) -> Value {
    match reqwest::get(format!("{overlord}/druid/indexer/v1{path}")).await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// How many specs Druid's history holds for supervisor `id` (one per post that changed it).
pub async fn supervisor_posts(overlord: &str, id: &str) -> usize {
    overlord_get(overlord, &format!("/supervisor/{id}/history"))
        .await
        .as_array()
        .map_or(0, Vec::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_post_gives_its_counts_and_cause() {
        let (counts, cause) = failed_post_counts(
            "Server error: 3 of 5 events failed (1 sent, 1 dropped): Druid refused it: 400\n",
        )
        .unwrap();
        assert_eq!(counts, [5, 1, 1, 3]);
        assert_eq!(cause, "Druid refused it: 400");
        assert!(failed_post_counts("Buffer full").is_none());
    }

    #[test]
    fn the_repository_example_names_its_overlord_and_metric() {
        let e = Example::repository();
        assert_eq!((e.sum_metric.as_str(), e.names_overlord), ("value", true));
        assert_eq!(e.dimensions, ["host", "metric"]);
        let ev = &e.events(2, 7, "a")[1];
        assert_eq!(
            ev,
            &json!({"timestamp": 7, "host": "a", "metric": "b1", "value": 1.5})
        );
        let props = e.location("zk:1", "http://o");
        let config = e.config_with(&props, &["extra"]);
        let ds = config.data_source("metrics").unwrap();
        assert_eq!(ds.properties.get("druid.overlord.url"), Some("http://o"));
        assert_eq!(ds.properties.get("zookeeper.connect"), Some("zk:1"));
    }
}
