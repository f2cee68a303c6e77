//! Running against druid-local in one process: pipelines that find tasks through its Overlord
//! and share beams in-process (no ZooKeeper), Tranquility Server over them, and sums through a
//! native query.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tranquility::coord::LocalCoordinator;
use tranquility::pipeline::Pipelines;
use tranquility::spec::TranquilityConfig;
use tranquility_server::{AppState, Server, ServerConfig};

/// The sample config files of this crate, by name.
pub fn sample_config(name: &str) -> anyhow::Result<TranquilityConfig> {
    let text = match name {
        "server.json" => include_str!("../configs/server.json"),
        "kafka.json" => include_str!("../configs/kafka.json"),
        "fluvio.json" => include_str!("../configs/fluvio.json"),
        other => bail!("no sample config called {other}"),
    };
    Ok(TranquilityConfig::from_str(text, name)?)
}

/// Pipelines for every dataSource of `config`, creating tasks through the Overlord at
/// `overlord_url` and coordinating in this process.
pub fn local_pipelines(
    config: &TranquilityConfig,
    overlord_url: &str,
) -> anyhow::Result<Pipelines> {
    let options = Pipelines::builder()
        .coordinator(Arc::new(LocalCoordinator::new()))
        .overlord_url(overlord_url);
    Ok(options.build(config)?)
}

/// Sums of `metrics` over every row of `data_source` (a native timeseries query), by name.
pub async fn totals(druid_url: &str, data_source: &str, metrics: &[&str]) -> anyhow::Result<Value> {
    let aggregations: Vec<Value> = metrics
        .iter()
        .map(|m| json!({"type": "longSum", "name": m, "fieldName": m}))
        .collect();
    let query = json!({
        "queryType": "timeseries",
        "dataSource": data_source,
        "intervals": ["2000-01-01/2100-01-01"],
        "granularity": "all",
        "aggregations": aggregations,
    });
    let answer: Value = reqwest::Client::new()
        .post(format!("{druid_url}/druid/v2"))
        .json(&query)
        .send()
        .await
        .context("querying Druid")?
        .error_for_status()?
        .json()
        .await?;
    Ok(answer
        .get(0)
        .and_then(|row| row.get("result"))
        .cloned()
        .unwrap_or_else(|| json!({})))
}

/// Polls until the sum of `metric` over `data_source` reaches `expected`; returns the last sum
/// seen (which may differ) when `timeout` passes.
pub async fn wait_for_total(
    druid_url: &str,
    data_source: &str,
    metric: &str,
    expected: i64,
    timeout: Duration,
) -> anyhow::Result<i64> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = totals(druid_url, data_source, &[metric]).await?[metric]
            .as_i64()
            .unwrap_or(0);
        if got >= expected || Instant::now() >= deadline {
            return Ok(got);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Tranquility Server over `pipelines`, on a free loopback port; serves until `stop` resolves.
/// Returns its address and the task running it.
pub async fn serve(
    config: &TranquilityConfig,
    pipelines: &Pipelines,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let state = AppState::from_pipelines(ServerConfig::from_config(config)?, config, pipelines);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = Server::from_listener(listener, state);
    let addr = server.local_addr()?;
    let task = tokio::spawn(async move { server.run(stop).await.map(|_| ()) });
    Ok((addr, task))
}
