//! Task lifecycle end to end with a real ZooKeeper: submit, find the receiver through
//! ZooKeeper discovery and through the status location, push JSON and Smile, query, shutoff,
//! handoff, query again, restart from the same data dir, query again.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use zookeeper_client as zk;

/// A throwaway standalone ZooKeeper (Debian's `zookeeper` package) on a free loopback port,
/// killed when dropped (also when a test panics). ZooKeeper cannot take an already bound
/// socket, so the port is found by binding port 0 and released; if another process takes it
/// first, the server exits (or a foreign one answers with another data dir) and the start is
/// retried on a new port.
struct ZooKeeper {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl ZooKeeper {
    fn start() -> ZooKeeper {
        let jar = "/usr/share/java/zookeeper.jar";
        assert!(
            std::path::Path::new(jar).exists(),
            "ZooKeeper is not installed ({jar} missing): apt-get install zookeeper"
        );
        for _ in 0..3 {
            if let Some(zk) = ZooKeeper::try_start(jar) {
                return zk;
            }
        }
        panic!("ZooKeeper did not start (3 attempts on free ports)");
    }

    fn try_start(jar: &str) -> Option<ZooKeeper> {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let data_dir = dir.path().join("data");
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!("tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=srvr,conf\n", data_dir.display()),
        )
        .expect("write zoo.cfg");
        let child = Command::new("java")
            .args([
                "-Xmx256m",
                "-cp",
                &format!("{jar}:/usr/share/java/slf4j-simple.jar"),
                "org.apache.zookeeper.server.ZooKeeperServerMain",
            ])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("java starts");
        // Owned from here on: dropping it kills the process.
        let mut zk = ZooKeeper {
            child,
            port,
            _dir: dir,
        };
        let ours = data_dir.display().to_string();
        for _ in 0..300 {
            if matches!(zk.child.try_wait(), Ok(Some(_))) {
                return None;
            }
            if four_letter(port, "srvr").contains("Mode: standalone") {
                // Make sure the server answering is the one we started.
                return four_letter(port, "conf").contains(&ours).then_some(zk);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Sends a ZooKeeper four-letter command and returns the answer (empty on any error).
fn four_letter(port: u16, cmd: &str) -> String {
    let mut out = String::new();
    if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.write_all(cmd.as_bytes());
        let _ = s.read_to_string(&mut out);
    }
    out
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn instances(client: &zk::Client, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for child in client.list_children(path).await.unwrap_or_default() {
        if let Ok((data, _)) = client.get_data(&format!("{path}/{child}")).await {
            out.push(serde_json::from_slice(&data).expect("ServiceInstance JSON"));
        }
    }
    out
}

const SERVICE: &str = "firehose:druid:overlord:wiki-010-0000-0000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_with_zookeeper_handoff_and_restart() {
    let zoo = ZooKeeper::start();
    let data = tempfile::tempdir().unwrap();
    let druid = start_with(Some(data.path()), Some(zoo.connect_string())).await;
    let base = druid.url();
    let c = reqwest::Client::new();
    let zkc = zk::Client::connect(&zoo.connect_string()).await.unwrap();

    // The Overlord is announced like Druid's leader.
    let overlords = instances(&zkc, "/druid/discovery/druid:overlord").await;
    assert_eq!(overlords.len(), 1);
    let o = &overlords[0];
    assert_eq!(o["name"], "druid:overlord");
    assert_eq!(o["address"], "127.0.0.1");
    assert_eq!(o["port"], druid.port());
    assert_eq!(o["sslPort"], -1);
    assert_eq!(o["serviceType"], "DYNAMIC");
    assert!(o["payload"].is_null() && o["uriSpec"].is_null() && o["registrationTimeUTC"].is_i64());

    let (status, _) = post(
        &c,
        &format!("{base}/druid/indexer/v1/task"),
        &task("t_life", "wiki", SERVICE, &iso_in(4), 1000),
    )
    .await;
    assert_eq!(status, 200);

    // Found through ZooKeeper: full name and alias.
    let mut found = Vec::new();
    for _ in 0..100 {
        found = instances(&zkc, &format!("/druid/discovery/{SERVICE}")).await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(found.len(), 1, "receiver announced");
    assert_eq!(found[0]["name"], SERVICE);
    let alias = instances(&zkc, "/druid/discovery/wiki-010-0000-0000").await;
    assert_eq!(alias.len(), 1, "alias announced");
    let via_zk = format!(
        "http://{}:{}",
        found[0]["address"].as_str().unwrap(),
        found[0]["port"]
    );
    // And through the status location.
    let (_, st) = get(&c, &format!("{base}/druid/indexer/v1/task/t_life/status")).await;
    let loc = &st["status"]["location"];
    assert_eq!(
        format!("http://{}:{}", loc["host"].as_str().unwrap(), loc["port"]),
        via_zk
    );

    let push = format!("{via_zk}/druid/worker/v1/chat/{SERVICE}/push-events");
    let (status, v) = post(&c, &push, &json!([{"timestamp": "2024-01-01T10:00:05Z", "page": "A", "language": "en", "added": 3}, {"timestamp": "2024-01-01T10:00:35Z", "page": "A", "language": "en", "added": 4}])).await;
    assert_eq!((status, v), (200, json!({"eventCount": 2})));
    let smile = serde_smile::to_vec(
        &json!([{"timestamp": "2024-01-01T10:30:00Z", "page": "B", "language": "fr", "added": 10}]),
    )
    .unwrap();
    let r = c
        .post(&push)
        .header("Content-Type", "application/x-jackson-smile")
        .body(smile)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let q = json!({"queryType": "groupBy", "dataSource": "wiki", "intervals": ["2024-01-01/2024-01-02"], "granularity": "all", "dimensions": ["page"],
        "aggregations": [{"type": "longSum", "name": "events", "fieldName": "count"}, {"type": "longSum", "name": "added", "fieldName": "added"}]});
    let expected = json!([
        {"version": "v1", "timestamp": "2024-01-01T00:00:00.000Z", "event": {"page": "A", "events": 2, "added": 7}},
        {"version": "v1", "timestamp": "2024-01-01T00:00:00.000Z", "event": {"page": "B", "events": 1, "added": 10}}
    ]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(query(&c, &base, &q).await, expected, "realtime rows");

    // Shutoff: the full name goes away, the task hands off and succeeds.
    assert_eq!(wait_done(&c, &base, "t_life", 20).await, "SUCCESS");
    assert!(
        instances(&zkc, &format!("/druid/discovery/{SERVICE}"))
            .await
            .is_empty(),
        "full name unannounced at close"
    );
    assert!(
        instances(&zkc, "/druid/discovery/wiki-010-0000-0000")
            .await
            .is_empty(),
        "alias unannounced at exit"
    );
    let (_, m) = get(&c, &format!("{base}/druid-local/v1/task/t_life/metrics")).await;
    assert_eq!(m["handOffCount"], 1);
    assert_eq!(query(&c, &base, &q).await, expected, "handed-off rows");
    let (status, _) = post(&c, &push, &json!([])).await;
    assert_eq!(status, 400, "the receiver is gone after the task ends");

    // A second task left running is failed clearly by the restart.
    post(
        &c,
        &format!("{base}/druid/indexer/v1/task"),
        &task("t_running", "wiki", "firehose:other", &iso_in(600), 10),
    )
    .await;
    wait_handler(&c, &base, "firehose:other").await;
    post(
        &c,
        &format!("{base}/druid/worker/v1/chat/firehose:other/push-events"),
        &json!([{"timestamp": "2024-01-01T10:10:00Z", "page": "Z", "added": 1}]),
    )
    .await;
    druid.shutdown().await;
    assert!(
        instances(&zkc, "/druid/discovery/druid:overlord")
            .await
            .is_empty(),
        "overlord unannounced on shutdown"
    );

    let druid = start_with(Some(data.path()), Some(zoo.connect_string())).await;
    let base = druid.url();
    assert_eq!(
        query(&c, &base, &q).await,
        expected,
        "handed-off rows survive a restart; the running task's rows are gone"
    );
    assert_eq!(status_code(&c, &base, "t_life").await, "SUCCESS");
    let (_, st) = get(
        &c,
        &format!("{base}/druid/indexer/v1/task/t_running/status"),
    )
    .await;
    assert_eq!(st["status"]["statusCode"], "FAILED");
    assert!(st["status"]["errorMsg"]
        .as_str()
        .unwrap()
        .contains("stopped while this task was running"));
    let (status, v) = post(
        &c,
        &format!("{base}/druid/indexer/v1/task"),
        &task("t_life", "wiki", SERVICE, &iso_in(4), 1000),
    )
    .await;
    assert_eq!(
        status, 400,
        "ids are never reusable, even across restarts: {v}"
    );
    druid.shutdown().await;
}
