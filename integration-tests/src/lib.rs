//! Harness for the end-to-end tests: real services on free loopback ports.
//!
//! Each test starts what it needs ([`ZooKeeper`], [`Tansu`], [`DruidProxy`], the last two from
//! `test_support::harness`) on ports taken by binding port 0, so tests never share a fixed
//! port. A service is stopped when its handle drops.
//! Binaries are found through environment variables with sensible fallbacks:
//!
//! | variable | default |
//! | --- | --- |
//! | `ZOOKEEPER_CLASSPATH` | `/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar` (Debian's `zookeeper`) |
//! | (none) | Curator's jars from Debian under `/usr/share/java` for the mixed-fleet tests ([`java`]); they skip, saying so, without them |
//! | `TANSU_BIN` | `tansu` on `PATH`, else `$CARGO_HOME/bin/tansu` |
//! | `STUNNEL_BIN` | `stunnel4` (Debian's `stunnel4`), the TLS proxy in front of tansu |
//! | `TRANQUILITY_PYTHON` | none: tests that need Python fail and say to run `scripts/test.sh` |
//! | `TRANQUILITY_REAL_DRUID` | unset: tests against a real Druid ([`real_druid`]) skip, saying so, when it is not installed; `require` fails them |

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use test_support::harness::{kill, log_tail};
pub use test_support::harness::{DruidProxy, Tansu, TansuOptions};

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    test_support::harness::free_port().expect("binding 127.0.0.1:0 must work")
}

/// Lines of a child's output, read on a thread.
pub fn lines_of(stream: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A name unlikely to clash with other tests' names: `prefix-<pid>-<counter>-<nanos>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The Python interpreter of the test venv (with pydruid and confluent-kafka).
pub fn python() -> PathBuf {
    match std::env::var_os("TRANQUILITY_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "TRANQUILITY_PYTHON is not set: run the suite through scripts/test.sh, \
             which creates a venv with pydruid and confluent-kafka"
        ),
    }
}

/// Waits until `ready` says yes, or panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} not ready after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A real ZooKeeper server (standalone) on a free loopback port, with its own data dir.
#[derive(Debug)]
pub struct ZooKeeper {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl ZooKeeper {
    /// Starts ZooKeeper and waits until it serves requests.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for ZooKeeper");
        let mut zk = ZooKeeper {
            port: free_port(),
            dir,
            child: None,
        };
        zk.spawn();
        zk
    }

    /// `127.0.0.1:<port>`, the connect string for clients.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (as a crash would), keeping its data dir.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts the server again on the same port and data dir.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn spawn(&mut self) {
        let cfg = self.dir.path().join("zoo.cfg");
        let config = format!(
            "tickTime=2000\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n4lw.commands.whitelist=ruok,srvr,stat,mntr\n\
             maxSessionTimeout=60000\n",
            self.dir.path().join("data").display(),
            self.port
        );
        std::fs::write(&cfg, config).expect("write zoo.cfg");
        let log_path = self.dir.path().join("zk.log");
        let log = std::fs::File::create(&log_path).expect("ZooKeeper log file");
        let classpath = std::env::var("ZOOKEEPER_CLASSPATH").unwrap_or_else(|_| {
            "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar".into()
        });
        let child = Command::new("java")
            .args(["-Xmx256m", "-cp", &classpath])
            .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("start ZooKeeper (is Java and Debian's zookeeper package installed?)");
        self.child = Some(child);
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if four_letter(addr, "srvr").is_some_and(|r| r.contains("Mode: standalone")) {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("ZooKeeper exited ({status}): {}", log_tail(&log_path));
            }
            assert!(
                Instant::now() < deadline,
                "ZooKeeper not serving after 30 s: {}",
                log_tail(&log_path)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        self.stop();
    }
}

fn four_letter(addr: SocketAddr, word: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    stream.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A TLS-terminating proxy (Debian's `stunnel4`) on a free loopback port, in front of a
/// plaintext port: what gives the test broker, which has no TLS listener, one.
#[derive(Debug)]
pub struct Stunnel {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Stunnel {
    /// Serves TLS on a free port with the PEM certificate chain and key, forwarding each
    /// connection to `127.0.0.1:<upstream>`; waits until it accepts connections.
    pub fn start(upstream: u16, cert: &Path, key: &Path) -> Self {
        Self::start_on(free_port(), upstream, cert, key)
    }

    /// Like [`Stunnel::start`] on a chosen port (one a broker already advertises).
    pub fn start_on(port: u16, upstream: u16, cert: &Path, key: &Path) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for stunnel");
        let conf = dir.path().join("stunnel.conf");
        std::fs::write(
            &conf,
            format!(
                "foreground = yes\npid =\nsyslog = no\ndebug = 4\n\n[kafka]\n\
                 accept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{upstream}\n\
                 cert = {}\nkey = {}\n",
                cert.display(),
                key.display()
            ),
        )
        .expect("write stunnel.conf");
        let log_path = dir.path().join("stunnel.log");
        let log = std::fs::File::create(&log_path).expect("stunnel log file");
        let bin = std::env::var_os("STUNNEL_BIN").unwrap_or_else(|| "stunnel4".into());
        let child = Command::new(&bin)
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("start stunnel4 (Debian package stunnel4; scripts/test.sh installs it)");
        let mut proxy = Stunnel {
            port,
            dir,
            child: Some(child),
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = proxy
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("stunnel exited ({status}): {}", log_tail(&log_path));
            }
            assert!(
                Instant::now() < deadline,
                "stunnel not listening after 30 s: {}",
                log_tail(&log_path)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        proxy
    }

    /// `127.0.0.1:<port>`, for `bootstrap.servers`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its log so far (for a failing test's message).
    pub fn log(&self) -> String {
        log_tail(&self.dir.path().join("stunnel.log"))
    }
}

impl Drop for Stunnel {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

pub mod backends;
pub mod java;
/// Native queries against druid-local (or any Druid broker), for checking what arrived.
pub mod kafka;
pub mod modern;
pub mod partition;
pub mod real_druid;
pub mod target;

pub mod druid {
    use std::time::{Duration, Instant};

    use serde_json::{json, Value};

    /// POSTs a native query to `{druid_url}/druid/v2` and returns the JSON answer.
    pub async fn query(druid_url: &str, query: &Value) -> Value {
        let response = reqwest::Client::new()
            .post(format!("{druid_url}/druid/v2"))
            .json(query)
            .send()
            .await
            .expect("query request");
        let status = response.status();
        let body: Value = response.json().await.expect("query answer is JSON");
        assert!(status.is_success(), "query failed ({status}): {body}");
        body
    }

    /// The sum of the longSum metric `count_metric` over all time: the events ingested when
    /// the metric is the dataSource's `count`.
    pub async fn count(druid_url: &str, data_source: &str, count_metric: &str) -> i64 {
        let answer = query(
            druid_url,
            &json!({
                "queryType": "timeseries",
                "dataSource": data_source,
                "granularity": "all",
                "intervals": ["1000-01-01/3000-01-01"],
                "aggregations": [{"type": "longSum", "name": "n", "fieldName": count_metric}]
            }),
        )
        .await;
        answer
            .pointer("/0/result/n")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }

    /// Polls [`count`] until it reaches `expected` or `timeout` passes; returns the last count.
    pub async fn wait_for_count(
        druid_url: &str,
        data_source: &str,
        count_metric: &str,
        expected: i64,
        timeout: Duration,
    ) -> i64 {
        let deadline = Instant::now() + timeout;
        loop {
            let n = count(druid_url, data_source, count_metric).await;
            if n >= expected || Instant::now() >= deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// druid-local's counters of a task: `processed` (rows ingested), `skippedRequests`
    /// (pushes skipped by producer-sequence dedup), ...
    pub async fn task_metrics(druid_url: &str, task_id: &str) -> Value {
        reqwest::get(format!("{druid_url}/druid-local/v1/task/{task_id}/metrics"))
            .await
            .expect("task metrics request")
            .json()
            .await
            .expect("task metrics are JSON")
    }

    /// The rows of a groupBy over all time (`granularity`, e.g. `all` or `minute`), each
    /// row's `event` with its bucket's start under `timestamp`, in the answer's order.
    pub async fn group_by(
        druid_url: &str,
        data_source: &str,
        granularity: &str,
        dimensions: &[&str],
        aggregations: Value,
    ) -> Vec<Value> {
        let answer = query(
            druid_url,
            &json!({
                "queryType": "groupBy",
                "dataSource": data_source,
                "granularity": granularity,
                "intervals": ["1000-01-01/3000-01-01"],
                "dimensions": dimensions,
                "aggregations": aggregations
            }),
        )
        .await;
        answer
            .as_array()
            .into_iter()
            .flatten()
            .map(|row| {
                let mut event = row["event"].clone();
                event["timestamp"] = row["timestamp"].clone();
                event
            })
            .collect()
    }

    /// The Overlord's running tasks of a dataSource (ids).
    pub async fn running_task_ids(druid_url: &str, data_source: &str) -> Vec<String> {
        let tasks: Value = reqwest::get(format!("{druid_url}/druid/indexer/v1/runningTasks"))
            .await
            .expect("runningTasks request")
            .json()
            .await
            .expect("runningTasks is JSON");
        let mut ids: Vec<String> = tasks
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["dataSource"] == data_source)
            .filter_map(|t| t["id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    }
}

/// Pipelines and events for end-to-end tests: one schemaless dataSource with a `count` metric.
pub mod setup {
    use std::sync::Arc;

    use bytes::Bytes;
    use serde_json::json;
    use tranquility::beam::Outcome;
    use tranquility::coord::LocalCoordinator;
    use tranquility::pipeline::Pipelines;
    use tranquility::spec::TranquilityConfig;

    /// Now, in epoch millis.
    pub fn now_millis() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    /// A config with one dataSource (schemaless dimensions, a `count` metric, millisecond
    /// `timestamp`, windowPeriod PT10M) with `segment` granularity and global `properties`.
    pub fn config(
        data_source: &str,
        segment: &str,
        properties: &[(&str, &str)],
    ) -> TranquilityConfig {
        let props: serde_json::Map<String, serde_json::Value> = properties
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let text = json!({
            "dataSources": [{
                "spec": {
                    "dataSchema": {
                        "dataSource": data_source,
                        "parser": {"type": "string", "parseSpec": {"format": "json",
                            "timestampSpec": {"column": "timestamp", "format": "millis"},
                            "dimensionsSpec": {"dimensions": []}}},
                        "metricsSpec": [{"type": "count", "name": "count"}],
                        "granularitySpec": {"type": "uniform", "segmentGranularity": segment,
                            "queryGranularity": "none"}
                    },
                    "tuningConfig": {"type": "realtime", "windowPeriod": "PT10M"}
                }
            }],
            "properties": props
        });
        TranquilityConfig::from_str(&text.to_string(), "test.json").expect("test config")
    }

    /// `n` events at `ts`, each `{"timestamp":ts,"tag":tag,"i":i}`.
    pub fn events(n: usize, ts: i64, tag: &str) -> Vec<Bytes> {
        (0..n)
            .map(|i| Bytes::from(json!({"timestamp": ts, "tag": tag, "i": i}).to_string()))
            .collect()
    }

    /// Pipelines for one process: the in-process coordinator and the Overlord at `overlord_url`.
    pub fn local_pipelines(config: &TranquilityConfig, overlord_url: &str) -> Pipelines {
        Pipelines::builder()
            .coordinator(Arc::new(LocalCoordinator::new()))
            .overlord_url(overlord_url)
            .build(config)
            .expect("pipelines")
    }

    /// Fails naming a few outcomes that are not `Sent`.
    pub fn assert_all_sent(outcomes: &[Outcome]) {
        let bad: Vec<_> = outcomes.iter().filter(|o| !o.is_sent()).take(3).collect();
        assert!(bad.is_empty(), "not all sent, e.g. {bad:?}");
    }
}
