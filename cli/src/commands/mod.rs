//! The subcommands, one module each. A new way in (e.g. `kafka`) is a new module, a new
//! variant below and one arm in [`Command::run`].

pub mod bench;
pub mod console;
pub mod fluvio;
pub mod kafka;
pub mod local;
pub mod push;
pub mod quickstart;
pub mod reindex;
pub mod server;
pub mod spec;

/// What `tranquility` can do.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Tranquility Server: accept events over HTTP and send them to Druid.
    Server(server::Args),
    /// Run druid-local alone: a single-process, Druid-wire-compatible indexing service.
    Local(local::Args),
    /// Run druid-local and Tranquility Server together, with a sample dataSource, in one
    /// process (no ZooKeeper needed).
    Quickstart(quickstart::Args),
    /// Send newline-delimited JSON events from a file or stdin to configured dataSources.
    Push(push::Args),
    /// The original's console command: JSON objects from stdin to one dataSource (`push -`).
    Console(console::Args),
    /// Tranquility Kafka: load Kafka topics into Druid as a kafka.json says.
    Kafka(kafka::Args),
    /// Tranquility Fluvio: consume Fluvio topics into Druid as a fluvio.json says (needs the
    /// `fluvio` build feature).
    Fluvio(fluvio::Args),
    /// Replace an interval of a dataSource with a batch re-ingestion of the true data set (the
    /// hybrid batch/streaming architecture).
    Reindex(reindex::Args),
    /// Print the JSON Tranquility would submit to Druid for each dataSource (realtime task,
    /// Kafka supervisor or batch task).
    Spec(spec::Args),
    /// Measure speed and memory against their limits in one run; print and write a report.
    Bench(bench::Args),
}

impl Command {
    /// Runs the command to its end.
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Server(args) => server::run(args).await,
            Command::Local(args) => local::run(args).await,
            Command::Quickstart(args) => quickstart::run(args).await,
            Command::Push(args) => push::run(args).await,
            Command::Console(args) => console::run(args).await,
            Command::Kafka(args) => kafka::run(args).await,
            Command::Fluvio(args) => fluvio::run(args).await,
            Command::Reindex(args) => reindex::run(args).await,
            Command::Spec(args) => spec::run(args).await,
            Command::Bench(args) => bench::run(args).await,
        }
    }
}
