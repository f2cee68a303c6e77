//! `tranquility reindex` against druid-local: events streamed through Tranquility Server land
//! with duplicates (posted twice) and without a late event (dropped by the window); the
//! realtime tasks hand off; then a batch re-ingestion of the true data set replaces the
//! interval, and the counts and sums are exactly the true ones. A second reindex of the same
//! interval changes nothing.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::druid;
use integration_tests::setup::now_millis;
use serde_json::{json, Value};
use tranquility::coord::LocalCoordinator;
use tranquility::pipeline::Pipelines;
use tranquility::spec::TranquilityConfig;
use tranquility_server::{AppState, Server, ServerConfig};

const BIN: &str = env!("CARGO_BIN_EXE_tranquility");
const HOUR: i64 = 3_600_000;

fn config(druid_url: &str) -> Value {
    json!({
        "dataSources": [{"spec": {
            "dataSchema": {
                "dataSource": "views",
                "parser": {"type": "string", "parseSpec": {"format": "json",
                    "timestampSpec": {"column": "timestamp", "format": "millis"},
                    "dimensionsSpec": {"dimensions": ["page"]}}},
                "metricsSpec": [{"type": "count", "name": "count"},
                                {"type": "longSum", "name": "bytes", "fieldName": "bytes"}],
                "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none"}
            },
            "tuningConfig": {"type": "realtime", "windowPeriod": "PT10M"}
        }}],
        "properties": {
            "druid.overlord.url": druid_url,
            "druidBeam.taskLocator": "overlord",
            "druidBeam.overlordPollPeriod": "PT1S",
            "http.port": "0"
        }
    })
}

/// Sums of `views` over all time: (rows, bytes).
async fn totals(druid_url: &str) -> (i64, i64) {
    let answer = druid::query(
        druid_url,
        &json!({
            "queryType": "timeseries", "dataSource": "views", "granularity": "all",
            "intervals": ["2000-01-01/2100-01-01"],
            "aggregations": [{"type": "longSum", "name": "count", "fieldName": "count"},
                             {"type": "longSum", "name": "bytes", "fieldName": "bytes"}]
        }),
    )
    .await;
    let n = |k: &str| {
        answer
            .pointer(&format!("/0/result/{k}"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    (n("count"), n("bytes"))
}

/// Asks every running realtime task to hand off now, and waits until none runs.
async fn hand_off_every_task(druid_url: &str) {
    let http = reqwest::Client::new();
    let running: Value = http
        .get(format!("{druid_url}/druid/indexer/v1/runningTasks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for task in running.as_array().unwrap() {
        let id = task["id"].as_str().unwrap();
        let payload: Value = http
            .get(format!("{druid_url}/druid/indexer/v1/task/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // The receiver sits at the end of the firehose chain (clipped -> timed -> receiver).
        let mut firehose = &payload["payload"]["spec"]["ioConfig"]["firehose"];
        while firehose.get("delegate").is_some() {
            firehose = &firehose["delegate"];
        }
        let service = firehose["serviceName"].as_str().unwrap();
        let status = http
            .post(format!(
                "{druid_url}/druid/worker/v1/chat/{service}/shutdown"
            ))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "closing {service}");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !druid::running_task_ids(druid_url, "views").await.is_empty() {
        assert!(Instant::now() < deadline, "realtime tasks did not hand off");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn reindex(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("reindex")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_replaces_streamed_duplicates_and_gaps_with_the_true_data() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let url = druid.url();
    let file = config(&url);
    let loaded = TranquilityConfig::from_value(file.clone(), "views.json").unwrap();
    let pipelines = Pipelines::builder()
        .coordinator(Arc::new(LocalCoordinator::new()))
        .build(&loaded)
        .unwrap();
    let state = AppState::from_pipelines(
        ServerConfig::from_config(&loaded).unwrap(),
        &loaded,
        &pipelines,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::from_listener(listener, state);
    let post_url = format!("http://{}/v1/post/views", server.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    // The true data: 50 recent events and one two hours old, which streaming drops.
    let now = now_millis() as i64;
    let mut truth: Vec<Value> = (0..50)
        .map(|i| json!({"timestamp": now - i * 100, "page": format!("p{}", i % 4), "bytes": i}))
        .collect();
    truth.push(json!({"timestamp": now - 2 * HOUR, "page": "late", "bytes": 1000}));
    let true_bytes: i64 = (0..50).sum::<i64>() + 1000;

    let http = reqwest::Client::new();
    let post = |events: Vec<Value>| {
        let (http, url) = (http.clone(), post_url.clone());
        async move {
            let answer: Value = http
                .post(url)
                .json(&events)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["result"].clone()
        }
    };
    let first = post(truth.clone()).await;
    assert_eq!(first["received"], 51, "{first}");
    assert_eq!(
        (first["sent"].as_i64(), first["dropped"].as_i64()),
        (Some(50), Some(1)),
        "{first}"
    );
    // A producer retry: the first ten again.
    let again = post(truth[..10].to_vec()).await;
    assert_eq!(again["sent"], 10, "{again}");
    let streamed_bytes: i64 = (0..50).sum::<i64>() + (0..10).sum::<i64>();
    let deadline = Instant::now() + Duration::from_secs(30);
    while totals(&url).await != (60, streamed_bytes) {
        assert!(
            Instant::now() < deadline,
            "streamed rows: {:?}",
            totals(&url).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pipelines.flush_all().await;
    hand_off_every_task(&url).await;
    assert_eq!(totals(&url).await, (60, streamed_bytes), "after handoff");

    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("views.json");
    std::fs::write(&config_path, file.to_string()).unwrap();
    let data_path = dir.path().join("truth.json");
    let lines: Vec<String> = truth.iter().map(Value::to_string).collect();
    std::fs::write(&data_path, lines.join("\n") + "\n").unwrap();
    let start = now - now.rem_euclid(HOUR) - 3 * HOUR;
    let interval = format!(
        "{}/{}",
        chrono::DateTime::from_timestamp_millis(start)
            .unwrap()
            .to_rfc3339(),
        chrono::DateTime::from_timestamp_millis(start + 5 * HOUR)
            .unwrap()
            .to_rfc3339()
    );
    let args = [
        "-configFile",
        config_path.to_str().unwrap(),
        "--interval",
        &interval,
        "--input",
        data_path.to_str().unwrap(),
    ];

    // The dry run prints the task: a replace over the interval, reading the local file.
    let (code, out, err) = reindex(&[&args[..], &["--dry-run"]].concat());
    assert_eq!(code, 0, "{err}");
    let task: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(task["spec"]["ioConfig"]["appendToExisting"], false);
    assert_eq!(task["spec"]["ioConfig"]["inputSource"]["type"], "local");

    for round in 1..=2 {
        let (code, out, err) = reindex(&args);
        assert_eq!(code, 0, "round {round}: {out}\n{err}");
        assert!(out.contains("SUCCESS") || out.contains("Success"), "{out}");
        assert!(out.contains("processed 51"), "round {round}: {out}");
        assert!(out.contains("now at version"), "round {round}: {out}");
        assert_eq!(
            totals(&url).await,
            (51, true_bytes),
            "after reindex round {round}"
        );
    }

    // A file that is not there fails the task, and the command says why, exiting 1.
    let (code, _, err) = reindex(&[
        "-configFile",
        config_path.to_str().unwrap(),
        "--interval",
        &interval,
        "--input-source",
        r#"{"type":"local","files":["/nonexistent/truth.json"]}"#,
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("failed") && err.contains("/nonexistent/truth.json"),
        "{err}"
    );
    assert_eq!(
        totals(&url).await,
        (51, true_bytes),
        "a failed reindex changes nothing"
    );

    let _ = stop.send(());
    let _ = serving.await;
    pipelines.close().await;
    druid.shutdown().await;
}
