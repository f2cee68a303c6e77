//! The consume loop of one topic: read, send, retry failures, commit at quiet points.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tracing::{debug, info, warn};
use tranquility::beam::{Outcome, SendError};
use tranquility::metrics::Tally;
use tranquility::pipeline::DataSourcePipeline;

use crate::config::RetryPolicy;
use crate::error::FluvioError;
use crate::source::{Record, RecordSource};

/// Options of the consume loop.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// The topic (for errors and logs).
    pub topic: String,
    /// How often offsets are committed.
    pub commit_period: Duration,
    /// Records in flight before reading pauses.
    pub max_in_flight: usize,
    /// How failed sends are retried.
    pub retry: RetryPolicy,
}

impl ConsumeOptions {
    /// Options for `topic` with the defaults: commit every 15 s (the original's
    /// `commit.periodMillis`), 10 000 records in flight, retries with backoff for ever.
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            commit_period: Duration::from_secs(15),
            max_in_flight: 10_000,
            retry: RetryPolicy::default(),
        }
    }
}

/// What a finished consume loop did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumeReport {
    /// Final outcomes of the records read (a retried record counts once).
    pub tally: Tally,
    /// Attempts that failed and were retried.
    pub retries: u64,
    /// Commits made.
    pub commits: u64,
}

type Attempt = BoxFuture<'static, (Record, u32, Outcome)>;

fn attempt(
    pipeline: &DataSourcePipeline,
    record: Record,
    attempts: u32,
    wait: Duration,
) -> Attempt {
    let send = pipeline.send(record.value.clone());
    async move {
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let outcome = send.await;
        (record, attempts + 1, outcome)
    }
    .boxed()
}

/// Consumes `source` into `pipeline` until the source ends or `stop` resolves; then waits for
/// every outcome and commits. Offsets are committed only when every record read has its final
/// outcome.
pub async fn consume(
    mut source: impl RecordSource,
    pipeline: &DataSourcePipeline,
    options: &ConsumeOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<ConsumeReport, FluvioError> {
    let mut report = ConsumeReport::default();
    let mut in_flight: FuturesUnordered<Attempt> = FuturesUnordered::new();
    let mut uncommitted = 0u64;
    let mut reading = true;
    let mut commit_due = false;
    let mut ticker = tokio::time::interval(options.commit_period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut stop = std::pin::pin!(stop.fuse());
    loop {
        if commit_due && in_flight.is_empty() {
            if uncommitted > 0 {
                commit(&mut source, options, &mut report).await?;
                uncommitted = 0;
            }
            commit_due = false;
        }
        if !reading && in_flight.is_empty() {
            break;
        }
        let may_read = reading && !commit_due && in_flight.len() < options.max_in_flight;
        tokio::select! {
            () = &mut stop, if reading => {
                info!(topic = %options.topic, "stopping: waiting for outcomes, then committing");
                reading = false;
                commit_due = true;
            }
            Some((record, attempts, outcome)) = in_flight.next() => match outcome {
                Outcome::Failed(error) => {
                    let retry = error.is_retriable() && options.retry.allows(attempts);
                    if !retry {
                        return Err(send_failed(options, &record, attempts, error));
                    }
                    report.retries += 1;
                    let wait = options.retry.backoff(attempts);
                    warn!(topic = %options.topic, partition = record.partition,
                        offset = record.offset, attempts, error = %error, ?wait, "send failed; retrying");
                    in_flight.push(attempt(pipeline, record, attempts, wait));
                }
                outcome => report.tally.add(&outcome),
            },
            next = source.next(), if may_read => match next {
                Some(Ok(record)) => {
                    uncommitted += 1;
                    in_flight.push(attempt(pipeline, record, 0, Duration::ZERO));
                }
                Some(Err(source)) => {
                    return Err(FluvioError::Read { topic: options.topic.clone(), source });
                }
                None => {
                    debug!(topic = %options.topic, "topic ended");
                    reading = false;
                    commit_due = true;
                }
            },
            _ = ticker.tick(), if !commit_due => commit_due = true,
        }
    }
    Ok(report)
}

async fn commit(
    source: &mut impl RecordSource,
    options: &ConsumeOptions,
    report: &mut ConsumeReport,
) -> Result<(), FluvioError> {
    source
        .commit()
        .await
        .map_err(|source| FluvioError::Commit {
            topic: options.topic.clone(),
            source,
        })?;
    report.commits += 1;
    debug!(topic = %options.topic, received = report.tally.received, "offsets committed");
    Ok(())
}

fn send_failed(
    options: &ConsumeOptions,
    record: &Record,
    attempts: u32,
    error: Arc<SendError>,
) -> FluvioError {
    FluvioError::Send {
        topic: options.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        attempts,
        error,
    }
}
