//! ZkCoordinator against a real ZooKeeper: mutual exclusion across sessions, a server restart
//! and a session expiry in the middle of updates.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use integration_tests::partition::Relay;
use integration_tests::{unique_name, ZooKeeper};
use tranquility::coord::{
    update_with, BeamMetadata, CoordError, Coordinator, ZkConnection, ZkCoordinator,
    ZkCoordinatorConfig,
};
use zookeeper_client as zk;

fn coordinator(zk: &ZooKeeper, base: &str) -> Arc<ZkCoordinator> {
    coordinator_at(zk.connect_string(), Duration::from_secs(10), base)
}

/// A coordinator reaching ZooKeeper at `connect` with sessions of `session`.
fn coordinator_at(connect: String, session: Duration, base: &str) -> Arc<ZkCoordinator> {
    // Short enough that a stalled step fails and is retried well within the test's budget.
    let conn = ZkConnection::new(connect, session).with_op_timeout(Duration::from_secs(20));
    Arc::new(ZkCoordinator::new(
        Arc::new(conn),
        ZkCoordinatorConfig {
            base_path: base.to_owned(),
            lock_timeout: Duration::from_secs(30),
        },
    ))
}

fn counter(meta: &BeamMetadata) -> u64 {
    meta.extra
        .get("counter")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

/// Adds one to the counter under the lock, asserting nobody else is inside meanwhile.
async fn increment(
    coord: &dyn Coordinator,
    identity: &str,
    inside: Arc<AtomicBool>,
) -> Result<BeamMetadata, CoordError> {
    update_with(coord, identity, move |mut meta| async move {
        assert!(
            !inside.swap(true, Ordering::SeqCst),
            "two holders of the lock at once"
        );
        let n = counter(&meta);
        // Slow work while holding the lock, as task creation is.
        tokio::time::sleep(Duration::from_millis(2)).await;
        meta.extra.insert("counter".into(), (n + 1).into());
        inside.store(false, Ordering::SeqCst);
        Ok(Some(meta))
    })
    .await
}

/// Runs `n` successful increments, retrying retriable failures; returns the failures seen.
async fn increments(
    coord: Arc<ZkCoordinator>,
    identity: String,
    inside: Arc<AtomicBool>,
    n: usize,
    done: Arc<AtomicU64>,
) -> usize {
    let mut failures = 0;
    let mut ok = 0;
    while ok < n {
        match increment(coord.as_ref(), &identity, inside.clone()).await {
            Ok(_) => {
                ok += 1;
                done.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) if e.is_retriable() => {
                failures += 1;
                assert!(failures < 50, "too many failures, last: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("permanent coordination error: {e}"),
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_sessions_increment_under_the_lock_to_exactly_100() {
    let zk = ZooKeeper::start();
    let base = format!("/{}/beams", unique_name("coord"));
    let identity = format!("druid:overlord/{}", unique_name("ds"));
    let (a, b) = (coordinator(&zk, &base), coordinator(&zk, &base));
    assert_eq!(
        a.read("druid:overlord/never-written").await.expect("read"),
        BeamMetadata::default()
    );
    let inside = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let ja = tokio::spawn(increments(
        a.clone(),
        identity.clone(),
        inside.clone(),
        50,
        done.clone(),
    ));
    let jb = tokio::spawn(increments(
        b.clone(),
        identity.clone(),
        inside.clone(),
        50,
        done.clone(),
    ));
    assert_eq!(
        ja.await.expect("a") + jb.await.expect("b"),
        0,
        "no failures"
    );
    assert_eq!(counter(&a.read(&identity).await.expect("read")), 100);

    // The layout is the original one: <base>/<identity>/data holding the JSON.
    let client = zk::Client::connect(&zk.connect_string())
        .await
        .expect("connect");
    let (data, _) = client
        .get_data(&format!("{base}/{identity}/data"))
        .await
        .expect("data node");
    let json: serde_json::Value = serde_json::from_slice(&data).expect("json");
    assert_eq!(json["counter"], 100);
    assert_eq!(json["beams"], serde_json::json!({}));
    assert!(client
        .check_stat(&format!("{base}/{identity}/mutex"))
        .await
        .expect("stat")
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_zookeeper_restart_mid_way_loses_nothing_and_counts_nothing_twice() {
    let mut zk = ZooKeeper::start();
    let base = format!("/{}/beams", unique_name("coord"));
    let identity = format!("druid:overlord/{}", unique_name("ds"));
    let (a, b) = (coordinator(&zk, &base), coordinator(&zk, &base));
    let inside = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let ja = tokio::spawn(increments(
        a.clone(),
        identity.clone(),
        inside.clone(),
        50,
        done.clone(),
    ));
    let jb = tokio::spawn(increments(
        b.clone(),
        identity.clone(),
        inside.clone(),
        50,
        done.clone(),
    ));
    while done.load(Ordering::SeqCst) < 30 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let zk = tokio::task::spawn_blocking(move || {
        zk.restart();
        zk
    })
    .await
    .expect("restart");
    let both = async { (ja.await.expect("a"), jb.await.expect("b")) };
    if tokio::time::timeout(Duration::from_secs(180), both)
        .await
        .is_err()
    {
        panic!(
            "the increments stalled after the restart: {} of 100 done; lock contenders: {}",
            done.load(Ordering::SeqCst),
            contenders(&zk, &format!("{base}/{identity}/mutex/locks")).await
                + &contenders(&zk, &format!("{base}/{identity}/mutex/leases")).await
        );
    }
    assert_eq!(counter(&b.read(&identity).await.expect("read")), 100);
    drop(zk);
}

/// Whether `session` owns a node under `mutex` (a folder of lock nodes).
async fn holds_a_node(client: &zk::Client, mutex: &str, session: zk::SessionId) -> bool {
    let owners = owners(client, mutex).await.unwrap_or_default();
    owners.iter().any(|(_, owner)| *owner == Some(session.0))
}

/// The lock nodes under `mutex` and their sessions, for a stalled test's message.
async fn contenders(zk: &ZooKeeper, mutex: &str) -> String {
    let Ok(client) = zk::Client::connect(&zk.connect_string()).await else {
        return "(ZooKeeper unreachable)".into();
    };
    let Some(owners) = owners(&client, mutex).await else {
        return "(no mutex node)".into();
    };
    let out: Vec<String> = owners
        .into_iter()
        .map(|(child, owner)| match owner {
            Some(session) => format!("{child} (session {session:#x})"),
            None => format!("{child} (session gone)"),
        })
        .collect();
    format!("{out:?}")
}

/// The nodes under `mutex` and the session owning each (`None` once gone); `None` without
/// the mutex node.
async fn owners(client: &zk::Client, mutex: &str) -> Option<Vec<(String, Option<i64>)>> {
    let children = client.list_children(mutex).await.ok()?;
    let mut owners = Vec::new();
    for child in children {
        let owner = match client.check_stat(&format!("{mutex}/{child}")).await {
            Ok(Some(stat)) => Some(stat.ephemeral_owner),
            _ => None,
        };
        owners.push((child, owner));
    }
    Some(owners)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_expiring_under_the_lock_writes_nothing_then_reconnects() {
    let zk = ZooKeeper::start();
    let base = format!("/{}/beams", unique_name("coord"));
    let identity = format!("druid:overlord/{}", unique_name("ds"));
    // `a` reaches ZooKeeper through a relay the test can cut, with the shortest session
    // ZooKeeper grants (2 ticks); `b` connects directly.
    let relay = Arc::new(Relay::start(zk.connect_string().parse().expect("address")).await);
    let a = coordinator_at(relay.addr().to_string(), Duration::from_secs(4), &base);
    let b = coordinator(&zk, &base);
    let inside = Arc::new(AtomicBool::new(false));
    increment(a.as_ref(), &identity, inside.clone())
        .await
        .expect("first increment");

    let victim = a.connection().client().await.expect("client");
    let session = victim.session_id();
    let watcher = zk::Client::connect(&zk.connect_string())
        .await
        .expect("connect");
    // The lock is held through a lease node (Curator's InterProcessSemaphoreMutex layout).
    let mutex = format!("{base}/{identity}/mutex/leases");
    let partition = relay.clone();
    let err = update_with(a.as_ref(), &identity, move |mut meta| async move {
        // Cut `a` off while it holds the lock, until ZooKeeper has expired its session (its
        // lock node is gone), then let it reconnect: it learns the session is over.
        partition.cut();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while holds_a_node(&watcher, &mutex, session).await {
            assert!(
                std::time::Instant::now() < deadline,
                "ZooKeeper never expired the session"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        partition.heal();
        while !victim.state().is_terminated() {
            assert!(
                std::time::Instant::now() < deadline,
                "the client never saw its session end"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        meta.extra.insert("counter".into(), 1000.into());
        Ok(Some(meta))
    })
    .await
    .expect_err("the lock was lost");
    assert!(
        matches!(err, CoordError::LockLost { .. }) && err.is_retriable(),
        "{err}"
    );
    assert_eq!(counter(&b.read(&identity).await.expect("read")), 1);

    // Both go on; `a` with a new session.
    increment(a.as_ref(), &identity, inside.clone())
        .await
        .expect("a again");
    increment(b.as_ref(), &identity, inside.clone())
        .await
        .expect("b");
    assert_eq!(counter(&a.read(&identity).await.expect("read")), 3);
}
