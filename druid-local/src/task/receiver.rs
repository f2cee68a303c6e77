//! The `receiver` firehose: a bounded buffer between push-events requests and the task's
//! indexing loop, producer-sequence dedup, and the close (timed shutoff, `/shutdown`, idle).

use super::parse::RowParser;
use super::rollup::InputRow;
use crate::time::{self, Millis};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, watch, Notify, Semaphore};

/// Most distinct producer ids a firehose tracks (Druid's limit).
pub const MAX_PRODUCERS: usize = 10_000;

/// The firehose was closed before (all of) the batch could be buffered.
#[derive(Debug, thiserror::Error)]
#[error("Cannot add events to closed firehose!")]
pub struct Closed;

/// Outcome of the producer-sequence check.
#[derive(Debug, PartialEq, Eq)]
pub enum SeqCheck {
    /// Ingest the request.
    Accept,
    /// The sequence was already seen: skip the request.
    Skip,
    /// Too many producers (403).
    TooManyProducers,
}

/// One task's event receiver.
#[derive(Debug)]
pub struct Receiver {
    /// Owning task.
    pub task_id: String,
    /// Full handler name (`serviceName`).
    pub service_name: String,
    /// The task's parser.
    pub parser: RowParser,
    buffer_size: usize,
    permits: Arc<Semaphore>,
    gate: Mutex<Option<mpsc::UnboundedSender<Vec<InputRow>>>>,
    closed: watch::Sender<bool>,
    producers: Mutex<HashMap<String, i64>>,
    last_activity: AtomicI64,
    shutoff: Mutex<Option<Millis>>,
    reschedule: Notify,
}

/// The indexing side of a receiver.
#[derive(Debug)]
pub struct Feed {
    /// Buffered batches; `None` once closed and drained.
    pub rx: mpsc::UnboundedReceiver<Vec<InputRow>>,
    /// Gives buffer space back after a batch was taken.
    pub permits: Arc<Semaphore>,
}

impl Receiver {
    /// A receiver and the feed its task reads from.
    pub fn new(
        task_id: &str,
        service_name: &str,
        parser: RowParser,
        buffer_size: usize,
        shutoff: Option<Millis>,
    ) -> (Arc<Receiver>, Feed) {
        let (tx, rx) = mpsc::unbounded_channel();
        let permits = Arc::new(Semaphore::new(buffer_size));
        let r = Arc::new(Receiver {
            task_id: task_id.to_owned(),
            service_name: service_name.to_owned(),
            parser,
            buffer_size,
            permits: permits.clone(),
            gate: Mutex::new(Some(tx)),
            closed: watch::channel(false).0,
            producers: Mutex::new(HashMap::new()),
            last_activity: AtomicI64::new(time::now_millis()),
            shutoff: Mutex::new(shutoff),
            reschedule: Notify::new(),
        });
        (r, Feed { rx, permits })
    }

    /// Records activity for `maxIdleTime`.
    pub fn touch(&self) {
        self.last_activity
            .store(time::now_millis(), Ordering::Relaxed);
    }

    /// Last push-events call.
    pub fn last_activity(&self) -> Millis {
        self.last_activity.load(Ordering::Relaxed)
    }

    /// Druid's producer-sequence rule: record `seq` before parsing; skip when not increasing.
    pub fn check_sequence(&self, producer: &str, seq: i64) -> SeqCheck {
        let mut p = self.producers.lock();
        p.entry(producer.to_owned()).or_insert(i64::MIN);
        if p.len() >= MAX_PRODUCERS {
            return SeqCheck::TooManyProducers;
        }
        match p.get_mut(producer) {
            Some(last) if seq > *last => {
                *last = seq;
                SeqCheck::Accept
            }
            _ => SeqCheck::Skip,
        }
    }

    /// Whether the firehose is closed.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Buffers rows, waiting for space when the buffer is full (back-pressure). Rows buffered
    /// before a close stay buffered (a partial batch, as in Druid).
    pub async fn push(&self, mut rows: Vec<InputRow>) -> Result<(), Closed> {
        let mut closed = self.closed.subscribe();
        while !rows.is_empty() {
            let take = rows.len().min(self.buffer_size);
            let rest = rows.split_off(take);
            let chunk = std::mem::replace(&mut rows, rest);
            let n = u32::try_from(take).map_err(|_| Closed)?;
            let permit = tokio::select! {
                p = self.permits.acquire_many(n) => p.map_err(|_| Closed)?,
                _ = closed.wait_for(|c| *c) => return Err(Closed),
            };
            permit.forget();
            let gate = self.gate.lock();
            match gate.as_ref() {
                Some(tx) if tx.send(chunk).is_ok() => {}
                _ => {
                    self.permits.add_permits(take);
                    return Err(Closed);
                }
            }
        }
        Ok(())
    }

    /// Closes the firehose now: no more rows are accepted, buffered ones are drained.
    pub fn close(&self) {
        self.gate.lock().take();
        self.closed.send_replace(true);
        self.reschedule.notify_waiters();
    }

    /// Waits until the firehose is closed.
    pub async fn closed(&self) {
        let mut rx = self.closed.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Schedules the close at `at` (a past time closes now); a later call reschedules.
    pub fn schedule_close(&self, at: Millis) {
        *self.shutoff.lock() = Some(at);
        self.reschedule.notify_waiters();
    }

    /// Closes the firehose at its shutoff time or after `max_idle` ms without pushes.
    pub async fn run_shutoff(self: Arc<Self>, max_idle: Option<i64>) {
        loop {
            if self.is_closed() {
                return;
            }
            let now = time::now_millis();
            let at = *self.shutoff.lock();
            if at.is_some_and(|t| t <= now)
                || max_idle.is_some_and(|m| now - self.last_activity() >= m)
            {
                self.close();
                return;
            }
            let mut wait = at.map_or(1000, |t| (t - now).clamp(1, 1000));
            if max_idle.is_some() {
                wait = wait.min(1000);
            }
            let notified = self.reschedule.notified();
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(wait as u64)) => {}
                _ = notified => {}
            }
        }
    }
}
