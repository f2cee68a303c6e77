//! [`drive`]: send a whole stream through a pipeline and report what became of it.

use std::io;
use std::sync::Arc;

use futures::{SinkExt, Stream, StreamExt};
use tokio::io::AsyncRead;
use tranquility::beam::{Outcome, SendError};
use tranquility::metrics::Tally;
use tranquility::pipeline::DataSourcePipeline;

use crate::event::IntoEvent;
use crate::ndjson;
use crate::sink::{BeamSink, SinkError};

/// What became of a driven stream's events.
#[derive(Debug, Clone, Default)]
pub struct DriveReport {
    /// Received, sent, dropped (by reason) and failed counts.
    pub tally: Tally,
    /// The first failed event: its position in the stream (from 0) and the error.
    pub first_failure: Option<(u64, Arc<SendError>)>,
}

impl DriveReport {
    fn add(&mut self, seq: u64, outcome: &Outcome) {
        self.tally.add(outcome);
        if let (Outcome::Failed(e), None) = (outcome, &self.first_failure) {
            self.first_failure = Some((seq, e.clone()));
        }
    }
}

/// Why [`drive_ndjson`] stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// Reading the input failed; `report` covers the events read before.
    #[error("reading the input failed after {} events: {source}", report.tally.received)]
    Read {
        /// The read error.
        source: io::Error,
        /// The outcomes of the events read before it.
        report: DriveReport,
    },
    /// The sink refused an event.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Sends every event of `stream` through `pipeline`, waits for all their outcomes and counts
/// them. Back-pressure from the pipeline slows the reading of `stream`. The pipeline stays
/// open.
pub async fn drive<S>(stream: S, pipeline: &DataSourcePipeline) -> Result<DriveReport, SinkError>
where
    S: Stream,
    S::Item: IntoEvent,
{
    let (mut sink, mut outcomes) = BeamSink::<u64>::new(pipeline.clone());
    let feed = async move {
        let mut stream = std::pin::pin!(stream.enumerate());
        while let Some((seq, event)) = stream.next().await {
            // `feed`, not `send`: flushing after every event would defeat batching.
            sink.feed((seq as u64, event)).await?;
        }
        SinkExt::<(u64, S::Item)>::close(&mut sink).await
    };
    let collect = async {
        let mut report = DriveReport::default();
        while let Some((seq, outcome)) = outcomes.next().await {
            report.add(seq, &outcome);
        }
        report
    };
    let (fed, report) = futures::join!(feed, collect);
    fed.map(|()| report)
}

/// Sends every line of newline-delimited JSON from `reader` (see [`ndjson`]) through
/// `pipeline`; stops at the first read error, after waiting for the outcomes of the lines
/// read before it.
pub async fn drive_ndjson<R: AsyncRead>(
    reader: R,
    pipeline: &DataSourcePipeline,
) -> Result<DriveReport, DriveError> {
    let mut read_error = None;
    let lines = ndjson::lines(reader).scan(&mut read_error, |error, line| {
        futures::future::ready(match line {
            Ok(line) => Some(line),
            Err(e) => {
                **error = Some(e);
                None
            }
        })
    });
    let report = drive(lines, pipeline).await?;
    match read_error {
        Some(source) => Err(DriveError::Read { source, report }),
        None => Ok(report),
    }
}
