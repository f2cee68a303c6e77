//! `tranquility`: push live event streams into Apache Druid.
//!
//! Exit codes: 0 on success, 1 when running failed, 2 for a bad command line or a bad
//! configuration (the message names the file, the property and the value).
//!
//! Start reading at `commands/mod.rs` (one module per subcommand), and `setup.rs` (loading a
//! config file and building its pipelines, shared by the commands); `legacy.rs` accepts the
//! original's `-configFile` spelling.

mod commands;
mod legacy;
mod setup;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

// glibc's allocator serialises request threads on its arena locks under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Push live event streams into Apache Druid realtime indexing tasks.
#[derive(Debug, Parser)]
#[command(name = "tranquility", version, about, arg_required_else_help = true)]
struct Cli {
    /// Log filter in RUST_LOG syntax, e.g. `info` or `info,tranquility=debug`.
    #[arg(long, global = true, env = "RUST_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: commands::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(legacy::normalize_args(std::env::args_os()));
    let filter = EnvFilter::try_new(&cli.log).unwrap_or_else(|e| {
        eprintln!("warning: ignoring the log filter '{}': {e}", cli.log);
        EnvFilter::new("info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(cli.command.run());
    // A read of stdin blocks a thread that only more input or EOF frees; do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            if setup::is_config_error(&err) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The error and its causes on one line, skipping a cause its parent already quoted.
fn describe(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
