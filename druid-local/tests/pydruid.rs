//! pydruid (PyPI) as an independent query client against a running druid-local: native
//! timeseries and groupBy, and SQL through its DB-API and SQLAlchemy dialect. Needs
//! `TRANQUILITY_PYTHON` (a python with pydruid and sqlalchemy; scripts/test.sh provides it).

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

fn python() -> String {
    std::env::var("TRANQUILITY_PYTHON").unwrap_or_else(|_| {
        panic!("TRANQUILITY_PYTHON is not set: run scripts/test.sh (it provides a python with pydruid and sqlalchemy), or point it at a venv python with `pip install pydruid sqlalchemy`")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pydruid_timeseries_and_group_by() {
    let python = python();
    let druid = start().await;
    let base = druid.url();
    let c = reqwest::Client::new();
    post(
        &c,
        &format!("{base}/druid/indexer/v1/task"),
        &task("t_py", "pywiki", "firehose:py", &iso_in(60), 100),
    )
    .await;
    wait_handler(&c, &base, "firehose:py").await;
    let events = json!([
        {"timestamp": "2024-01-01T10:00:05Z", "page": "A", "language": "en", "added": 3},
        {"timestamp": "2024-01-01T10:02:05Z", "page": "A", "language": "en", "added": 4},
        {"timestamp": "2024-01-01T10:03:05Z", "page": "B", "language": "fr", "added": 9}
    ]);
    let (status, _) = post(
        &c,
        &format!("{base}/druid/worker/v1/chat/firehose:py/push-events"),
        &events,
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pydruid_check.py");
    let out = tokio::process::Command::new(&python)
        .args([
            script,
            &base,
            "pywiki",
            "2024-01-01T10:00:00Z/2024-01-01T11:00:00Z",
        ])
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pydruid check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("pydruid ok"));
    druid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pydruid_sql_db_api_and_sqlalchemy() {
    let python = python();
    let druid = start().await;
    let base = druid.url();
    let c = reqwest::Client::new();
    post(
        &c,
        &format!("{base}/druid/indexer/v1/task"),
        &task("t_pysql", "pysql", "firehose:pysql", &iso_in(120), 100),
    )
    .await;
    wait_handler(&c, &base, "firehose:pysql").await;
    let events = json!([
        {"timestamp": "2024-01-01T10:00:05Z", "page": "A", "language": "en", "added": 3},
        {"timestamp": "2024-01-01T10:02:05Z", "page": "A", "language": "en", "added": 4},
        {"timestamp": "2024-01-01T10:03:05Z", "page": "B", "language": "fr", "added": 9},
        {"timestamp": "2024-01-01T10:30:00Z", "page": "C", "language": "en", "added": 1},
        {"timestamp": "2024-01-01T10:45:00Z", "page": "A", "language": "ja", "added": 10},
        {"timestamp": "2024-01-01T10:50:00Z", "page": "B", "added": 2}
    ]);
    let (status, _) = post(
        &c,
        &format!("{base}/druid/worker/v1/chat/firehose:pysql/push-events"),
        &events,
    )
    .await;
    assert_eq!(status, 200);
    let count = json!({"query": "SELECT COUNT(*) FROM pysql", "resultFormat": "array"});
    let mut indexed = false;
    for _ in 0..200 {
        if post(&c, &format!("{base}/druid/v2/sql"), &count).await.1 == json!([[6]]) {
            indexed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(indexed, "the six rows never became queryable");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pydruid_sql_check.py");
    let out = tokio::process::Command::new(&python)
        .args([script, &base, "pysql"])
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pydruid SQL check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("pydruid sql ok"));
    druid.shutdown().await;
}
