//! `tranquility server -configFile server.json`: Tranquility Server over the dataSources of a
//! configuration file, until SIGTERM or CTRL-C.

use std::path::PathBuf;

use anyhow::Context;
use tranquility::pipeline::Pipelines;
use tranquility_server::{shutdown_signal, AppState, Server, ServerConfig};

use crate::setup;

/// Options of `tranquility server`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The configuration file is the original Tranquility Server's \
    (JSON or YAML): `dataSources` with their specs and properties, and global `properties` \
    such as http.port (default 8200), http.bindAddress and http.maxBodyBytes."
)]
pub struct Args {
    /// Configuration file (JSON or YAML); also `-configFile FILE`.
    #[arg(long = "config-file", value_name = "FILE")]
    pub config_file: PathBuf,
}

/// Serves until a stop signal, then drains and logs the final counts.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = setup::load_config(&args.config_file)?;
    let server_config = ServerConfig::from_config(&config)?;
    let pipelines = setup::build_pipelines(&config, Pipelines::builder())?;
    // Refuse to start against shared metadata this version cannot share safely.
    pipelines
        .check_shared_metadata()
        .await
        .map_err(|e| setup::ConfigProblem(format!("{}: {e}", config.source())))?;
    let listen = server_config.listen;
    let state = AppState::from_pipelines(server_config, &config, &pipelines);
    let server = Server::bind(state)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    server
        .run(shutdown_signal())
        .await
        .context("serving HTTP")?;
    Ok(())
}
