//! The release druid-local plays: `GET /status` names it with its modules, and from 31 the
//! realtime task types are refused exactly as Druid 33.0.0 refused them (seen on a real
//! cluster), while 30 still runs them.

mod common;

use common::*;
use serde_json::{json, Value};

const SERVICE: &str = "firehose:druid:overlord:versions-000-0000-0000";

fn artifacts(status: &Value) -> Vec<String> {
    status["modules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["artifact"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn status_reports_the_played_release() {
    let c = reqwest::Client::new();
    for (version, druid) in [
        ("30.0.0", start().await),
        ("33.0.0", start_version("33.0.0").await),
    ] {
        let (code, status) = get(&c, &format!("{}/status", druid.url())).await;
        assert_eq!(code, 200);
        assert_eq!(status["version"], version);
        assert!(
            artifacts(&status).contains(&"druid-kafka-indexing-service".to_owned()),
            "{status}"
        );
        assert!(status["memory"]["usedMemory"].is_u64(), "{status}");
        druid.shutdown().await;
    }
}

#[tokio::test]
async fn realtime_tasks_are_refused_from_31() {
    let c = reqwest::Client::new();
    let druid = start_version("31.0.1").await;
    let url = format!("{}/druid/indexer/v1/task", druid.url());
    for ty in ["index_realtime", "index_realtime_appenderator"] {
        let mut t = task("rt1", "versions", SERVICE, &iso_in(600), 100);
        t["type"] = json!(ty);
        let (code, body) = post(&c, &url, &t).await;
        assert_eq!(code, 400, "{body}");
        assert_eq!(
            body,
            json!({"error": format!(
                "Please make sure to load all the necessary extensions and jars with type '{ty}' on \
                 'druid/overlord' service. Could not resolve type id '{ty}' as a subtype of \
                 `org.apache.druid.indexing.common.task.Task` known type ids = [archive, compact, \
                 index, index_hadoop, index_kafka, index_parallel, index_sub, kill, move, noop, \
                 partial_dimension_cardinality, partial_dimension_distribution, \
                 partial_index_generate, partial_index_generic_merge, partial_range_index_generate, \
                 restore, single_phase_sub_task]"
            )})
        );
    }
    // Nothing was created, and no receiver answers.
    let (_, tasks) = get(&c, &format!("{}/druid/indexer/v1/tasks", druid.url())).await;
    assert_eq!(tasks, json!([]));
    let (code, _) = post(
        &c,
        &format!("{}/druid/worker/v1/chat/{SERVICE}/push-events", druid.url()),
        &json!([]),
    )
    .await;
    assert_eq!(
        code, 404,
        "no chat resource from 31, as on Druid 33's Overlord"
    );
    druid.shutdown().await;
}

#[tokio::test]
async fn thirty_still_runs_realtime_tasks() {
    let c = reqwest::Client::new();
    let druid = start_version("30.0.0").await;
    let url = format!("{}/druid/indexer/v1/task", druid.url());
    let (code, body) = post(
        &c,
        &url,
        &task("rt30", "versions", SERVICE, &iso_in(600), 100),
    )
    .await;
    assert_eq!((code, body), (200, json!({"task": "rt30"})));
    wait_handler(&c, &druid.url(), SERVICE).await;
    druid.shutdown().await;
}

#[tokio::test]
async fn unknown_types_name_the_known_ones() {
    let c = reqwest::Client::new();
    let druid = start_version("30.0.0").await;
    let mut t = task("x", "versions", SERVICE, &iso_in(600), 100);
    t["type"] = json!("index_kinesis");
    let (code, body) = post(&c, &format!("{}/druid/indexer/v1/task", druid.url()), &t).await;
    assert_eq!(code, 400);
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("Could not resolve type id 'index_kinesis'"),
        "{msg}"
    );
    assert!(
        msg.contains("index_realtime, index_realtime_appenderator"),
        "{msg}"
    );
    druid.shutdown().await;
}

#[tokio::test]
async fn producer_sequences_are_honoured_from_0_12() {
    let c = reqwest::Client::new();
    // 0.9.2 to 0.11 ignore the headers (every push is ingested); 0.12 (#4903) skips a push
    // whose sequence is not above the producer's last.
    for (version, skipped, processed) in [("0.11.0", 0, 2), ("0.12.0", 1, 1)] {
        let druid = start_version(version).await;
        let base = druid.url();
        let t = task("seq", "versions", SERVICE, &iso_in(600), 100);
        let (code, _) = post(&c, &format!("{base}/druid/indexer/v1/task"), &t).await;
        assert_eq!(code, 200, "{version}");
        wait_handler(&c, &base, SERVICE).await;
        let body = json!([{"timestamp": "2024-01-01T10:00:00Z", "page": "A", "added": 1}]);
        let body = body.to_string();
        for _ in 0..2 {
            let r = c
                .post(format!("{base}/druid/worker/v1/chat/{SERVICE}/push-events"))
                .header("Content-Type", "application/json")
                .header("X-Firehose-Producer-Id", "p1")
                .header("X-Firehose-Producer-Seq", "5")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200, "{version}");
        }
        let metrics = format!("{base}/druid-local/v1/task/seq/metrics");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let m = loop {
            let (_, m) = get(&c, &metrics).await;
            if m["processed"] == processed || std::time::Instant::now() > deadline {
                break m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert_eq!(m["skippedRequests"], skipped, "{version}: {m}");
        assert_eq!(m["processed"], processed, "{version}: {m}");
        druid.shutdown().await;
    }
}
