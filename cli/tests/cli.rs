//! The `tranquility` binary as a user runs it: help, configuration errors, `quickstart` taking
//! a curl-style post and answering a query, and `push` from a file and from stdin.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::lines_of;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_tranquility");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[cfg(not(feature = "fluvio"))]
fn fluvio_without_its_feature_says_how_to_get_it() {
    let (code, _, err) = run(&["fluvio", "-configFile", "fluvio.json"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--features fluvio"), "{err}");
}

#[test]
fn every_subcommand_has_help() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for sub in [
        "server",
        "local",
        "quickstart",
        "push",
        "console",
        "kafka",
        "fluvio",
        "spec",
        "reindex",
        "bench",
    ] {
        assert!(out.contains(sub), "{out}");
        let (code, out, err) = run(&[sub, "--help"]);
        assert_eq!(code, 0, "{sub}: {err}");
        assert!(out.contains(&format!("Usage: tranquility {sub}")), "{out}");
    }
    let (_, out, _) = run(&["quickstart", "--help"]);
    for flag in [
        "--port",
        "--druid-port",
        "--data-dir",
        "--config-file",
        "--druid-version",
        "--kafka",
    ] {
        assert!(out.contains(flag), "{out}");
    }
    // No subcommand: usage, and the usage-error code.
    let (code, _, err) = run(&[]);
    assert_eq!(code, 2);
    assert!(err.contains("Usage"), "{err}");
}

/// `tranquility spec` prints what would be submitted, per backend, and says what is missing.
#[test]
fn spec_prints_each_backends_submission() {
    let example = test_support::example_configs().join("server.yaml");
    let example = example.to_str().unwrap();
    let (code, out, err) = run(&["spec", "-configFile", example, "--backend", "realtime"]);
    assert_eq!(code, 0, "{err}");
    let all: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(all["clicks"]["type"], "index_realtime", "{out}");
    assert_eq!(all["metrics"]["type"], "index_realtime", "{out}");

    let (code, out, err) = run(&[
        "spec",
        "-configFile",
        example,
        "-dataSource",
        "metrics",
        "--backend",
        "batch",
    ]);
    assert_eq!(code, 0, "{err}");
    let task: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(task["type"], "index_parallel");
    assert_eq!(task["spec"]["ioConfig"]["inputSource"]["type"], "inline");
    assert_eq!(
        task["spec"]["dataSchema"]["timestampSpec"]["column"],
        "timestamp"
    );

    // auto is decided at run time: the command asks which to print.
    let (code, _, err) = run(&["spec", "-configFile", example]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--backend"), "{err}");
    // The supervisor needs its brokers; with them, the spec carries its hash.
    let (code, _, err) = run(&["spec", "-configFile", example, "--backend", "supervisor"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("druid.ingestion.kafka.bootstrap.servers"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example).unwrap().replace(
        "properties:\n",
        "properties:\n  druid.ingestion: supervisor\n  druid.ingestion.kafka.bootstrap.servers: k1:9092\n",
    );
    let file = write(dir.path(), "s.yaml", &text);
    let (code, out, err) = run(&["spec", "-configFile", &file, "--data-source", "clicks"]);
    assert_eq!(code, 0, "{err}");
    let sup: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sup["type"], "kafka");
    assert_eq!(sup["spec"]["ioConfig"]["topic"], "tranquility-clicks");
    assert!(
        sup["context"]["tranquility.specSha256"].is_string(),
        "{out}"
    );
    let (code, _, err) = run(&["spec", "-configFile", &file, "--data-source", "nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no dataSource 'nope'") && err.contains("clicks"),
        "{err}"
    );
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const SPEC: &str = r#"{"dataSchema":{"dataSource":"wiki",
    "parser":{"type":"string","parseSpec":{"format":"json",
      "timestampSpec":{"column":"timestamp","format":"auto"},
      "dimensionsSpec":{"dimensions":[]}}},
    "metricsSpec":[{"type":"count","name":"count"}],
    "granularitySpec":{"segmentGranularity":"hour","queryGranularity":"none"}},
  "tuningConfig":{"type":"realtime","windowPeriod":"PT10M"}}"#;

#[test]
fn config_errors_exit_2_naming_file_property_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "port.json",
            format!(
                r#"{{"dataSources":[{{"spec":{SPEC}}}],"properties":{{"http.port":"99999"}}}}"#
            ),
            "http.port",
            "99999",
        ),
        (
            "period.json",
            format!(
                r#"{{"dataSources":[{{"spec":{SPEC},"properties":{{"druidBeam.firehoseGracePeriod":"soon"}}}}]}}"#
            ),
            "druidBeam.firehoseGracePeriod",
            "soon",
        ),
        (
            "bind.yaml",
            format!(
                "dataSources:\n  - spec: {}\nproperties:\n  http.bindAddress: nowhere\n",
                SPEC.replace('\n', " ")
            ),
            "http.bindAddress",
            "nowhere",
        ),
    ];
    for (name, text, property, value) in cases {
        let path = write(dir.path(), name, &text);
        for flag in ["-configFile", "--config-file"] {
            let (code, _, err) = run(&["server", flag, &path]);
            assert_eq!(code, 2, "{name}: {err}");
            for part in [name, property, value] {
                assert!(err.contains(part), "{name}: '{part}' not in {err}");
            }
        }
    }
    let (code, _, err) = run(&["server", "-configFile", "/no/such/server.json"]);
    assert_eq!(code, 2);
    assert!(err.contains("/no/such/server.json"), "{err}");
}

fn field_after(line: &str, label: &str) -> Option<String> {
    let rest = line.trim().strip_prefix(label)?;
    Some(rest.trim().to_string())
}

async fn count_rows(druid_url: &str, data_source: &str) -> u64 {
    let query = json!({
        "queryType": "timeseries", "dataSource": data_source, "granularity": "all",
        "intervals": ["1970-01-01/2100-01-01"],
        "aggregations": [{"type": "longSum", "name": "count", "fieldName": "count"}]
    });
    let rows: Value = reqwest::Client::new()
        .post(format!("{druid_url}/druid/v2"))
        .json(&query)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    rows.get(0)
        .and_then(|r| r["result"]["count"].as_u64())
        .unwrap_or(0)
}

async fn wait_for_rows(druid_url: &str, data_source: &str, expected: u64) {
    wait_for_rows_within(druid_url, data_source, expected, Duration::from_secs(20)).await
}

async fn wait_for_rows_within(druid_url: &str, data_source: &str, expected: u64, wait: Duration) {
    let deadline = Instant::now() + wait;
    loop {
        let got = count_rows(druid_url, data_source).await;
        if got == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{got} rows, expected {expected}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A running `tranquility quickstart` child and the URLs it printed.
struct Quickstart {
    child: std::process::Child,
    stderr: mpsc::Receiver<String>,
    push_url: String,
    druid_url: String,
    /// The banner's lines up to the query URL.
    banner: Vec<String>,
}

impl Quickstart {
    fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["quickstart", "--port", "0", "--druid-port", "0"])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        let (mut push_url, mut query_url) = (None, None);
        let mut banner = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while query_url.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = stdout.recv_timeout(left) else {
                let _ = child.kill();
                let logs: Vec<String> = stderr.try_iter().collect();
                panic!("quickstart printed no query URL: {logs:#?}")
            };
            push_url = push_url.or(field_after(&line, "push URL:"));
            query_url = query_url.or(field_after(&line, "query URL:"));
            banner.push(line);
        }
        let druid_url = query_url.unwrap().trim_end_matches("/druid/v2").to_string();
        Self {
            child,
            stderr,
            push_url: push_url.expect("push URL before query URL"),
            druid_url,
            banner,
        }
    }

    async fn post(&self, url: &str, body: String) -> Value {
        let res = reqwest::Client::new()
            .post(url)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["result"].clone()
    }

    /// SIGTERM, then the exit code and every log line.
    async fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("quickstart did not stop after SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The reader thread ends with the child's stderr.
        (exit.code(), self.stderr.iter().collect())
    }
}

#[tokio::test]
async fn quickstart_takes_a_curl_post_and_answers_a_query() {
    let qs = Quickstart::start(&[]);
    assert!(
        qs.push_url.ends_with("/v1/post/quickstart"),
        "{}",
        qs.push_url
    );
    // What the printed curl example sends: an ISO timestamp and any other fields.
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let answer = qs
        .post(
            &qs.push_url,
            format!(r#"{{"timestamp":"{now}","page":"Main","user":"alice"}}"#),
        )
        .await;
    assert_eq!(
        answer,
        json!({"received": 1, "sent": 1, "dropped": 0, "failed": 0})
    );
    wait_for_rows(&qs.druid_url, "quickstart", 1).await;

    let (code, logs) = qs.terminate().await;
    assert_eq!(code, Some(0), "{logs:#?}");
    assert!(
        logs.iter().any(|l| l.contains("final counts")
            && l.contains("dataSource=quickstart")
            && l.contains("received=1 sent=1 dropped=0 failed=0")),
        "{logs:#?}"
    );
}

#[tokio::test]
async fn quickstart_serves_the_data_sources_of_a_config_file() {
    let example = test_support::peer_data_or_skip!("tranquility-configs/server.yaml.example");
    quickstart_serves(&example, "foo", |i| json!({"dim1": i, "x": 1.5})).await;
}

#[tokio::test]
async fn quickstart_serves_the_yaml_example() {
    let example = test_support::example_configs().join("server.yaml");
    quickstart_serves(
        &example,
        "clicks",
        |i| json!({"page": format!("p{i}"), "country": "NZ", "clicks": 1}),
    )
    .await;
}

/// `tranquility quickstart -configFile file`: the first dataSource's URL is printed, and four
/// events made by `event` are sent and counted.
async fn quickstart_serves(file: &Path, data_source: &str, event: fn(u64) -> Value) {
    let qs = Quickstart::start(&["-configFile", &file.display().to_string()]);
    assert!(
        qs.push_url.ends_with(&format!("/v1/post/{data_source}")),
        "{}",
        qs.push_url
    );
    let events: Vec<Value> = (0..4)
        .map(|i| {
            let mut e = event(i);
            e["timestamp"] = Value::from(now_millis());
            e
        })
        .collect();
    let answer = qs
        .post(&qs.push_url, serde_json::to_string(&events).unwrap())
        .await;
    assert_eq!(answer["sent"], 4, "{answer}");
    wait_for_rows(&qs.druid_url, data_source, 4).await;
    let (code, logs) = qs.terminate().await;
    assert_eq!(code, Some(0), "{logs:#?}");
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A config with `wiki` and `other`, sending to `overlord` and finding tasks through it.
fn push_config(dir: &Path, overlord: &str, extra: &str) -> String {
    let other = SPEC.replace(r#""dataSource":"wiki""#, r#""dataSource":"other""#);
    write(
        dir,
        "push.json",
        &format!(
            r#"{{"dataSources":[{{"spec":{SPEC}}},{{"spec":{other}}}],
                "properties":{{"druid.overlord.url":"{overlord}",
                  "druidBeam.taskLocator":"overlord"{extra}}}}}"#
        ),
    )
}

async fn push(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    command("push", args, stdin).await
}

async fn command(name: &str, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(BIN)
        .arg(name)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or("").as_bytes())
        .await
        .unwrap();
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("push finishes")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_sends_a_file_and_stdin_and_prints_the_counts() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = push_config(dir.path(), &druid.url(), "");
    let t = now_millis();
    let mut lines: Vec<String> = (0..5)
        .map(|i| format!(r#"{{"timestamp":{t},"dataSource":"wiki","i":{i}}}"#))
        .collect();
    lines.push(format!(r#"{{"timestamp":{t},"feed":"wiki","i":5}}"#));
    lines.push(String::new());
    lines.push("not json".into());
    lines.push(r#"{"timestamp":"2000-01-01T00:00:00Z","dataSource":"wiki"}"#.into());
    lines.push(format!(r#"{{"timestamp":{t},"dataSource":"nope"}}"#));
    lines.push(format!(r#"{{"timestamp":{t}}}"#));
    let file = write(dir.path(), "events.ndjson", &(lines.join("\n") + "\n"));

    let (code, out, err) = push(
        &[&file, "-configFile", &config, "--local-coordination"],
        None,
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(
            "received 10, sent 6, dropped 4, failed 0 (dropped: no_data_source 1, \
             outside_window 1, unknown_data_source 1, unparseable 1)"
        ),
        "{out}\n{err}"
    );
    wait_for_rows(&druid.url(), "wiki", 6).await;

    let stdin: String = (0..3)
        .map(|i| format!("{{\"timestamp\":{t},\"i\":{i}}}\n"))
        .collect();
    let (code, out, err) = push(
        &[
            "-",
            "--config-file",
            &config,
            "--data-source",
            "other",
            "--local-coordination",
        ],
        Some(&stdin),
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("received 3, sent 3, dropped 0, failed 0"),
        "{out}"
    );
    wait_for_rows(&druid.url(), "other", 3).await;
    assert_eq!(count_rows(&druid.url(), "wiki").await, 6);

    // An unknown --data-source is a configuration error.
    let (code, _, err) = push(
        &["-", "--config-file", &config, "--data-source", "nope"],
        None,
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nope") && err.contains("push.json"), "{err}");
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_reads_stdin_into_the_only_or_the_named_data_source_as_the_original() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let t = now_millis();
    let stdin: String = (0..3)
        .map(|i| format!("{{\"timestamp\":{t},\"i\":{i}}}\n"))
        .collect();
    // One dataSource in the file: no -dataSource needed.
    let single = write(
        dir.path(),
        "console.json",
        &format!(
            r#"{{"dataSources":[{{"spec":{SPEC}}}],
                "properties":{{"druid.overlord.url":"{}","druidBeam.taskLocator":"overlord"}}}}"#,
            druid.url()
        ),
    );
    let (code, out, err) = command(
        "console",
        &["-configFile", &single, "--local-coordination"],
        Some(&stdin),
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("received 3, sent 3, dropped 0, failed 0"),
        "{out}"
    );
    assert!(
        err.contains("Sent[3], dropped[0], failed[0] messages to Druid."),
        "{err}"
    );
    wait_for_rows(&druid.url(), "wiki", 3).await;

    // Several: the original's refusal without -dataSource, and -dataSource picks one.
    let both = push_config(dir.path(), &druid.url(), "");
    let (code, _, err) = command("console", &["-configFile", &both], Some(&stdin)).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("-dataSource"), "{err}");
    let (code, out, err) = command(
        "console",
        &[
            "-configFile",
            &both,
            "-dataSource",
            "other",
            "--local-coordination",
        ],
        Some(&stdin),
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    wait_for_rows(&druid.url(), "other", 3).await;
    druid.shutdown().await;
}

#[tokio::test]
async fn push_exits_1_when_events_fail() {
    // Nothing listens there: task creation fails, so every event fails.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = push_config(
        dir.path(),
        &format!("http://127.0.0.1:{port}"),
        r#","druidBeam.indexRetryPeriod":"PT0S""#,
    );
    let stdin = format!("{{\"timestamp\":{}}}\n", now_millis());
    let (code, out, err) = push(
        &[
            "-",
            "--config-file",
            &config,
            "--data-source",
            "wiki",
            "--local-coordination",
        ],
        Some(&stdin),
    )
    .await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("received 1, sent 0, dropped 0, failed 1"),
        "{out}\n{err}"
    );
    assert!(err.contains("1 of 1 events failed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_serves_the_original_example_through_zookeeper() {
    let example = test_support::peer_data_or_skip!("tranquility-configs/server.json.example");
    serves_through_zookeeper(&example, "foo", |i| json!({"dim1": i, "x": 2.0})).await;
}

/// The repository's own YAML example (map shape) as a user runs it, addresses changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_serves_the_yaml_example_through_zookeeper() {
    let example = test_support::example_configs().join("server.yaml");
    serves_through_zookeeper(
        &example,
        "metrics",
        |i| json!({"host": format!("h{i}"), "metric": "cpu", "value": 2.0}),
    )
    .await;
}

/// Runs `tranquility server` on `file` (JSON or YAML, written back in its own format) with
/// ZooKeeper, the Overlord and the port pointed at the test's, posts three events made by
/// `event` to `data_source`, and checks the answer, the rows and the final counts on SIGTERM.
async fn serves_through_zookeeper(file: &Path, data_source: &str, event: fn(u64) -> Value) {
    let zk = integration_tests::ZooKeeper::start();
    let druid = DruidLocal::start(DruidLocalConfig {
        zk: Some(zk.connect_string()),
        ..DruidLocalConfig::ephemeral()
    })
    .await
    .unwrap();
    let text = std::fs::read_to_string(file).unwrap();
    let mut config: Value = serde_yaml_ng::from_str(&text).unwrap();
    config["properties"]["zookeeper.connect"] = Value::from(zk.connect_string());
    if config["properties"].get("druid.overlord.url").is_some() {
        config["properties"]["druid.overlord.url"] = Value::from(druid.url());
    }
    config["properties"]["http.port"] = Value::from("0");
    config["properties"]["http.bindAddress"] = Value::from("127.0.0.1");
    let dir = tempfile::tempdir().unwrap();
    let yaml = file.extension().is_some_and(|e| e == "yaml");
    let path = if yaml {
        write(
            dir.path(),
            "server.yaml",
            &serde_yaml_ng::to_string(&config).unwrap(),
        )
    } else {
        write(dir.path(), "server.json", &config.to_string())
    };

    let mut child = Command::new(BIN)
        .args(["server", "-configFile", &path])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = lines_of(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = stderr.recv_timeout(left) else {
            let _ = child.kill();
            panic!("the server did not say where it listens");
        };
        if line.contains("Tranquility Server listening") {
            let addr = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("addr="))
                .unwrap()
                .to_string();
            break addr;
        }
    };
    let events: Vec<Value> = (0..3)
        .map(|i| {
            let mut e = event(i);
            e["timestamp"] = Value::from(now_millis());
            e
        })
        .collect();
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/v1/post/{data_source}"))
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(
        answer["result"],
        json!({"received": 3, "sent": 3, "dropped": 0, "failed": 0})
    );
    wait_for_rows(&druid.url(), data_source, 3).await;

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.code(), Some(0));
    let logs: Vec<String> = stderr.iter().collect();
    assert!(
        logs.iter()
            .any(|l| l.contains("final counts") && l.contains("received=3 sent=3")),
        "{logs:#?}"
    );
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_push_from_an_open_stdin_with_every_event_counted() {
    use tokio::io::AsyncWriteExt;
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = push_config(dir.path(), &druid.url(), "");
    let mut child = tokio::process::Command::new(BIN)
        .args([
            "push",
            "-",
            "--config-file",
            &config,
            "--data-source",
            "wiki",
        ])
        .args(["--local-coordination", "--batch-lines", "1"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let t = now_millis();
    input
        .write_all(format!("{{\"timestamp\":{t}}}\n{{\"timestamp\":{t}}}\n").as_bytes())
        .await
        .unwrap();
    input.flush().await.unwrap();
    // Both events are in Druid while stdin is still open.
    wait_for_rows(&druid.url(), "wiki", 2).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("push stops after SIGTERM")
        .unwrap();
    drop(input);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("received 2, sent 2, dropped 0, failed 0"),
        "{stdout}"
    );
    assert!(
        stderr.contains("stopped before the end of the input"),
        "{stderr}"
    );
    druid.shutdown().await;
}

#[tokio::test]
async fn quickstart_restarts_on_the_same_data_dir_within_an_interval() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    for round in 0..2 {
        let qs = Quickstart::start(&["--data-dir", &data_dir]);
        let answer = qs
            .post(&qs.push_url, format!(r#"{{"timestamp":{}}}"#, now_millis()))
            .await;
        // The second run makes its own task for the same hour instead of colliding with the
        // first run's task id.
        assert_eq!(answer["sent"], 1, "round {round}: {answer}");
        let (code, logs) = qs.terminate().await;
        assert_eq!(code, Some(0), "{logs:#?}");
    }
}

/// Events of the built-in dataSource, `n` of them, each a row of its own.
fn quickstart_events(n: u64) -> String {
    let events: Vec<Value> = (0..n)
        .map(|i| json!({"timestamp": now_millis(), "page": format!("p{i}"), "user": "alice"}))
        .collect();
    serde_json::to_string(&events).unwrap()
}

/// The server's `GET /health`, next to the push URL.
async fn quickstart_health(qs: &Quickstart) -> Value {
    let base = qs.push_url.split("/v1/post").next().unwrap().to_string();
    reqwest::get(format!("{base}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn quickstart_on_druid_35_appends_batches() {
    let qs = Quickstart::start(&["--druid-version", "35.0.0"]);
    assert!(
        qs.banner.iter().any(|l| l.contains("backend:")
            && l.contains("batch, an index_parallel task per interval every 2000 ms")
            && l.contains("Druid 35.0.0")),
        "{:#?}",
        qs.banner
    );
    // A synchronous POST answers once the batch's task succeeded.
    let answer = qs.post(&qs.push_url, quickstart_events(5)).await;
    assert_eq!(
        answer,
        json!({"received": 5, "sent": 5, "dropped": 0, "failed": 0})
    );
    wait_for_rows(&qs.druid_url, "quickstart", 5).await;
    assert_eq!(
        quickstart_health(&qs).await["backends"]["quickstart"],
        "batch"
    );
    let tasks: Value = reqwest::get(format!("{}/druid/indexer/v1/tasks", qs.druid_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["type"].as_str())
        .collect();
    assert!(!types.is_empty(), "{tasks}");
    assert!(types.iter().all(|t| *t == "index_parallel"), "{tasks}");

    let (code, logs) = qs.terminate().await;
    assert_eq!(code, Some(0), "{logs:#?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("final counts")
                && l.contains("received=5 sent=5 dropped=0 failed=0")),
        "{logs:#?}"
    );
    // Nothing the batch backend ignores is set, so no warning names unused properties.
    assert!(
        !logs.iter().any(|l| l.contains("have no meaning")),
        "{logs:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_on_druid_35_with_kafka_goes_through_a_supervisor() {
    let broker = integration_tests::Tansu::start().expect("tansu starts");
    let brokers = broker.bootstrap_servers();
    let qs = Quickstart::start(&["--druid-version", "35.0.0", "--kafka", &brokers]);
    assert!(
        qs.banner.iter().any(|l| l.contains("backend:")
            && l.contains(&format!("supervisor, a Kafka topic on {brokers}"))),
        "{:#?}",
        qs.banner
    );
    // `sent` once the broker acknowledged them; then Druid's Kafka supervisor reads them.
    let answer = qs.post(&qs.push_url, quickstart_events(7)).await;
    assert_eq!(
        answer,
        json!({"received": 7, "sent": 7, "dropped": 0, "failed": 0})
    );
    wait_for_rows_within(&qs.druid_url, "quickstart", 7, Duration::from_secs(90)).await;
    assert_eq!(
        quickstart_health(&qs).await["backends"]["quickstart"],
        "supervisor"
    );
    let supervisor: Value = reqwest::get(format!(
        "{}/druid/indexer/v1/supervisor/quickstart",
        qs.druid_url
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        supervisor["spec"]["ioConfig"]["topic"], "tranquility-quickstart",
        "{supervisor}"
    );

    let (code, logs) = qs.terminate().await;
    assert_eq!(code, Some(0), "{logs:#?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("final counts")
                && l.contains("received=7 sent=7 dropped=0 failed=0")),
        "{logs:#?}"
    );
}

#[test]
fn quickstart_refuses_kafka_before_druid_31() {
    let (code, _, err) = run(&[
        "quickstart",
        "--kafka",
        "127.0.0.1:9092",
        "--port",
        "0",
        "--druid-port",
        "0",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--kafka needs --druid-version 31.0.0"),
        "{err}"
    );
}
