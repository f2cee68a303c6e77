//! `tranquility`: push live event streams into Apache Druid.

mod legacy;

use clap::Parser;

/// Push live event streams into Apache Druid realtime indexing tasks.
#[derive(Debug, Parser)]
#[command(name = "tranquility", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_from(legacy::normalize_args(std::env::args_os()));
    match cli.command {
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            Ok(())
        }
    }
}
