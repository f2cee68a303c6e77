//! Drivers that run as tasks and stop together: when asked, or as soon as one of them fails
//! (the others then stop gracefully: outcomes awaited, offsets committed).

use std::future::Future;

use tokio::sync::{mpsc, watch};

use super::driver::{DriverError, SourceDriver, SourceReport, Stop};
use super::RecordSource;

/// What one driver of a group did, and the error it stopped on, if any.
pub type Finished = (SourceReport, Result<(), DriverError>);

/// Drivers running as tasks (Kafka's group members, Fluvio's topics).
#[derive(Debug)]
pub struct SourceGroup {
    stop: watch::Sender<Option<Stop>>,
    done_tx: mpsc::UnboundedSender<(usize, Finished)>,
    done: mpsc::UnboundedReceiver<(usize, Finished)>,
    finished: Vec<Option<Finished>>,
}

impl Default for SourceGroup {
    fn default() -> Self {
        let (done_tx, done) = mpsc::unbounded_channel();
        Self {
            stop: watch::channel(None).0,
            done_tx,
            done,
            finished: Vec::new(),
        }
    }
}

impl SourceGroup {
    /// An empty group.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `driver` as a task of the group. Must be called inside a tokio runtime.
    pub fn spawn<S: RecordSource>(&mut self, driver: SourceDriver<S>) {
        let index = self.finished.len();
        self.finished.push(None);
        let mut stop = self.stop.subscribe();
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            let stopped = async move {
                match stop.wait_for(Option::is_some).await {
                    Ok(how) => how.unwrap_or(Stop::Graceful),
                    // The group is gone: stop as if asked.
                    Err(_) => Stop::Graceful,
                }
            };
            let _ = done.send((index, driver.run(stopped).await));
        });
    }

    /// Waits until a driver stops on an error, and returns it (a source that ends stops
    /// without one); the others keep running.
    pub async fn failed(&mut self) -> DriverError {
        match self.settle().await {
            Some(error) => error,
            None => std::future::pending().await,
        }
    }

    /// Waits until a driver stops on an error (returned) or every driver has stopped.
    async fn settle(&mut self) -> Option<DriverError> {
        while self.finished.iter().any(Option::is_none) {
            let (index, finished) = self.done.recv().await?;
            let error = finished.1.as_ref().err().cloned();
            self.finished[index] = Some(finished);
            if error.is_some() {
                return error;
            }
        }
        None
    }

    /// Runs until `shutdown` completes, a driver fails, or every source has ended; then stops
    /// every driver gracefully.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> Vec<Finished> {
        tokio::select! {
            () = shutdown => tracing::info!("stop requested"),
            _ = self.settle() => {}
        }
        self.stop(Stop::Graceful).await
    }

    /// Stops every driver (see [`Stop`]) and waits for them; returns what each did, in the
    /// order they were spawned.
    pub async fn stop(mut self, how: Stop) -> Vec<Finished> {
        let _ = self.stop.send(Some(how));
        drop(self.done_tx);
        while let Some((index, finished)) = self.done.recv().await {
            self.finished[index] = Some(finished);
        }
        self.finished
            .into_iter()
            .map(|f| {
                f.unwrap_or_else(|| {
                    let lost = super::SourceError::new("the driver's task ended abnormally");
                    (SourceReport::default(), Err(DriverError::Read(lost)))
                })
            })
            .collect()
    }
}

/// The first error of a group's drivers, if any stopped on one.
pub fn first_error(finished: &[Finished]) -> Option<&DriverError> {
    finished.iter().find_map(|(_, r)| r.as_ref().err())
}
