//! `tranquility fluvio -configFile fluvio.json`: consume Fluvio topics into Druid, committing
//! only records whose events have an outcome, until SIGTERM or CTRL-C.
//!
//! The Fluvio client is a heavy build, so it comes with the `fluvio` feature of this crate
//! (`cargo build --release -p tranquility-cli --features fluvio`); without it the command
//! says so and exits with an error.

use std::path::PathBuf;

/// Options of `tranquility fluvio`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The configuration file holds `dataSources` with their specs and, per \
    dataSource, `fluvio.topic`; global properties `fluvio.endpoint`, `fluvio.consumer.id`, \
    `fluvio.offsetStart` and `commit.periodMillis` (see connector-fluvio/README.md)."
)]
pub struct Args {
    /// Configuration file (JSON or YAML); also `-configFile FILE`.
    #[arg(long = "config-file", value_name = "FILE")]
    pub config_file: PathBuf,
}

/// Consumes until a stop signal, then commits what has outcomes and logs the final counts.
#[cfg(feature = "fluvio")]
pub async fn run(args: Args) -> anyhow::Result<()> {
    use anyhow::Context;
    use tranquility::pipeline::PipelineOptions;

    let config = crate::setup::load_config(&args.config_file)?;
    let fluvio = tranquility_fluvio::FluvioConfig::from_config(&config)
        .with_context(|| format!("{}", args.config_file.display()))?;
    let pipelines = crate::setup::build_pipelines(&config, PipelineOptions::default())?;
    let reports =
        tranquility_fluvio::run(&fluvio, &pipelines, tranquility_server::shutdown_signal())
            .await
            .context("consuming from Fluvio")?;
    pipelines.close().await;
    for (data_source, report) in reports {
        let t = report.tally;
        tracing::info!(
            dataSource = %data_source,
            received = t.received,
            sent = t.sent,
            dropped = t.dropped_total(),
            failed = t.failed,
            commits = report.commits,
            "final counts"
        );
    }
    Ok(())
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
