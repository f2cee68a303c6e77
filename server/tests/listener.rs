//! The server on a real loopback listener: clients over TCP, and a graceful stop that
//! flushes events still pending.

mod common;

use std::time::Duration;

use tokio::net::TcpListener;
use tranquility_server::{Server, ServerConfig};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn stop_flushes_async_events_and_reports_final_counts() {
    let (state, wiki, _) = common::state(ServerConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::from_listener(listener, state.clone());
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let url = format!("http://{addr}/v1/post/wiki?async=true");
    for i in 0..5 {
        let body = format!(
            r#"[{{"timestamp":{},"i":{i}}},{{"timestamp":{},"i":{i}}}]"#,
            now(),
            now()
        );
        let res = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let answer: serde_json::Value = res.json().await.unwrap();
        assert_eq!(answer["result"]["received"], 2);
        assert_eq!(answer["result"]["sent"], 0);
    }
    // Health over TCP while serving.
    let health = client
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(wiki.pending(), 10);

    stop.send(()).unwrap();
    let reports = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(wiki.sent_count(), 10);
    let report = reports.iter().find(|r| r.name == "wiki").unwrap();
    assert_eq!(
        (report.tally.received, report.tally.sent, report.pending),
        (10, 10, 0)
    );
    assert!(report.tally.is_balanced());
    assert!(state.is_stopping());
    // The listener is gone.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let (state, _, _) = common::state(ServerConfig {
        idle_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::from_listener(listener, state);
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    use tokio::io::AsyncReadExt;
    let mut quiet = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    // The server closes the silent connection: the read ends (EOF or reset) well before 5 s.
    let read = tokio::time::timeout(Duration::from_secs(5), quiet.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}
