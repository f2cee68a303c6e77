//! `tranquility-bench`: run the benchmark figures, print them, write the JSON report.
//!
//! ```text
//! cargo run --release -p tranquility-bench -- --quick --out report.json
//! ```

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tranquility_bench::{Figure, Options};

/// Measure the pipeline's speed and memory against its limits, in one run.
#[derive(Debug, Parser)]
#[command(
    name = "tranquility-bench",
    version,
    args_conflicts_with_subcommands = true
)]
struct Args {
    /// Shorter runs (under 2 minutes in all) instead of the default (under 5).
    #[arg(long)]
    quick: bool,
    /// Write the JSON report here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Figures to measure, comma-separated: core, server, kafka, overload, latency.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Core figure: times the 100k-event pool goes through the pipeline.
    #[arg(long)]
    core_passes: Option<usize>,
    /// Core figure: threads for both sides.
    #[arg(long)]
    threads: Option<usize>,
    /// Server figure: seconds per side.
    #[arg(long)]
    server_seconds: Option<u64>,
    /// Server and overload figures: clients posting at once.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Server and overload figures: events per request.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Overload figure: seconds of posting at full speed.
    #[arg(long)]
    overload_seconds: Option<u64>,
    /// Overload figure: each push to druid-local holds its only push slot this long (ms).
    #[arg(long)]
    push_hold_ms: Option<u64>,
    /// Overload figure: run druid-local in this process (its memory then counts in the RSS).
    #[arg(long)]
    in_process_druid: bool,
    /// Latency figure: seconds of posting.
    #[arg(long)]
    latency_seconds: Option<u64>,
    /// Latency figure: events per second.
    #[arg(long)]
    latency_rate: Option<u64>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// (internal) Serve a throttled druid-local for the overload figure.
    #[command(hide = true)]
    ServeSlowDruid {
        /// Milliseconds each push-events request holds the only push slot.
        #[arg(long)]
        push_hold_ms: u64,
    },
}

fn options(args: &Args) -> anyhow::Result<Options> {
    let mut o = if args.quick {
        Options::quick()
    } else {
        Options::default()
    };
    if !args.only.is_empty() {
        o.figures = args
            .only
            .iter()
            .map(|name| {
                Figure::from_name(name).with_context(|| {
                    format!("unknown figure '{name}'; expected core, server, kafka, overload or latency")
                })
            })
            .collect::<anyhow::Result<_>>()?;
    }
    let set = |v: Option<usize>, to: &mut usize| {
        if let Some(v) = v {
            *to = v.max(1);
        }
    };
    set(args.core_passes, &mut o.core_passes);
    set(args.threads, &mut o.threads);
    set(args.concurrency, &mut o.concurrency);
    set(args.batch_size, &mut o.batch_size);
    let set = |v: Option<u64>, to: &mut u64| {
        if let Some(v) = v {
            *to = v.max(1);
        }
    };
    set(args.server_seconds, &mut o.server_seconds);
    set(args.overload_seconds, &mut o.overload_seconds);
    set(args.push_hold_ms, &mut o.push_hold_ms);
    set(args.latency_seconds, &mut o.latency_seconds);
    set(args.latency_rate, &mut o.latency_rate);
    if !args.in_process_druid {
        let me = std::env::current_exe().context("finding this program to run druid-local")?;
        o.druid_command = Some(vec![
            me.to_string_lossy().into_owned(),
            "serve-slow-druid".into(),
            "--push-hold-ms".into(),
            o.push_hold_ms.to_string(),
        ]);
    }
    Ok(o)
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,tranquility_bench=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(Command::ServeSlowDruid { push_hold_ms }) = args.command {
        return runtime.block_on(tranquility_bench::slow_druid::serve(push_hold_ms));
    }
    let options = options(&args)?;
    let report = runtime.block_on(tranquility_bench::run(&options));
    println!("{report}");
    if let Some(path) = &args.out {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("writing the report to {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}
