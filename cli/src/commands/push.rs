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
use tranquility::beam::{DropReason, Outcome};
use tranquility::coord::LocalCoordinator;
use tranquility::event::Destination;
use tranquility::metrics::Tally;
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

/// Final counts of a push: the pipelines' outcomes, plus lines no pipeline took.
#[derive(Debug, Default)]
struct Counts {
    tally: Tally,
    /// Lines dropped before any pipeline: no dataSource named, or one the config lacks.
    unrouted: BTreeMap<&'static str, u64>,
    first_error: Option<String>,
}

impl Counts {
    fn add(&mut self, outcome: &Outcome) {
        self.tally.add(outcome);
        if let Outcome::Failed(e) = outcome {
            self.first_error.get_or_insert_with(|| e.to_string());
        }
    }

    fn unrouted(&mut self, reason: &'static str, n: u64) {
        self.tally.received += n;
        *self.unrouted.entry(reason).or_default() += n;
    }

    fn dropped_total(&self) -> u64 {
        self.tally.dropped_total() + self.unrouted.values().sum::<u64>()
    }

    fn summary(&self) -> String {
        let t = &self.tally;
        let (received, sent, failed) = (t.received, t.sent, t.failed);
        let dropped = self.dropped_total();
        let mut text =
            format!("received {received}, sent {sent}, dropped {dropped}, failed {failed}");
        let mut reasons: BTreeMap<&str, u64> = self.unrouted.clone();
        reasons.extend(t.drop_reasons().map(|(r, n)| (r.as_str(), n)));
        if !reasons.is_empty() {
            let reasons: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
            text.push_str(&format!(" (dropped: {})", reasons.join(", ")));
        }
        text
    }
}

/// What the reader hands the counter.
enum Counted {
    /// Outcomes to come from a pipeline.
    Outcomes(BoxFuture<'static, Vec<Outcome>>),
    /// Lines dropped before any pipeline because none takes them, with the reason.
    Unrouted(&'static str, u64),
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
        received = counts.tally.received,
        sent = counts.tally.sent,
        dropped = counts.dropped_total(),
        failed = counts.tally.failed,
        "final counts"
    );
    // The original console's closing line, for scripts that look for it.
    info!(
        "Sent[{}], dropped[{}], failed[{}] messages to Druid.",
        counts.tally.sent,
        counts.dropped_total(),
        counts.tally.failed
    );
    println!("{}", counts.summary());
    if counts.tally.failed > 0 {
        anyhow::bail!(
            "{} of {} events failed; first error: {}",
            counts.tally.failed,
            counts.tally.received,
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
                        send(tx, Counted::Unrouted("no_data_source", 1));
                        continue;
                    }
                    Destination::NotAnObject => {
                        let unparseable = vec![Outcome::Dropped(DropReason::Unparseable)];
                        send(tx, Counted::Outcomes(Box::pin(async { unparseable })));
                        continue;
                    }
                },
            };
            if pipelines.get(&target).is_none() {
                if unknown_warned.insert(target.clone()) {
                    warn!(dataSource = %target, "no such dataSource in the configuration; its events are dropped");
                }
                send(tx, Counted::Unrouted("unknown_data_source", 1));
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
            Counted::Unrouted(reason, n) => counts.unrouted(reason, n),
        }
        progress.set_message(counts.summary());
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use tranquility::beam::SendError;

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
        c.add(&Outcome::Dropped(DropReason::Unparseable));
        c.add(&Outcome::Dropped(DropReason::Unparseable));
        c.unrouted("no_data_source", 1);
        let t = c.tally;
        assert_eq!(t.received, t.sent + c.dropped_total() + t.failed);
        assert_eq!(
            c.summary(),
            "received 6, sent 1, dropped 4, failed 1 (dropped: no_data_source 1, outside_window 1, unparseable 2)"
        );
        assert!(c.first_error.unwrap().contains("boom"));
    }
}
