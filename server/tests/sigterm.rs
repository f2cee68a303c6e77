//! SIGTERM during a stream of posts: requests in flight finish, pending events are flushed,
//! and every event received has its outcome. (Its own test binary: the handler is
//! process-wide.)

#![cfg(unix)]

mod common;

use std::time::Duration;

use tokio::net::TcpListener;
use tranquility_server::{shutdown_signal, Server, ServerConfig};

#[tokio::test]
async fn sigterm_during_a_stream_drains_pending_events() {
    let (state, wiki, _) = common::state(ServerConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::from_listener(listener, state.clone());
    let addr = server.local_addr().unwrap();
    let running = tokio::spawn(server.run(shutdown_signal()));

    // A producer posting continuously until the server goes away.
    let producer = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut answered = 0u64;
        for i in 0..10_000u64 {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis();
            let res = client
                .post(format!("http://{addr}/v1/post/wiki?async=true"))
                .header("content-type", "application/json")
                .body(format!(r#"{{"timestamp":{t},"i":{i}}}"#))
                .send()
                .await;
            match res {
                Ok(r) if r.status() == 200 => {
                    let v: serde_json::Value = r.json().await.unwrap();
                    answered += v["result"]["received"].as_u64().unwrap();
                }
                _ => break,
            }
        }
        answered
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    let reports = tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("server stops after SIGTERM")
        .unwrap()
        .unwrap();
    let answered = producer.await.unwrap();
    assert!(answered > 0);
    let report = reports.iter().find(|r| r.name == "wiki").unwrap();
    // Every event a client was told about was received, and every received event was
    // flushed to an outcome (here: sent) before the process would exit.
    assert!(report.tally.received >= answered);
    assert_eq!(report.pending, 0);
    assert_eq!(report.tally.sent, report.tally.received);
    assert_eq!(wiki.sent_count() as u64, report.tally.sent);
    assert_eq!(wiki.pending(), 0);
}
