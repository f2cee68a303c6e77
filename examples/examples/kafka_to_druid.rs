//! Kafka topics into Druid: `tranquility-kafka` reads the topics matching each dataSource's
//! `topicPattern`, sends every message through the dataSource's pipeline, and commits an offset
//! only once every message before it is sent or dropped.
//!
//! Needs a Kafka broker at `kafka.bootstrap.servers` and a Druid Overlord (or druid-local,
//! `cargo run -p druid-local -- --port 8090`) at `druid.overlord.url`:
//!
//! ```text
//! cargo run -p tranquility-examples --example kafka_to_druid -- examples/configs/kafka.json
//! ```
//!
//! Stop with CTRL-C: outcomes are awaited and offsets committed before it exits.

use std::sync::Arc;

use anyhow::Context;
use tranquility::spec::TranquilityConfig;
use tranquility_kafka::KafkaConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/configs/kafka.json".into());
    let config = TranquilityConfig::load(&path).with_context(|| format!("loading {path}"))?;
    let kafka = KafkaConfig::from_config(&config)?;
    let overlord = config
        .global_properties()
        .get("druid.overlord.url")
        .context("the example needs druid.overlord.url in its config")?
        .to_string();
    let pipelines = Arc::new(tranquility_examples::local::local_pipelines(
        &config, &overlord,
    )?);
    let metrics = pipelines.metrics().clone();
    tranquility_kafka::run(kafka, pipelines.clone(), &metrics, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    pipelines.close().await;
    Ok(())
}
