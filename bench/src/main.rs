//! `tranquility-bench`: run the benchmark figures, print them, write the JSON report.
//!
//! ```text
//! cargo run --release -p tranquility-bench -- --quick --out report.json
//! ```

use clap::Parser;

// glibc's allocator serialises request threads on its arena locks under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Measure the pipeline's speed and memory against its limits, in one run.
#[derive(Debug, Parser)]
#[command(name = "tranquility-bench", version)]
struct Cli {
    #[command(flatten)]
    args: tranquility_bench::cli::Args,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,tranquility_bench=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(tranquility_bench::cli::main(cli.args, &[]))
}
