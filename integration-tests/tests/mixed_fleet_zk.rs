//! A Java instance and ours on one dataSource's metadata in a real ZooKeeper: the lock is the
//! real Curator `InterProcessSemaphoreMutex` on the Java side (Debian's Curator, driven by
//! `java/CuratorPeer.java` as the original's `ClusteredBeam` uses it), and each side waits
//! for the other; the data node either side creates is readable by the other.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use integration_tests::java::{JavaProcess, JavaProgram, CURATOR_JARS};
use integration_tests::{unique_name, ZooKeeper};
use tranquility::coord::{
    update_with, BeamMetadata, CoordError, Coordinator, ZkConnection, ZkCoordinator,
    ZkCoordinatorConfig,
};
use zookeeper_client as zk;

/// What the original writes into a data node it creates.
const EMPTY_META: &str = r#"{"latestTime":"1970-01-01T00:00:00.000Z","latestCloseTime":"1970-01-01T00:00:00.000Z","beams":{}}"#;

/// Generous bounds for a JVM to start and answer; never reached when things work.
const JAVA: Duration = Duration::from_secs(60);

struct Fleet {
    zk: ZooKeeper,
    base: String,
    identity: String,
    ours: Arc<ZkCoordinator>,
    java: JavaProcess,
}

impl Fleet {
    /// ZooKeeper, our coordinator and a Java peer on one identity; `None` (skipped) without
    /// Curator's jars.
    fn start(test: &str) -> Option<Fleet> {
        let program = JavaProgram::compile(test, "CuratorPeer.java", CURATOR_JARS)?;
        let zk = ZooKeeper::start();
        let base = format!("/{}/beams", unique_name("fleet"));
        let identity = format!("druid:overlord/{}", unique_name("ds"));
        let conn = ZkConnection::new(zk.connect_string(), Duration::from_secs(10))
            .with_op_timeout(Duration::from_secs(20));
        let ours = Arc::new(ZkCoordinator::new(
            Arc::new(conn),
            ZkCoordinatorConfig {
                base_path: base.clone(),
                lock_timeout: Duration::from_secs(120),
            },
        ));
        let dir = format!("{base}/{identity}");
        let mut java = program.spawn(&[&zk.connect_string(), "lock", &dir]);
        java.expect("ready", JAVA);
        Some(Fleet {
            zk,
            base,
            identity,
            ours,
            java,
        })
    }

    fn path(&self, rel: &str) -> String {
        format!("{}/{}/{rel}", self.base, self.identity)
    }

    async fn client(&self) -> zk::Client {
        zk::Client::connect(&self.zk.connect_string())
            .await
            .expect("connect")
    }

    /// The Java side's view of the data node.
    fn java_reads(&mut self) -> String {
        let line = self.java.call("read", "data ", JAVA);
        line["data ".len()..].to_owned()
    }
}

fn counter(meta: &BeamMetadata) -> u64 {
    meta.extra
        .get("counter")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

/// Waits until `dir` has `n` children, that is until `n` contenders hold or wait for a lease.
async fn wait_for_children(client: &zk::Client, dir: &str, n: usize) {
    let deadline = std::time::Instant::now() + JAVA;
    loop {
        let children = client.list_children(dir).await.unwrap_or_default();
        if children.len() == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{dir} never had {n} children: {children:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_and_ours_wait_for_each_other() {
    let Some(mut fleet) = Fleet::start("java_and_ours_wait_for_each_other") else {
        return;
    };
    let client = fleet.client().await;
    let leases = fleet.path("mutex/leases");

    // The original creates the data node; we read it.
    fleet.java.call("ensure-data", "ensured", JAVA);
    assert_eq!(
        fleet.ours.read(&fleet.identity).await.expect("read"),
        BeamMetadata::default()
    );

    // Java holds the lock: our update waits until it lets go.
    fleet.java.call("acquire", "acquired", JAVA);
    let ran = Arc::new(AtomicBool::new(false));
    let update = {
        let (ours, identity, ran) = (fleet.ours.clone(), fleet.identity.clone(), ran.clone());
        tokio::spawn(async move {
            update_with(ours.as_ref(), &identity, move |mut meta| async move {
                ran.store(true, Ordering::SeqCst);
                meta.extra.insert("counter".into(), 1.into());
                Ok(Some(meta))
            })
            .await
        })
    };
    // Two leases: Java's, and ours waiting behind it.
    wait_for_children(&client, &leases, 2).await;
    assert!(
        !ran.load(Ordering::SeqCst),
        "our update ran while Java held the lock"
    );
    fleet.java.call("release", "released", JAVA);
    let meta = update.await.expect("join").expect("our update");
    assert_eq!(counter(&meta), 1);

    // We hold the lock: Java's acquire waits until we let go.
    let (holding_tx, holding_rx) = tokio::sync::oneshot::channel();
    let (let_go_tx, let_go_rx) = tokio::sync::oneshot::channel::<()>();
    let update = {
        let (ours, identity) = (fleet.ours.clone(), fleet.identity.clone());
        tokio::spawn(async move {
            update_with(ours.as_ref(), &identity, move |mut meta| async move {
                let _ = holding_tx.send(());
                let _ = let_go_rx.await;
                meta.extra
                    .insert("counter".into(), (counter(&meta) + 1).into());
                Ok(Some(meta))
            })
            .await
        })
    };
    holding_rx.await.expect("our update holds the lock");
    fleet.java.send("acquire");
    wait_for_children(&client, &leases, 2).await;
    assert_eq!(
        fleet.java.answered(),
        None,
        "Java took the lock while we held it"
    );
    let_go_tx.send(()).expect("let go");
    update.await.expect("join").expect("our second update");
    fleet.java.expect("acquired", JAVA);
    fleet.java.call("release", "released", JAVA);

    let json: serde_json::Value =
        serde_json::from_str(&fleet.java_reads()).expect("Java reads our JSON");
    assert_eq!(json["counter"], 2);
    assert_eq!(json["latestCloseTime"], "1970-01-01T00:00:00.000Z");
    // Curator's layout, nothing of ours left behind.
    for dir in ["mutex/locks", "mutex/leases"] {
        wait_for_children(&client, &fleet.path(dir), 0).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn java_and_ours_increment_together_to_exactly_100() {
    let Some(mut fleet) = Fleet::start("java_and_ours_increment_together_to_exactly_100") else {
        return;
    };
    fleet.java.send("increment 50");
    let mut failures = 0;
    for _ in 0..50 {
        loop {
            let result = update_with(
                fleet.ours.as_ref(),
                &fleet.identity,
                |mut meta| async move {
                    let n = counter(&meta);
                    // Slow work under the lock, as task creation is.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    meta.extra.insert("counter".into(), (n + 1).into());
                    Ok(Some(meta))
                },
            )
            .await;
            match result {
                Ok(_) => break,
                Err(e) => {
                    failures += 1;
                    assert!(e.is_retriable() && failures < 10, "{e}");
                }
            }
        }
    }
    fleet.java.expect("incremented", Duration::from_secs(180));
    // Without exclusion, Java's unconditional writes would lose some of ours (or ours fail).
    assert_eq!(failures, 0);
    let meta = fleet.ours.read(&fleet.identity).await.expect("read");
    assert_eq!(counter(&meta), 100);
    let json: serde_json::Value = serde_json::from_str(&fleet.java_reads()).expect("json");
    assert_eq!(json["counter"], 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_node_we_create_or_upgrade_is_what_the_original_writes() {
    let Some(mut fleet) =
        Fleet::start("the_data_node_we_create_or_upgrade_is_what_the_original_writes")
    else {
        return;
    };
    // A node we create holds the original's empty metadata, byte for byte.
    update_with(fleet.ours.as_ref(), &fleet.identity, |_| async { Ok(None) })
        .await
        .expect("update");
    assert_eq!(fleet.java_reads(), EMPTY_META);

    // A node an earlier version created with no bytes is given that JSON by the next update,
    // even one that changes nothing.
    let client = fleet.client().await;
    client
        .set_data(&fleet.path("data"), b"", None)
        .await
        .expect("empty the node");
    update_with(fleet.ours.as_ref(), &fleet.identity, |_| async { Ok(None) })
        .await
        .expect("update");
    assert_eq!(fleet.java_reads(), EMPTY_META);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_node_of_the_old_layout_stops_the_update_and_says_why() {
    let zk = ZooKeeper::start();
    let base = format!("/{}/beams", unique_name("fleet"));
    let identity = format!("druid:overlord/{}", unique_name("ds"));
    let ours = ZkCoordinator::new(
        Arc::new(ZkConnection::new(
            zk.connect_string(),
            Duration::from_secs(10),
        )),
        ZkCoordinatorConfig {
            base_path: base.clone(),
            lock_timeout: Duration::from_secs(30),
        },
    );
    // What an earlier Tranquility-RS holds while it updates: a contender right under mutex.
    let old = zk::Client::connect(&zk.connect_string())
        .await
        .expect("connect");
    let mutex = format!("{base}/{identity}/mutex");
    old.mkdir(
        &mutex,
        &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
    )
    .await
    .expect("mkdir");
    old.create(
        &format!("{mutex}/_c_0b7e0c1a-6f7e-4a51-9b0c-2f1d0e3c4b5a-lock-"),
        b"",
        &zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all()),
    )
    .await
    .expect("old contender");
    let err = update_with(&ours, &identity, |_| async { Ok(None) })
        .await
        .expect_err("refused");
    assert!(matches!(err, CoordError::ForeignLock { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("earlier Tranquility-RS") && text.contains("Stop every"),
        "{text}"
    );
    assert!(!err.is_retriable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_metadata_it_cannot_share_and_says_how_to_fix_it() {
    use tranquility::pipeline::{PipelineError, Pipelines};
    use tranquility::spec::TranquilityConfig;

    let zk = ZooKeeper::start();
    let base = format!("/{}/beams", unique_name("fleet"));
    let config = |ds: &str| {
        let text = serde_json::json!({
            "dataSources": [{"spec": {
                "dataSchema": {"dataSource": ds,
                    "parser": {"type": "string", "parseSpec": {"format": "json",
                        "timestampSpec": {"column": "timestamp", "format": "auto"},
                        "dimensionsSpec": {"dimensions": []}}},
                    "metricsSpec": [{"type": "count", "name": "count"}],
                    "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"}},
                "tuningConfig": {"type": "realtime", "windowPeriod": "PT10M"}}}],
            "properties": {"zookeeper.connect": zk.connect_string(), "zookeeper.path": base,
                "druid.overlord.url": "http://127.0.0.1:9"}
        });
        TranquilityConfig::from_str(&text.to_string(), "server.json").expect("config")
    };
    let check = |ds: &str| {
        let pipelines = Pipelines::builder().build(&config(ds)).expect("pipelines");
        async move { pipelines.check_shared_metadata().await }
    };
    let client = zk::Client::connect(&zk.connect_string())
        .await
        .expect("connect");
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());

    // Fresh, or shared with the original: fine.
    check("fresh").await.expect("nothing to share yet");

    // An earlier Tranquility-RS taking its lock right now: refused, naming the fix.
    let mutex = format!("{base}/druid:overlord/old/mutex");
    client.mkdir(&mutex, &persistent).await.expect("mkdir");
    client
        .create(
            &format!("{mutex}/_c_0b7e0c1a-6f7e-4a51-9b0c-2f1d0e3c4b5a-lock-"),
            b"",
            &zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all()),
        )
        .await
        .expect("old contender");
    let err = check("old").await.expect_err("refused");
    assert!(
        matches!(
            &err,
            PipelineError::SharedMetadata {
                source: CoordError::ForeignLock { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("Stop every"), "{err}");

    // Metadata it cannot read: refused, naming the node.
    let dir = format!("{base}/druid:overlord/garbled");
    client.mkdir(&dir, &persistent).await.expect("mkdir");
    client
        .create(&format!("{dir}/data"), b"{not json", &persistent)
        .await
        .expect("data");
    let err = check("garbled").await.expect_err("refused");
    assert!(err.to_string().contains(&format!("{dir}/data")), "{err}");
}
