//! A Fluvio topic into Druid: every record of the topic named by `fluvio.topic` is sent
//! through its dataSource's pipeline, and the consumer offset is committed only once every
//! record before it is sent or dropped.
//!
//! Needs a Fluvio cluster (its SC at `fluvio.endpoint`) and a Druid Overlord (or druid-local,
//! `cargo run -p druid-local -- --port 8090`) at `druid.overlord.url`:
//!
//! ```text
//! cargo run -p tranquility-examples --features fluvio --example fluvio_to_druid -- examples/configs/fluvio.json
//! ```
//!
//! Stop with CTRL-C: outcomes are awaited and offsets committed before it exits.

use anyhow::Context;
use tranquility::spec::TranquilityConfig;
use tranquility_fluvio::FluvioConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/configs/fluvio.json".into());
    let config = TranquilityConfig::load(&path).with_context(|| format!("loading {path}"))?;
    let fluvio = FluvioConfig::from_config(&config)?;
    let overlord = config
        .global_properties()
        .get("druid.overlord.url")
        .context("the example needs druid.overlord.url in its config")?
        .to_string();
    let pipelines = tranquility_examples::local::local_pipelines(&config, &overlord)?;
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    for (data_source, report) in tranquility_fluvio::run(&fluvio, &pipelines, stop).await? {
        let t = report.tally;
        println!(
            "{data_source}: received {}, sent {}, dropped {}, retries {}, commits {}",
            t.received,
            t.sent,
            t.dropped_total(),
            report.retries,
            report.commits
        );
    }
    pipelines.close().await;
    Ok(())
}
