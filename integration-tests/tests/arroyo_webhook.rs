//! Arroyo's webhook sink into Tranquility Server: the sink POSTs each row as its own JSON
//! object body (Arroyo's JSON format, timestamps in RFC 3339 with microseconds), with the
//! headers configured on the sink, and ignores the answer's status. Druid counts every row.

use std::time::Duration;

use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::druid::wait_for_count;
use serde_json::json;
use tranquility_examples::local::{local_pipelines, sample_config, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_sink_bodies_reach_druid() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let config = sample_config("server.json").unwrap();
    let pipelines = local_pipelines(&config, &druid.url()).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = serve(&config, &pipelines, async {
        let _ = stop_rx.await;
    })
    .await
    .unwrap();

    // `endpoint = 'http://host:8200/v1/post/clicks'`, `headers = 'Content-Type: application/json'`.
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/v1/post/clicks");
    let rows = 40;
    for i in 0..rows {
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let body =
            json!({"timestamp": ts, "page": format!("/p{}", i % 4), "country": "NZ", "clicks": 3});
        let answer = client
            .post(&url)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let result: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(result["result"]["received"], 1, "{result}");
        assert_eq!(result["result"]["sent"], 1, "{result}");
    }

    let counted = wait_for_count(
        &druid.url(),
        "clicks",
        "clicks",
        rows * 3,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(counted, rows * 3);
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
    druid.shutdown().await;
}
