//! POST-to-queryable latency on the Druid 31+ backends, against druid-local playing 35.0.0:
//! the latency figure's probes (see [`crate::latency`]) through the supervisor backend (a
//! tansu topic read by druid-local's Kafka supervisor) and through the batch backend (one
//! `index_parallel` task per interval every batch period).

use serde::Serialize;

use druid_local::{DruidLocal, DruidLocalConfig};
use test_support::harness::Tansu;

use crate::latency::{measure, LatencyFigure};
use crate::produce_figure::PLAYED;
use crate::workload;

/// Room for the events of a batch period and its task's run: `maxPendingBatches` x
/// `maxBatchSize` (2000) events may wait for their task.
const BATCH_PENDING_BATCHES: &str = "200";

/// Requests the server takes at once on the batch backend (`http.threads`, 40 by default): a
/// synchronous POST waits for its batch's task, so as many wait as arrive in a batch period
/// plus the task's run (the poster keeps at most 512 in flight).
const BATCH_HTTP_THREADS: &str = "1024";

/// What the figure measured on each backend.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BackendLatency {
    /// The Druid release druid-local played.
    pub druid_version: String,
    /// Through the supervisor backend.
    pub supervisor: Option<LatencyFigure>,
    /// Through the batch backend.
    pub batch: Option<LatencyFigure>,
    /// `druid.ingestion.batch.periodMillis` of the batch run.
    pub batch_period_ms: u64,
}

/// Measures both backends, `seconds` of posting at `rate` events/s each; a backend that could
/// not be measured is left out and its error returned beside the figure.
pub async fn run(
    seconds: u64,
    rate: u64,
    batch_period_ms: u64,
) -> (BackendLatency, Vec<(&'static str, anyhow::Error)>) {
    let mut figure = BackendLatency {
        druid_version: PLAYED.to_string(),
        batch_period_ms,
        ..BackendLatency::default()
    };
    let mut errors = Vec::new();
    match supervisor(seconds, rate).await {
        Ok(f) => figure.supervisor = Some(f),
        Err(e) => errors.push(("supervisor", e)),
    }
    match batch(seconds, rate, batch_period_ms).await {
        Ok(f) => figure.batch = Some(f),
        Err(e) => errors.push(("batch", e)),
    }
    (figure, errors)
}

async fn druid() -> anyhow::Result<DruidLocal> {
    let mut config = DruidLocalConfig::ephemeral();
    config.druid_version = PLAYED.parse()?;
    Ok(DruidLocal::start(config).await?)
}

async fn supervisor(seconds: u64, rate: u64) -> anyhow::Result<LatencyFigure> {
    let broker = Tansu::start()?;
    let bootstrap = broker.bootstrap_servers();
    let druid = druid().await?;
    let ds = "bench_latency_supervisor";
    let config = workload::supervisor_config(ds, &bootstrap, &[])?;
    let result = measure(&druid.url(), ds, &config, seconds, rate).await;
    druid.shutdown().await;
    drop(broker);
    result
}

async fn batch(seconds: u64, rate: u64, period_ms: u64) -> anyhow::Result<LatencyFigure> {
    let druid = druid().await?;
    let ds = "bench_latency_batch";
    let config = workload::batch_config(
        ds,
        &[
            ("druid.ingestion.batch.periodMillis", period_ms.to_string()),
            (
                "tranquility.maxPendingBatches",
                BATCH_PENDING_BATCHES.to_string(),
            ),
            ("http.threads", BATCH_HTTP_THREADS.to_string()),
        ],
    )?;
    let result = measure(&druid.url(), ds, &config, seconds, rate).await;
    druid.shutdown().await;
    result
}
