//! The single-file Java client (clients/java/TranquilityClient.java), compiled with `javac`
//! and run as a JVM job would, posting to Tranquility Server in front of druid-local.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use druid_local::{DruidLocal, DruidLocalConfig};
use integration_tests::druid::wait_for_count;
use tranquility_examples::local::{local_pipelines, sample_config, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_java_client_posts_events_that_druid_counts() {
    let source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/java/TranquilityClient.java");
    let classes = tempfile::tempdir().unwrap();
    let javac = Command::new("javac")
        .arg("-d")
        .arg(classes.path())
        .arg(&source)
        .output()
        .expect("javac (a JDK) must be installed; scripts/test.sh installs one");
    assert!(
        javac.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&javac.stderr)
    );

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

    let now = chrono::Utc::now().timestamp_millis();
    let mut input = String::new();
    for i in 0..120 {
        input.push_str(&format!(
            "{{\"timestamp\":{now},\"host\":\"jvm-{i}\",\"metric\":\"gc\",\"value\":{i}}}\n"
        ));
    }
    // One event far outside the window: dropped, and reported as such.
    input.push_str("{\"timestamp\":\"2001-01-01T00:00:00Z\",\"host\":\"old\"}\n");
    let classpath = classes.path().to_path_buf();
    let url = format!("http://{addr}");
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("java")
            .arg("-cp")
            .arg(&classpath)
            .args(["TranquilityClient", &url, "metrics", "50"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("java");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "java client failed: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let totals: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        totals,
        serde_json::json!({"received": 121, "sent": 120, "dropped": 1, "failed": 0})
    );

    let counted = wait_for_count(
        &druid.url(),
        "metrics",
        "count",
        120,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(counted, 120);
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
    druid.shutdown().await;
}
