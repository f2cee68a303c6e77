//! `tranquility push FILE|-`: newline-delimited JSON events from a file or stdin, through the
//! pipelines of a configuration file, with a progress bar and final counts. Exits non-zero
//! when any event failed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use futures::future::BoxFuture;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};
use tranquility::beam::Outcome;
use tranquility::coord::LocalCoordinator;
use tranquility::event::Destination;
use tranquility::pipeline::Pipelines;
use tranquility::spec::TranquilityConfig;

use crate::setup::{self, ConfigProblem};

/// Options of `tranquility push`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Each line is one JSON object. Without --data-source, a line goes to \
    the dataSource named by its `dataSource` field, else its `feed` field. Prints the final \
    counts (received, sent, dropped by reason, failed); exits 1 if any event failed."
)]
pub struct Args {
    /// NDJSON file to read, or `-` for stdin.
    #[arg(value_name = "FILE|-")]
    pub input: PathBuf,
    #[command(flatten)]
    pub options: Options,
}

/// What `push` and `console` share.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Configuration file with the dataSources (JSON or YAML); also `-configFile FILE`.
    #[arg(long = "config-file", value_name = "FILE")]
    pub config_file: PathBuf,
    /// Send every line to this dataSource; also `-dataSource NAME`.
    #[arg(long = "data-source", value_name = "NAME")]
    pub data_source: Option<String>,
    /// Coordinate tasks in this process instead of through ZooKeeper. Only for a Druid no
    /// other Tranquility instance, and no earlier run still holding tasks for the same
    /// intervals, sends to: their tasks are not known here.
    #[arg(long)]
    pub local_coordination: bool,
    /// Lines handed to the pipelines at a time.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_lines: u64,
}

/// Final counts of a push.
#[derive(Debug, Default)]
struct Counts {
    received: u64,
    sent: u64,
    dropped: BTreeMap<String, u64>,
    failed: u64,
    first_error: Option<String>,
}

impl Counts {
    fn add(&mut self, outcome: &Outcome) {
        self.received += 1;
        match outcome {
            Outcome::Sent => self.sent += 1,
            Outcome::Dropped(reason) => self.drop_with(reason.as_str(), 1),
            Outcome::Failed(e) => {
                self.failed += 1;
                self.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }

    fn drop_with(&mut self, reason: &str, n: u64) {
        *self.dropped.entry(reason.to_string()).or_default() += n;
    }

    fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    fn summary(&self) -> String {
        let mut text = format!(
            "received {}, sent {}, dropped {}, failed {}",
            self.received,
            self.sent,
            self.dropped_total(),
            self.failed
        );
        if !self.dropped.is_empty() {
            let reasons: Vec<String> = self
                .dropped
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            text.push_str(&format!(" (dropped: {})", reasons.join(", ")));
        }
        text
    }
}

/// What the reader hands the counter.
enum Counted {
    /// Outcomes to come from a pipeline.
    Outcomes(BoxFuture<'static, Vec<Outcome>>),
    /// Lines dropped before any pipeline, with the reason.
    Dropped(&'static str, u64),
}

/// Reads, sends and counts until the input ends (or a stop signal), then prints the counts.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = setup::load_config(&args.options.config_file)?;
    run_loaded(args, config).await
}

/// [`run`] with the configuration file already loaded.
pub async fn run_loaded(args: Args, config: TranquilityConfig) -> anyhow::Result<()> {
    if let Some(name) = &args.options.data_source {
        if config.data_source(name).is_none() {
            return Err(ConfigProblem(format!(
                "{}: no dataSource '{name}' is defined (--data-source)",
                config.source()
            ))
            .into());
        }
    }
    let mut options = Pipelines::builder();
    if args.options.local_coordination {
        options = options.coordinator(Arc::new(LocalCoordinator::new()));
    }
    let pipelines = Arc::new(setup::build_pipelines(&config, options)?);

    let (input, total_bytes): (Box<dyn AsyncBufRead + Unpin + Send>, Option<u64>) =
        if args.input.as_os_str() == "-" {
            (Box::new(BufReader::new(tokio::io::stdin())), None)
        } else {
            let file = tokio::fs::File::open(&args.input)
                .await
                .with_context(|| format!("cannot open {}", args.input.display()))?;
            let len = file.metadata().await.ok().map(|m| m.len());
            (Box::new(BufReader::with_capacity(1 << 16, file)), len)
        };
    let progress = progress_bar(total_bytes);

    let (tx, rx) = mpsc::unbounded_channel();
    let counter = tokio::spawn(count(rx, progress.clone()));
    let (stop, stop_rx) = watch::channel(false);
    let signals = tokio::spawn(async move {
        tranquility_server::shutdown_signal().await;
        let _ = stop.send(true);
    });
    let stopped = read_and_send(input, &args, &pipelines, &tx, &progress, stop_rx).await;
    signals.abort();
    let stopped = stopped?;
    drop(tx);
    // Batches waiting to fill (lingerMillis < 0) go out on the flush.
    let (_, counts) = tokio::join!(pipelines.flush_all(), counter);
    let counts = counts.context("counting outcomes")?;
    pipelines.close().await;
    progress.finish_and_clear();

    if stopped {
        warn!("stopped before the end of the input");
    }
    info!(
        received = counts.received,
        sent = counts.sent,
        dropped = counts.dropped_total(),
        failed = counts.failed,
        "final counts"
    );
    // The original console's closing line, for scripts that look for it.
    info!(
        "Sent[{}], dropped[{}], failed[{}] messages to Druid.",
        counts.sent,
        counts.dropped_total(),
        counts.failed
    );
    println!("{}", counts.summary());
    if counts.failed > 0 {
        anyhow::bail!(
            "{} of {} events failed; first error: {}",
            counts.failed,
            counts.received,
            counts.first_error.as_deref().unwrap_or("unknown")
        );
    }
    Ok(())
}

fn progress_bar(total_bytes: Option<u64>) -> ProgressBar {
    let bar = match total_bytes {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes} read {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Reads lines in batches, routes each to its dataSource and hands the batches in, until the
/// input ends or `stop` turns true (then what was read is still handed in). Returns whether it
/// was stopped.
async fn read_and_send(
    mut input: Box<dyn AsyncBufRead + Unpin + Send>,
    args: &Args,
    pipelines: &Pipelines,
    tx: &mpsc::UnboundedSender<Counted>,
    progress: &ProgressBar,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<bool> {
    let mut unknown_warned = HashSet::new();
    let mut line = Vec::new();
    loop {
        let mut batch: HashMap<String, Vec<Bytes>> = HashMap::new();
        let mut lines = 0;
        let mut end = None;
        while lines < args.options.batch_lines {
            line.clear();
            // Only the read is cut short by a stop: a partly read line is not counted.
            let n = tokio::select! {
                n = input.read_until(b'\n', &mut line) => {
                    n.with_context(|| format!("reading {}", args.input.display()))?
                }
                _ = stop.wait_for(|stopped| *stopped) => {
                    end = Some(true);
                    break;
                }
            };
            if n == 0 {
                end = Some(false);
                break;
            }
            progress.inc(n as u64);
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            lines += 1;
            let target = match &args.options.data_source {
                Some(name) => name.clone(),
                None => match Destination::of(text) {
                    Destination::To(name) => name,
                    Destination::Unnamed => {
                        send(tx, Counted::Dropped("no_data_source", 1));
                        continue;
                    }
                    Destination::NotAnObject => {
                        send(tx, Counted::Dropped("unparseable", 1));
                        continue;
                    }
                },
            };
            if pipelines.get(&target).is_none() {
                if unknown_warned.insert(target.clone()) {
                    warn!(dataSource = %target, "no such dataSource in the configuration; its events are dropped");
                }
                send(tx, Counted::Dropped("unknown_data_source", 1));
                continue;
            }
            batch
                .entry(target)
                .or_default()
                .push(Bytes::copy_from_slice(text));
        }
        for (name, raws) in batch {
            if let Some(pipeline) = pipelines.get(&name) {
                send(tx, Counted::Outcomes(pipeline.hand_in(raws).await));
            }
        }
        if let Some(stopped) = end {
            return Ok(stopped);
        }
    }
}

fn send(tx: &mpsc::UnboundedSender<Counted>, item: Counted) {
    // The counter lives until the sender is dropped, so this cannot fail while reading.
    let _ = tx.send(item);
}

/// Awaits every batch's outcomes, in order, and keeps the counts (and the progress message).
async fn count(mut rx: mpsc::UnboundedReceiver<Counted>, progress: ProgressBar) -> Counts {
    let mut counts = Counts::default();
    while let Some(item) = rx.recv().await {
        match item {
            Counted::Outcomes(outcomes) => {
                for outcome in outcomes.await {
                    counts.add(&outcome);
                }
            }
            Counted::Dropped(reason, n) => {
                counts.received += n;
                counts.drop_with(reason, n);
            }
        }
        progress.set_message(counts.summary());
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use tranquility::beam::{DropReason, SendError};

    #[test]
    fn counts_balance_and_name_reasons() {
        let mut c = Counts::default();
        for o in [
            Outcome::Sent,
            Outcome::Dropped(DropReason::OutsideWindow),
            Outcome::failed(SendError::Other("boom".into())),
        ] {
            c.add(&o);
        }
        c.received += 2;
        c.drop_with("unparseable", 2);
        assert_eq!(c.received, c.sent + c.dropped_total() + c.failed);
        assert_eq!(
            c.summary(),
            "received 5, sent 1, dropped 3, failed 1 (dropped: outside_window 1, unparseable 2)"
        );
        assert!(c.first_error.unwrap().contains("boom"));
    }
}
