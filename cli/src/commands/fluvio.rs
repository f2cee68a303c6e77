//! `tranquility fluvio -configFile fluvio.json`: consume Fluvio topics into Druid, committing
//! only records whose events have an outcome, until SIGTERM or CTRL-C; then drain (outcomes
//! awaited), commit, and log the final counts.
//!
//! The Fluvio client is a heavy build, so it comes with the `fluvio` feature of this crate
//! (`cargo build --release -p tranquility-cli --features fluvio`); without it the command
//! says so and exits with an error.

use std::future::Future;
use std::path::PathBuf;

use anyhow::Context;
use tranquility::pipeline::Pipelines;
use tranquility_fluvio::{DataSourceTopic, FluvioConfig, RecordSource, SourceError};

/// Options of `tranquility fluvio`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The configuration file holds `dataSources` with their specs and, per \
    dataSource, `fluvio.topic`, `reportDropsAsExceptions` and `reportParseExceptions`; global \
    properties `fluvio.endpoint`, `fluvio.consumer.id`, `fluvio.offsetStart` and \
    `commit.periodMillis` (see connector-fluvio/README.md)."
)]
pub struct Args {
    /// Configuration file (JSON or YAML); also `-configFile FILE`.
    #[arg(long = "config-file", value_name = "FILE")]
    pub config_file: PathBuf,
}

/// Consumes until a stop signal, then commits what has outcomes and logs the final counts.
#[cfg(feature = "fluvio")]
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = crate::setup::load_config(&args.config_file)?;
    let fluvio = FluvioConfig::from_config(&config)
        .with_context(|| format!("{}", args.config_file.display()))?;
    let pipelines = crate::setup::build_pipelines(&config, Pipelines::builder())?;
    let open = |route: &DataSourceTopic| {
        let (fluvio, topic) = (&fluvio, route.topic.clone());
        async move { tranquility_fluvio::FluvioSource::connect(fluvio, &topic).await }
    };
    let shutdown = tranquility_server::shutdown_signal();
    consume(&fluvio, &pipelines, open, shutdown).await
}

/// Without the `fluvio` feature there is no Fluvio client to run.
#[cfg(not(feature = "fluvio"))]
pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::bail!(
        "this tranquility was built without Fluvio support, so it cannot consume {}: \
         build it with `cargo build --release -p tranquility-cli --features fluvio`",
        args.config_file.display()
    )
}

/// Consumes every topic, from the sources `open` gives, into `pipelines` until `shutdown`;
/// then closes the pipelines and logs the final counts per dataSource.
#[cfg_attr(not(feature = "fluvio"), allow(dead_code))] // then only its tests drive it
async fn consume<S, Open>(
    fluvio: &FluvioConfig,
    pipelines: &Pipelines,
    open: impl Fn(&DataSourceTopic) -> Open,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()>
where
    S: RecordSource,
    Open: Future<Output = Result<S, SourceError>>,
{
    let sink_of = |name: &str| pipelines.event_sink(name);
    let (routes, options) = (&fluvio.routes, &fluvio.options);
    let reports = tranquility_fluvio::run_topics(routes, options, sink_of, open, shutdown).await;
    pipelines.close().await;
    for (data_source, report) in reports.as_deref().unwrap_or_default() {
        let t = report.tally;
        tracing::info!(
            dataSource = %data_source,
            received = t.received,
            sent = t.sent,
            dropped = t.dropped_total(),
            failed = t.failed,
            retries = report.retries,
            commits = report.commits,
            "final counts"
        );
    }
    reports.map(drop).context("consuming from Fluvio")
}

#[cfg(test)]
mod tests;
