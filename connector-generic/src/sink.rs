//! [`BeamSink`]: a `futures::Sink` into one dataSource's pipeline, and the [`Outcomes`]
//! stream that pairs each event's outcome with the tag it was sent with.
//!
//! Each event is handed in on a task of its own, so it reaches the pipeline at once (and its
//! linger timer starts) even if the producer sends nothing more for a while. Only one
//! hand-in is outstanding: `poll_ready` waits for it, and the pipeline's hand-in waits for
//! room, so a full pipeline holds the producer back.

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, Sink, Stream, StreamExt};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tracing::debug;
use tranquility::beam::{DropReason, Outcome, SendError};
use tranquility::pipeline::DataSourcePipeline;

use crate::event::IntoEvent;

type TaggedOutcome<T> = BoxFuture<'static, (T, Outcome)>;

/// Why the sink refused an event.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The sink was closed; later events are refused.
    #[error("the sink is closed")]
    Closed,
    /// `start_send` was called without a ready `poll_ready` first.
    #[error("start_send called before poll_ready answered ready")]
    NotReady,
    /// The task handing an event in ended abnormally; the event may have no outcome.
    #[error("handing an event in failed: {0}")]
    HandIn(String),
}

/// A `futures::Sink` of `(tag, event)` into a [`DataSourcePipeline`].
///
/// Every event sent gets exactly one `(tag, Outcome)` on the [`Outcomes`] stream made with it,
/// in send order. `poll_flush` returns when every event sent so far has its outcome;
/// `poll_close` flushes and refuses later events (the pipeline itself stays open: its owner
/// closes it). Needs a tokio runtime.
pub struct BeamSink<T> {
    pipeline: DataSourcePipeline,
    runtime: Handle,
    outcomes: mpsc::UnboundedSender<TaggedOutcome<T>>,
    handing_in: Option<JoinHandle<()>>,
    flushing: Option<BoxFuture<'static, ()>>,
    closed: bool,
}

impl<T> fmt::Debug for BeamSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BeamSink")
            .field("pipeline", &self.pipeline)
            .field("handing_in", &self.handing_in.is_some())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> BeamSink<T> {
    /// A sink into `pipeline` and the stream of its outcomes.
    ///
    /// Read the outcomes or drop the stream: an outcome is recorded in the pipeline's
    /// metrics when it is taken, and a dropped stream hands its outcomes to a background task.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(pipeline: DataSourcePipeline) -> (Self, Outcomes<T>) {
        let (tx, rx) = mpsc::unbounded();
        let sink = Self {
            pipeline,
            runtime: Handle::current(),
            outcomes: tx,
            handing_in: None,
            flushing: None,
            closed: false,
        };
        (
            sink,
            Outcomes {
                rx: Some(rx),
                in_flight: FuturesOrdered::new(),
            },
        )
    }

    /// The pipeline events go to.
    pub fn pipeline(&self) -> &DataSourcePipeline {
        &self.pipeline
    }

    fn poll_hand_in(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SinkError>> {
        if let Some(task) = self.handing_in.as_mut() {
            let done = ready!(task.poll_unpin(cx));
            self.handing_in = None;
            done.map_err(|e| SinkError::HandIn(e.to_string()))?;
        }
        Poll::Ready(Ok(()))
    }
}

/// Queues an outcome for the stream; with the stream gone, resolves it here so it is counted.
async fn deliver<T>(tx: &mpsc::UnboundedSender<TaggedOutcome<T>>, outcome: TaggedOutcome<T>) {
    if let Err(refused) = tx.unbounded_send(outcome) {
        refused.into_inner().await;
    }
}

impl<T: Send + 'static, E: IntoEvent> Sink<(T, E)> for BeamSink<T> {
    type Error = SinkError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SinkError>> {
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(Err(SinkError::Closed));
        }
        this.poll_hand_in(cx)
    }

    fn start_send(self: Pin<&mut Self>, (tag, event): (T, E)) -> Result<(), SinkError> {
        let this = self.get_mut();
        if this.closed {
            return Err(SinkError::Closed);
        }
        if this.handing_in.is_some() {
            return Err(SinkError::NotReady);
        }
        let tx = this.outcomes.clone();
        let task = match event.into_event() {
            Ok(raw) => {
                let pipeline = this.pipeline.clone();
                this.runtime.spawn(async move {
                    let outcomes = pipeline.hand_in(vec![raw]).await;
                    let outcome = async move {
                        let outcome = outcomes.await.into_iter().next().unwrap_or_else(|| {
                            Outcome::failed(SendError::Other(
                                "the pipeline gave no outcome for this event".into(),
                            ))
                        });
                        (tag, outcome)
                    };
                    deliver(&tx, Box::pin(outcome)).await;
                })
            }
            Err(e) => {
                debug!(dataSource = %this.pipeline.name(), error = %e, "unusable event");
                this.pipeline.drop_unparseable(1);
                let outcome = async move { (tag, Outcome::Dropped(DropReason::Unparseable)) };
                this.runtime
                    .spawn(async move { deliver(&tx, Box::pin(outcome)).await })
            }
        };
        this.handing_in = Some(task);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SinkError>> {
        let this = self.get_mut();
        ready!(this.poll_hand_in(cx))?;
        let pipeline = &this.pipeline;
        let flushing = this.flushing.get_or_insert_with(|| {
            let pipeline = pipeline.clone();
            Box::pin(async move { pipeline.flush().await })
        });
        ready!(flushing.as_mut().poll(cx));
        this.flushing = None;
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SinkError>> {
        let this = self.get_mut();
        if !this.closed {
            ready!(Sink::<(T, E)>::poll_flush(Pin::new(&mut *this), cx))?;
            this.closed = true;
            this.outcomes.close_channel();
        }
        Poll::Ready(Ok(()))
    }
}

/// The `(tag, Outcome)` of every event sent through a [`BeamSink`], in send order. Ends after
/// the sink is closed or dropped and every outcome was yielded.
pub struct Outcomes<T: Send + 'static> {
    rx: Option<mpsc::UnboundedReceiver<TaggedOutcome<T>>>,
    in_flight: FuturesOrdered<TaggedOutcome<T>>,
}

impl<T: Send + 'static> fmt::Debug for Outcomes<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outcomes")
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Stream for Outcomes<T> {
    type Item = (T, Outcome);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<(T, Outcome)>> {
        let this = self.get_mut();
        while let Some(rx) = this.rx.as_mut() {
            match rx.poll_next_unpin(cx) {
                Poll::Ready(Some(outcome)) => this.in_flight.push_back(outcome),
                Poll::Ready(None) => this.rx = None,
                Poll::Pending => break,
            }
        }
        match ready!(this.in_flight.poll_next_unpin(cx)) {
            Some(item) => Poll::Ready(Some(item)),
            None if this.rx.is_none() => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

impl<T: Send + 'static> Drop for Outcomes<T> {
    fn drop(&mut self) {
        // Outcomes are counted when resolved: resolve what is left in the background.
        if let Some(rx) = self.rx.as_mut() {
            rx.close();
            while let Ok(outcome) = rx.try_recv() {
                self.in_flight.push_back(outcome);
            }
        }
        if self.in_flight.is_empty() {
            return;
        }
        let mut left = std::mem::take(&mut self.in_flight);
        if let Ok(runtime) = Handle::try_current() {
            runtime.spawn(async move { while left.next().await.is_some() {} });
        }
    }
}
