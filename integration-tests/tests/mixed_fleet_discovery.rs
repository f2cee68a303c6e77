//! Our Curator service discovery against announcements made by the real `curator-x-discovery`
//! (Debian's), registered the way Druid announces its Overlord and each task's receiver: a
//! `ServiceInstance<Void>` with name, address and port.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Json;
use integration_tests::java::{JavaProcess, JavaProgram, CURATOR_JARS};
use integration_tests::{unique_name, ZooKeeper};
use serde_json::{json, Value};
use tranquility::coord::ZkConnection;
use tranquility::druid::discovery::CuratorDiscovery;
use tranquility::druid::locator::{CuratorTaskLocator, TaskLocator, TaskTarget};
use tranquility::druid::overlord::{OverlordClient, OverlordConfig, OverlordEndpoint};
use tranquility::druid::receiver::{encode_json_array, ReceiverClient, ReceiverConfig};

const JAVA: Duration = Duration::from_secs(60);

async fn serve(app: axum::Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

/// Announces `name` at 127.0.0.1:`port` through Curator; returns the process and instance id.
fn announce(
    program: &JavaProgram,
    zk: &ZooKeeper,
    base: &str,
    name: &str,
    port: u16,
) -> (JavaProcess, String) {
    let port = port.to_string();
    let mut java = program.spawn(&[
        &zk.connect_string(),
        "announce",
        base,
        name,
        "127.0.0.1",
        &port,
    ]);
    let line = java.expect("announced ", JAVA);
    let id = line["announced ".len()..].to_owned();
    (java, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_what_curator_announces_and_forgets_what_it_unregisters() {
    let test = "finds_what_curator_announces_and_forgets_what_it_unregisters";
    let Some(program) = JavaProgram::compile(test, "CuratorPeer.java", CURATOR_JARS) else {
        return;
    };
    let zk = ZooKeeper::start();
    let base = format!("/{}/discovery", unique_name("druid"));
    let overlord_port = serve(
        axum::Router::new()
            .route(
                "/druid/indexer/v1/task",
                post(|Json(task): Json<Value>| async move { Json(json!({"task": task["id"]})) }),
            )
            .route(
                "/druid/indexer/v1/task/{id}/status",
                get(|| async { Json(json!({"task":"t","status":{"id":"t","status":"RUNNING"}})) }),
            ),
    )
    .await;
    let task_port =
        serve(axum::Router::new().route(
            "/druid/worker/v1/chat/{name}/push-events",
            post(|Json(events): Json<Vec<Value>>| async move {
                Json(json!({"eventCount": events.len()}))
            }),
        ))
        .await;

    let (mut overlord_peer, overlord_id) =
        announce(&program, &zk, &base, "druid:overlord", overlord_port);
    let service = "firehose:druid:overlord:foo-003-0000-0000";
    let (_task_peer, _) = announce(&program, &zk, &base, service, task_port);

    let conn = Arc::new(ZkConnection::new(
        zk.connect_string(),
        Duration::from_secs(10),
    ));
    let discovery =
        Arc::new(CuratorDiscovery::new(conn, &base).with_cache_ttl(Duration::from_millis(200)));

    // Curator's JSON, as its serializer writes it for Druid, reads into the instance.
    let picked = discovery
        .pick("druid/overlord")
        .await
        .expect("the Overlord Curator announced");
    assert_eq!(picked.name, "druid:overlord");
    assert_eq!(picked.id, overlord_id);
    assert_eq!(
        (picked.address.as_str(), picked.port),
        ("127.0.0.1", Some(overlord_port))
    );
    assert!(picked.registration_time_utc.is_some());

    let overlord = OverlordClient::new(
        OverlordEndpoint::Discovery {
            discovery: discovery.clone(),
            service_name: "druid/overlord".into(),
        },
        OverlordConfig::default(),
    );
    let id = overlord
        .submit_task(&json!({"type":"index_realtime","id":"index_realtime_foo_x_0_0"}))
        .await
        .expect("submitted to the Overlord found through Curator's announcement");
    assert_eq!(id, "index_realtime_foo_x_0_0");

    let locator = CuratorTaskLocator::new(discovery.clone());
    let target = TaskTarget {
        task_id: id,
        service_name: service.into(),
    };
    let endpoint = locator
        .locate(&target)
        .await
        .expect("locate")
        .expect("the receiver Curator announced");
    assert_eq!(
        (endpoint.host.as_str(), endpoint.port),
        ("127.0.0.1", task_port)
    );
    let reply = ReceiverClient::new(ReceiverConfig::default())
        .push(
            &target,
            &locator,
            &overlord,
            &encode_json_array([r#"{"a":1}"#, r#"{"a":2}"#]),
        )
        .await
        .expect("pushed");
    assert_eq!(reply.event_count, 2);

    // Curator unregisters the Overlord: we stop finding it.
    overlord_peer.call("unannounce", "unannounced", JAVA);
    discovery.invalidate("druid/overlord");
    assert!(discovery
        .instances("druid/overlord")
        .await
        .expect("read")
        .is_empty());
}
