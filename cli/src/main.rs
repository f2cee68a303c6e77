//! `tranquility`: push live event streams into Apache Druid.

#[path = "commands/kafka.rs"]
mod kafka;
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
enum Command {
    /// Tranquility Kafka: load Kafka topics into Druid as a kafka.json says.
    Kafka(kafka::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_from(legacy::normalize_args(std::env::args_os()));
    match cli.command {
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            Ok(())
        }
        Some(Command::Kafka(args)) => {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            tracing_subscriber::fmt().with_env_filter(filter).init();
            tokio::runtime::Runtime::new()?.block_on(kafka::run(args))
        }
    }
}
