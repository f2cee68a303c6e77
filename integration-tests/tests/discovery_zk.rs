//! Curator service discovery against a real ZooKeeper: an Overlord and a task receiver announced
//! in Curator's JSON are found, called, and forgotten when they go away.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use axum::Json;
use integration_tests::{unique_name, ZooKeeper};
use serde_json::{json, Value};
use tranquility::coord::ZkConnection;
use tranquility::druid::discovery::{CuratorDiscovery, DiscoveryError};
use tranquility::druid::locator::{CuratorTaskLocator, TaskLocator, TaskTarget};
use tranquility::druid::overlord::{OverlordClient, OverlordConfig, OverlordEndpoint};
use tranquility::druid::receiver::{encode_json_array, ReceiverClient, ReceiverConfig};
use zookeeper_client as zk;

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

/// Announces `name` as Curator does (ephemeral node, ServiceInstance JSON) and returns the path.
async fn announce(client: &zk::Client, base: &str, name: &str, port: u16) -> String {
    let id = unique_name("instance");
    let dir = format!("{base}/{name}");
    client
        .mkdir(
            &dir,
            &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
        )
        .await
        .expect("mkdir");
    let data = json!({"name": name, "id": id, "address": "127.0.0.1", "port": port,
        "sslPort": -1, "payload": null, "registrationTimeUTC": 1704103200000_i64,
        "serviceType": "DYNAMIC", "uriSpec": null});
    let path = format!("{dir}/{id}");
    client
        .create(
            &path,
            data.to_string().as_bytes(),
            &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all()),
        )
        .await
        .expect("announce");
    path
}

fn discovery(zk: &ZooKeeper, base: &str) -> Arc<CuratorDiscovery> {
    let conn = Arc::new(ZkConnection::new(
        zk.connect_string(),
        Duration::from_secs(10),
    ));
    Arc::new(CuratorDiscovery::new(conn, base).with_cache_ttl(Duration::from_millis(200)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_an_announced_overlord_and_a_task_receiver() {
    let zk = ZooKeeper::start();
    let base = format!("/{}/discovery", unique_name("druid"));
    let announcer = zk::Client::connect(&zk.connect_string())
        .await
        .expect("connect");

    let overlord_port = serve(
        axum::Router::new()
            // druid.ingestion=auto reads the version: a Druid with realtime tasks.
            .route(
                "/status",
                axum::routing::get(|| async { Json(json!({"version": "0.9.2", "modules": []})) }),
            )
            .route(
                "/druid/indexer/v1/task",
                post(|Json(task): Json<Value>| async move { Json(json!({"task": task["id"]})) }),
            )
            .route(
                "/druid/indexer/v1/task/{id}/status",
                axum::routing::get(|| async {
                    Json(json!({"task":"t","status":{"id":"t","status":"RUNNING"}}))
                }),
            ),
    )
    .await;
    let pushes = Arc::new(AtomicUsize::new(0));
    let seen = pushes.clone();
    let task_port = serve(axum::Router::new().route(
        "/druid/worker/v1/chat/{name}/push-events",
        post(move |Json(events): Json<Vec<Value>>| {
            let seen = seen.clone();
            async move {
                // Not ready for the first request, as a task whose firehose is still starting.
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Err(StatusCode::SERVICE_UNAVAILABLE);
                }
                Ok(Json(json!({"eventCount": events.len()})))
            }
        }),
    ))
    .await;

    let discovery = discovery(&zk, &base);
    let overlord = OverlordClient::new(
        OverlordEndpoint::Discovery {
            discovery: discovery.clone(),
            service_name: "druid/overlord".into(),
        },
        OverlordConfig::default(),
    );

    // Nothing announced yet: a clear error.
    let err = discovery
        .pick("druid/overlord")
        .await
        .expect_err("none yet");
    assert!(matches!(err, DiscoveryError::NoInstances { .. }));
    let text = err.to_string();
    assert!(
        text.contains("no instances of 'druid:overlord' under")
            && text.contains(&zk.connect_string())
            && text.contains("Overlord"),
        "{text}"
    );

    let overlord_node = announce(&announcer, &base, "druid:overlord", overlord_port).await;
    discovery.invalidate("druid/overlord");
    let picked = discovery.pick("druid/overlord").await.expect("announced");
    assert_eq!(
        (picked.address.as_str(), picked.port),
        ("127.0.0.1", Some(overlord_port))
    );
    let id = overlord
        .submit_task(&json!({"type":"index_realtime","id":"index_realtime_foo_x_0_0"}))
        .await
        .expect("submitted through discovery");
    assert_eq!(id, "index_realtime_foo_x_0_0");

    let service = "firehose:druid:overlord:foo-003-0000-0000";
    announce(&announcer, &base, service, task_port).await;
    let locator = CuratorTaskLocator::new(discovery.clone());
    let target = TaskTarget {
        task_id: id.clone(),
        service_name: service.into(),
    };
    let endpoint = locator
        .locate(&target)
        .await
        .expect("locate")
        .expect("found");
    assert_eq!(endpoint.port, task_port);
    let receiver = ReceiverClient::new(ReceiverConfig::default());
    let body = encode_json_array([r#"{"a":1}"#, r#"{"a":2}"#, r#"{"a":3}"#]);
    let reply = receiver
        .push(&target, &locator, &overlord, &body)
        .await
        .expect("pushed");
    assert_eq!((reply.event_count, reply.attempts), (3, 2));

    // The Overlord goes away (its ephemeral node is deleted): discovery notices after the cache.
    announcer
        .delete(&overlord_node, None)
        .await
        .expect("unannounce");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(discovery.pick("druid/overlord").await.is_err());
    // Unreadable announcements are skipped, not fatal.
    announcer
        .create(
            &format!("{base}/druid:overlord/garbage"),
            b"not json",
            &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all()),
        )
        .await
        .expect("garbage node");
    discovery.invalidate("druid/overlord");
    assert!(discovery
        .instances("druid/overlord")
        .await
        .expect("read")
        .is_empty());
}
