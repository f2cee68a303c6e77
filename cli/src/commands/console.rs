//! `tranquility console -configFile FILE [-dataSource NAME]`: the original's `console`
//! command, run as `push -`. JSON objects, one per line, are read from stdin and sent to one
//! dataSource: `-dataSource`, or the only one the file defines (several without the flag are
//! refused, as the original refused them). It prints the counts and exits 1 if any event
//! failed, like `push`.

use std::path::PathBuf;

use crate::commands::push;
use crate::setup::{self, ConfigProblem};

/// Options of `tranquility console` (the original's, plus `push`'s).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The original Tranquility's console command. Reads JSON objects from stdin, \
    one per line (pretty-printed, multi-line objects must be joined first, e.g. `jq -c .`), \
    and sends them to the dataSource named by -dataSource, or to the only one in the file."
)]
pub struct Args {
    /// Configuration file with the dataSources (JSON or YAML); also `-configFile FILE`.
    #[arg(long = "config-file", value_name = "FILE")]
    pub config_file: PathBuf,
    /// The dataSource to send to (default: the only one in the file); also `-dataSource NAME`.
    #[arg(long = "data-source", value_name = "NAME")]
    pub data_source: Option<String>,
    /// Coordinate tasks in this process instead of through ZooKeeper (see `push --help`).
    #[arg(long)]
    pub local_coordination: bool,
    /// Lines handed to the pipeline at a time.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_lines: u64,
}

/// Picks the dataSource as the original did, then pushes stdin to it.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = setup::load_config(&args.config_file)?;
    let data_source = match args.data_source {
        Some(name) => name,
        None => match config.data_sources() {
            [only] => only.name.clone(),
            _ => {
                return Err(ConfigProblem(format!(
                    "{}: several dataSources are defined; name one with -dataSource <name>",
                    config.source()
                ))
                .into())
            }
        },
    };
    tracing::info!(dataSource = %data_source, "Sending data to dataSource[{data_source}].");
    let push_args = push::Args {
        input: PathBuf::from("-"),
        config_file: args.config_file,
        data_source: Some(data_source),
        local_coordination: args.local_coordination,
        batch_lines: args.batch_lines,
    };
    push::run_loaded(push_args, config).await
}
