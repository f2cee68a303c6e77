//! A tokio job that counts a synthetic click stream per minute, page and country and sinks
//! the rows into Druid through `tranquility-generic` (`drive` over a `BeamSink`).
//!
//! It starts druid-local in this process, sends 5 000 clicks spread over the last five
//! minutes, then asks Druid for the total:
//!
//! ```text
//! cargo run -p tranquility-examples --example clicks
//! ```

use std::time::Duration;

use anyhow::Context;
use druid_local::{DruidLocal, DruidLocalConfig};
use tranquility_examples::{clicks, local};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let druid = DruidLocal::start(DruidLocalConfig::ephemeral()).await?;
    println!("druid-local at {}", druid.url());
    let pipelines = local::local_pipelines(&local::sample_config("server.json")?, &druid.url())?;
    let pipeline = pipelines
        .get("clicks")
        .context("server.json has no clicks dataSource")?;

    let total = 5_000;
    let stream = clicks::synthetic_clicks(total, Duration::from_secs(300), chrono::Utc::now(), 42);
    let report = clicks::run(stream, pipeline).await?;
    let t = report.tally;
    println!(
        "rows: received {}, sent {}, dropped {}, failed {}",
        t.received,
        t.sent,
        t.dropped_total(),
        t.failed
    );
    let clicks = local::wait_for_total(
        &druid.url(),
        "clicks",
        "clicks",
        total as i64,
        Duration::from_secs(20),
    )
    .await?;
    println!("Druid counts {clicks} clicks (sent {total})");
    pipelines.close().await;
    druid.shutdown().await;
    Ok(())
}
