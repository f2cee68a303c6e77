//! The command line of a benchmark run, shared by `tranquility-bench` and `tranquility bench`.

use std::path::PathBuf;

use anyhow::Context;

use crate::{Figure, Options};

/// Options of a benchmark run.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Shorter runs (under 2 minutes in all) instead of the default (under 5).
    #[arg(long)]
    pub quick: bool,
    /// Write the JSON report here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Figures to measure, comma-separated: core, server, kafka, supervisor, overload, latency,
    /// supervisor-backend, backend-latency.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Core figure: times the 100k-event pool goes through the pipeline.
    #[arg(long)]
    pub core_passes: Option<usize>,
    /// Core figure: threads for both sides.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Server figure: seconds per side.
    #[arg(long)]
    pub server_seconds: Option<u64>,
    /// Server and overload figures: clients posting at once.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Server and overload figures: events per request.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Overload figure: seconds of posting at full speed.
    #[arg(long)]
    pub overload_seconds: Option<u64>,
    /// Overload figure: each push to druid-local holds its only push slot this long (ms).
    #[arg(long)]
    pub push_hold_ms: Option<u64>,
    /// Server and overload figures: run druid-local in this process instead of a child
    /// process. The server figure then shares every core between Tranquility and
    /// druid-local, and the overload RSS includes druid-local's memory.
    #[arg(long)]
    pub in_process_druid: bool,
    /// Latency figures: seconds of posting (on each backend for backend-latency).
    #[arg(long)]
    pub latency_seconds: Option<u64>,
    /// Latency figures: events per second.
    #[arg(long)]
    pub latency_rate: Option<u64>,
    /// Backend-latency figure: the batch backend's batch period (ms).
    #[arg(long)]
    pub batch_period_ms: Option<u64>,
    /// Supervisor-backend figure: seconds per side.
    #[arg(long)]
    pub produce_seconds: Option<u64>,
    /// Supervisor-backend figure: run the broker on half the cores (taskset) and the rest of
    /// the figure on the other half, instead of sharing every core.
    #[arg(long)]
    pub pin_broker: bool,
    /// (internal) Serve a throttled druid-local for the overload figure, holding each push
    /// this many milliseconds.
    #[arg(long, hide = true)]
    pub serve_slow_druid: Option<u64>,
    /// (internal) Serve a plain druid-local for the server figure.
    #[arg(long, hide = true)]
    pub serve_druid: bool,
}

fn options(args: &Args, program: &[&str]) -> anyhow::Result<Options> {
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
                    format!("unknown figure '{name}'; expected core, server, kafka, supervisor, overload, latency, supervisor-backend or backend-latency")
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
    set(args.batch_period_ms, &mut o.batch_period_ms);
    set(args.produce_seconds, &mut o.produce_seconds);
    o.pin_broker = args.pin_broker;
    if !args.in_process_druid {
        let me = std::env::current_exe().context("finding this program to run druid-local")?;
        let mut command = vec![me.to_string_lossy().into_owned()];
        command.extend(program.iter().map(|s| s.to_string()));
        o.druid_program = Some(command);
    }
    Ok(o)
}

/// Runs what `args` ask for: the figures (printed, and written to `--out`), or the throttled
/// druid-local child. `subcommand` is what follows the program name to reach these arguments
/// (empty for `tranquility-bench`, `["bench"]` for `tranquility bench`), so the child can be
/// started through the same program.
pub async fn main(args: Args, subcommand: &[&str]) -> anyhow::Result<()> {
    if let Some(push_hold_ms) = args.serve_slow_druid {
        return crate::slow_druid::serve(push_hold_ms).await;
    }
    if args.serve_druid {
        return crate::slow_druid::serve_plain().await;
    }
    let options = options(&args, subcommand)?;
    let report = crate::run(&options).await;
    println!("{report}");
    if let Some(path) = &args.out {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("writing the report to {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}
