//! Example (a), the click-stream job, against druid-local: every click is counted in Druid.

use std::time::Duration;

use druid_local::{DruidLocal, DruidLocalConfig};
use tranquility_examples::clicks::{per_minute, run, synthetic_clicks};
use tranquility_examples::local::{local_pipelines, sample_config, wait_for_total};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_click_job_counts_every_click_in_druid() {
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral())
        .await
        .unwrap();
    let pipelines = local_pipelines(&sample_config("server.json").unwrap(), &druid.url()).unwrap();
    let pipeline = pipelines.get("clicks").unwrap();
    let now = chrono::Utc::now();
    let span = Duration::from_secs(180);
    let clicks = 2_000;

    let rows = futures::StreamExt::count(per_minute(synthetic_clicks(clicks, span, now, 9))).await;
    let report = run(synthetic_clicks(clicks, span, now, 9), pipeline)
        .await
        .unwrap();
    assert_eq!(report.tally.received, rows as u64);
    assert_eq!(report.tally.sent, rows as u64, "{report:?}");

    let total = wait_for_total(
        &druid.url(),
        "clicks",
        "clicks",
        clicks as i64,
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert_eq!(total, clicks as i64);
    pipelines.close().await;
    druid.shutdown().await;
}
