//! Harness for the end-to-end tests: real services on free loopback ports.
//!
//! Each test starts what it needs ([`ZooKeeper`], [`Tansu`]) on ports taken by binding port 0,
//! so tests never share a fixed port. A service is stopped when its handle drops.
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
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0 must work")
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

/// Kills and reaps a service's process, if it runs.
fn kill(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(2000);
    text.get(start..).unwrap_or(&text).to_string()
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

/// A real Kafka-protocol broker (tansu) on a free loopback port: in memory, or keeping its
/// topics, messages and committed offsets in a SQLite file across restarts.
#[derive(Debug)]
pub struct Tansu {
    port: u16,
    dir: tempfile::TempDir,
    persistent: bool,
    child: Option<Child>,
    advertised_port: u16,
    authentication: bool,
}

/// How a [`Tansu`] broker runs beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct TansuOptions {
    /// The port announced to clients in metadata, when it differs from the one the broker
    /// listens on (a TLS proxy in front of it: [`Stunnel`]).
    pub advertised_port: Option<u16>,
    /// SCRAM-SHA-512 users `(name, password)`: the broker then requires SASL authentication.
    /// tansu creates users only while authentication is off, so they are made first and the
    /// broker restarted (its data kept in SQLite).
    pub scram_users: Vec<(String, String)>,
}

impl Tansu {
    /// Starts an in-memory broker and waits until its port accepts connections.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts a broker that keeps its data (SQLite in its own folder) across
    /// [`Tansu::restart`], as a user's broker does.
    pub fn start_persistent() -> Self {
        Self::start_with(true)
    }

    fn start_with(persistent: bool) -> Self {
        Self::start_with_options(persistent, TansuOptions::default())
    }

    /// Starts a broker with `options` (kept across [`Tansu::restart`]).
    pub fn start_with_options(persistent: bool, options: TansuOptions) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for tansu");
        let port = free_port();
        let users = !options.scram_users.is_empty();
        let mut broker = Tansu {
            port,
            dir,
            persistent: persistent || users,
            child: None,
            advertised_port: port,
            authentication: false,
        };
        if users {
            broker.spawn();
            for (name, password) in &options.scram_users {
                broker.create_user(name, password);
            }
            broker.stop();
        }
        broker.advertised_port = options.advertised_port.unwrap_or(port);
        broker.authentication = users;
        broker.spawn();
        broker
    }

    fn create_user(&self, name: &str, password: &str) {
        let out = Command::new(tansu_bin())
            .args(["user", "create", "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .args([name, password, "--mechanism", "scram512"])
            .current_dir(self.dir.path())
            .output()
            .expect("run tansu user create");
        assert!(
            out.status.success(),
            "tansu user create {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The port the broker itself listens on (plaintext).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, for `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the broker (an in-memory broker's data is lost).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts the broker again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised_port);
        let log_path = self.dir.path().join("broker.log");
        let log = std::fs::File::create(&log_path).expect("tansu log file");
        // tansu reads a `.env` from its working directory, so it runs in its own empty folder.
        let child = Command::new(tansu_bin())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
            ])
            .args(self.authentication.then_some("--authentication"))
            .args([
                "--storage-engine",
                // A path relative to the broker's folder (its working directory).
                if self.persistent {
                    "sqlite://tansu.db"
                } else {
                    "memory://tansu/"
                },
            ])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("start tansu (run scripts/test.sh, which installs it)");
        self.child = Some(child);
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu not listening after 30 s: {}",
                log_tail(&log_path)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
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

fn tansu_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TANSU_BIN") {
        return PathBuf::from(bin);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("tansu"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if let Some(found) = on_path.into_iter().find(|p| p.is_file()) {
        return found;
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    cargo_home.join("bin").join("tansu")
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

/// An HTTP proxy in front of druid-local that can lose acknowledgements (it forwards a push to
/// the task, then answers the client 500 as if the answer never arrived), slow pushes down
/// (one at a time, each held a while) and refuse task submissions as a failing Overlord would. Task locations in the Overlord's answers are rewritten
/// to the proxy, so clients find tasks through it.
pub mod proxy {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use bytes::Bytes;
    use serde_json::Value;

    /// A running proxy; stops when dropped.
    #[derive(Debug)]
    pub struct LossyProxy {
        addr: SocketAddr,
        state: Arc<Shared>,
        task: tokio::task::JoinHandle<()>,
    }

    #[derive(Debug)]
    struct Shared {
        upstream: SocketAddr,
        proxy_port: AtomicUsize,
        lose_acks: AtomicUsize,
        lost: AtomicUsize,
        pushes: AtomicUsize,
        push_slot: tokio::sync::Semaphore,
        push_hold_ms: AtomicU64,
        /// True while answers to pushes are held back.
        answers_held: tokio::sync::watch::Sender<bool>,
        held: AtomicUsize,
        /// Task submissions to refuse: (task id suffix, how many more times).
        refuse_submits: std::sync::Mutex<Option<(String, usize)>>,
        http: reqwest::Client,
    }

    impl LossyProxy {
        /// Proxies `upstream` on a free loopback port.
        pub async fn start(upstream: SocketAddr) -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind proxy");
            let addr = listener.local_addr().expect("proxy address");
            let state = Arc::new(Shared {
                upstream,
                proxy_port: AtomicUsize::new(usize::from(addr.port())),
                lose_acks: AtomicUsize::new(0),
                lost: AtomicUsize::new(0),
                pushes: AtomicUsize::new(0),
                push_slot: tokio::sync::Semaphore::new(1),
                push_hold_ms: AtomicU64::new(0),
                answers_held: tokio::sync::watch::channel(false).0,
                held: AtomicUsize::new(0),
                refuse_submits: std::sync::Mutex::new(None),
                http: reqwest::Client::new(),
            });
            let app = axum::Router::new()
                .fallback(forward)
                .with_state(state.clone());
            let task = tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            LossyProxy { addr, state, task }
        }

        /// `http://127.0.0.1:<port>`.
        pub fn url(&self) -> String {
            format!("http://{}", self.addr)
        }

        /// The next `n` pushes reach the task but their answers are replaced by a 500.
        pub fn lose_next_acks(&self, n: usize) {
            self.state.lose_acks.store(n, Ordering::SeqCst);
        }

        /// From now on pushes go through one at a time, each held `hold` before it is
        /// forwarded: a slow Druid. Zero turns it off.
        pub fn slow_pushes(&self, hold: Duration) {
            let ms = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX);
            self.state.push_hold_ms.store(ms, Ordering::SeqCst);
        }

        /// From now on pushes reach the task, but their answers wait until
        /// [`LossyProxy::release_answers`]: pushes that Druid has taken and the sender does not
        /// know of yet.
        pub fn hold_answers(&self) {
            self.state.answers_held.send_replace(true);
        }

        /// Sends the held answers, and answers at once again.
        pub fn release_answers(&self) {
            self.state.answers_held.send_replace(false);
        }

        /// Answers held back so far (released ones included).
        pub fn held(&self) -> usize {
            self.state.held.load(Ordering::SeqCst)
        }

        /// The next `times` task submissions whose id ends with `id_suffix` are answered 500
        /// without reaching the Overlord.
        pub fn refuse_task_submits(&self, id_suffix: &str, times: usize) {
            *self
                .state
                .refuse_submits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((id_suffix.to_string(), times));
        }

        /// Acknowledgements lost so far.
        pub fn lost(&self) -> usize {
            self.state.lost.load(Ordering::SeqCst)
        }

        /// Push requests seen so far.
        pub fn pushes(&self) -> usize {
            self.state.pushes.load(Ordering::SeqCst)
        }
    }

    impl Drop for LossyProxy {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn forward(State(state): State<Arc<Shared>>, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let body = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(b) => b,
            Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        };
        if parts.method == axum::http::Method::POST && path == "/druid/indexer/v1/task" {
            let id = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|t| t["id"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let mut refuse = state
                .refuse_submits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((suffix, left)) = refuse.as_mut() {
                if *left > 0 && id.ends_with(suffix.as_str()) {
                    *left -= 1;
                    return (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("task {id} refused by the test"),
                    )
                        .into_response();
                }
            }
        }
        let hold = state.push_hold_ms.load(Ordering::SeqCst);
        let _slot = if hold > 0 && path.contains("/push-events") {
            let slot = state.push_slot.acquire().await.ok();
            tokio::time::sleep(Duration::from_millis(hold)).await;
            slot
        } else {
            None
        };
        let mut headers = parts.headers.clone();
        headers.remove("host");
        let upstream = state
            .http
            .request(parts.method, format!("http://{}{path}", state.upstream))
            .headers(headers)
            .body(body)
            .send()
            .await;
        let upstream = match upstream {
            Ok(r) => r,
            Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        };
        let status = upstream.status();
        let headers: HeaderMap = upstream.headers().clone();
        let bytes = upstream.bytes().await.unwrap_or_default();
        if path.contains("/push-events") {
            state.pushes.fetch_add(1, Ordering::SeqCst);
            let lose = state
                .lose_acks
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if lose {
                state.lost.fetch_add(1, Ordering::SeqCst);
                return (StatusCode::INTERNAL_SERVER_ERROR, "lost acknowledgement").into_response();
            }
            let mut gate = state.answers_held.subscribe();
            if *gate.borrow_and_update() {
                state.held.fetch_add(1, Ordering::SeqCst);
                let _ = gate.wait_for(|held| !*held).await;
            }
        }
        let bytes = if path.contains("/druid/indexer/v1/") {
            rewrite_locations(bytes, state.upstream.port(), &state)
        } else {
            bytes
        };
        let mut response = Response::new(Body::from(bytes));
        *response.status_mut() = status;
        if let Some(ct) = headers.get("content-type") {
            response.headers_mut().insert("content-type", ct.clone());
        }
        response
    }

    fn rewrite_locations(bytes: Bytes, upstream_port: u16, state: &Shared) -> Bytes {
        let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
            return bytes;
        };
        let proxy_port = state.proxy_port.load(Ordering::SeqCst);
        fn walk(v: &mut Value, from: u16, to: usize) {
            match v {
                Value::Object(map) => {
                    if let Some(Value::Object(location)) = map.get_mut("location") {
                        if location.get("port").and_then(Value::as_u64) == Some(u64::from(from)) {
                            location.insert("port".into(), Value::from(to));
                        }
                    }
                    map.values_mut().for_each(|c| walk(c, from, to));
                }
                Value::Array(items) => items.iter_mut().for_each(|c| walk(c, from, to)),
                _ => {}
            }
        }
        walk(&mut value, upstream_port, proxy_port);
        Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
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
