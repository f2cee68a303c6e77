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
    #[command(flatten)]
    pub options: push::Options,
}

/// Picks the dataSource as the original did, then pushes stdin to it.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut options = args.options;
    let config = setup::load_config(&options.config_file)?;
    let data_source = match options.data_source.take() {
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
    options.data_source = Some(data_source);
    let push_args = push::Args {
        input: PathBuf::from("-"),
        options,
    };
    push::run_loaded(push_args, config).await
}
