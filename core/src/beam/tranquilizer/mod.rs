//! The Tranquilizer: turns single events (or bulk hand-overs) into batches for a beam and
//! gives each event a future of its own outcome.
//!
//! Events collect in a buffer of at most `maxBatchSize`. A buffer becomes a batch, sent to the
//! beam on a task of its own, when a pending slot is free (at most `maxPendingBatches` batches
//! are in flight) and one of these holds: it is full; `lingerMillis` is 0; its linger has
//! expired; a `flush` or `close` asked for it. When the buffer is full and every slot is taken,
//! `send` waits for room (`blockOnFull`, the default) or answers `Failed(BufferFull)` at once.
//!
//! Unlike the original, `close` sends what is buffered and waits for every batch before
//! closing the beam, and dropping the Tranquilizer drains it too: every event handed in
//! resolves. Counting is done under the one lock the hand-off already takes, so
//! `received = sent + dropped + failed + pending` holds in every [`TranquilizerStats`].

mod config;
mod result;
#[cfg(test)]
mod tests;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::{Notify, OnceCell};
use tokio::time::Instant;

use super::{exact_outcomes, Beam, CloseError, DropReason, Outcome, SendError};
use crate::event::Event;
use crate::metrics::Tally;

pub use config::{Linger, TranquilizerConfig, TranquilizerConfigBuilder, TranquilizerConfigError};
use result::BatchResult;
pub use result::{BatchOutcomes, OutcomeFuture};

/// Batches events for a beam; see the module docs for the rules.
///
/// ```
/// # use tranquility::beam::{DropReason, NoopBeam, Tranquilizer, TranquilizerConfig};
/// # use tranquility::event::Event;
/// # #[tokio::main] async fn main() {
/// let config = TranquilizerConfig::builder().linger_millis(5).build().unwrap();
/// let tranquilizer = Tranquilizer::new(NoopBeam::new(DropReason::BeamDefunct), config);
/// let outcome = tranquilizer.send(Event::new(0, &b"{}"[..])).await; // handed in
/// assert!(outcome.await.is_dropped()); // answered by the beam
/// tranquilizer.close().await.unwrap();
/// # }
/// ```
pub struct Tranquilizer {
    shared: Arc<Shared>,
}

/// Sees every event a Tranquilizer takes in and every outcome it gives, whether or not the
/// caller awaits the outcome, so counts stay true when a caller gives up waiting.
pub trait TranquilizerObserver: Send + Sync {
    /// `count` events were handed in (accepted or refused).
    fn received(&self, count: u64);
    /// Outcomes became known (a batch answered, or events were refused).
    fn answered(&self, outcomes: &[Outcome]);
}

struct Shared {
    beam: Arc<dyn Beam>,
    observer: Option<Arc<dyn TranquilizerObserver>>,
    config: TranquilizerConfig,
    runtime: Handle,
    state: Mutex<State>,
    /// Wakes senders waiting for room when a batch completes, and on close.
    room: Notify,
    /// Wakes the linger timer when a buffer gets its first event, and on close.
    timer: Notify,
    /// The inner beam's close result, shared by every `close` caller.
    closed_beam: OnceCell<Result<(), String>>,
}

struct State {
    buffer: Vec<Event>,
    /// The result cell of the events now in `buffer`.
    buffer_result: Arc<BatchResult>,
    /// When the buffer got its first event (only tracked with a timed linger).
    buffer_since: Option<Instant>,
    /// A flush or close asked for the buffer to go without lingering.
    force: bool,
    /// Batches handed to the beam and not yet answered.
    in_flight: Vec<Arc<BatchResult>>,
    in_flight_events: usize,
    closed: bool,
    counts: Counts,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    tally: Tally,
    buffer_full: u64,
    batches: u64,
}

/// A buffer taken out for sending.
struct Batch {
    events: Vec<Event>,
    result: Arc<BatchResult>,
    number: u64,
}

/// A snapshot of a Tranquilizer's counters.
///
/// `received = sent + dropped_total() + failed + pending_events` at every snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TranquilizerStats {
    /// Events handed in (including refused ones), and the outcomes known so far; `failed`
    /// includes events refused because the buffer was full.
    pub tally: Tally,
    /// Of `tally.failed`: events refused with `BufferFull` (only when `blockOnFull` is false).
    pub buffer_full: u64,
    /// Batches the beam answered.
    pub batches: u64,
    /// Events handed in whose outcome is not known yet (buffered or in flight).
    pub pending_events: u64,
    /// Batches in flight.
    pub pending_batches: u64,
}

impl Tranquilizer {
    /// Starts a Tranquilizer in front of `beam`. Must be called inside a tokio runtime, whose
    /// tasks then send the batches (and, with a timed linger, run the linger timer).
    pub fn new(beam: impl Beam + 'static, config: TranquilizerConfig) -> Self {
        Self::from_arc(Arc::new(beam), config)
    }

    /// Like [`new`](Self::new), for a beam that is already shared.
    pub fn from_arc(beam: Arc<dyn Beam>, config: TranquilizerConfig) -> Self {
        Self::build(beam, config, None)
    }

    /// Like [`from_arc`](Self::from_arc), telling `observer` of every event and outcome.
    pub fn observed(
        beam: Arc<dyn Beam>,
        config: TranquilizerConfig,
        observer: Arc<dyn TranquilizerObserver>,
    ) -> Self {
        Self::build(beam, config, Some(observer))
    }

    fn build(
        beam: Arc<dyn Beam>,
        config: TranquilizerConfig,
        observer: Option<Arc<dyn TranquilizerObserver>>,
    ) -> Self {
        let runtime = Handle::current();
        let shared = Arc::new(Shared {
            beam,
            observer,
            runtime: runtime.clone(),
            state: Mutex::new(State {
                buffer: Vec::new(),
                buffer_result: Arc::default(),
                buffer_since: None,
                force: false,
                in_flight: Vec::with_capacity(config.max_pending_batches()),
                in_flight_events: 0,
                closed: false,
                counts: Counts::default(),
            }),
            config,
            room: Notify::new(),
            timer: Notify::new(),
            closed_beam: OnceCell::new(),
        });
        if let Linger::For(linger) = shared.config.linger() {
            runtime.spawn(linger_timer(Arc::clone(&shared), linger));
        }
        Self { shared }
    }

    /// The options in use.
    pub fn config(&self) -> &TranquilizerConfig {
        &self.shared.config
    }

    /// Hands one event in. Awaiting this waits for room when the buffer is full and
    /// `blockOnFull` is set; the returned future then resolves to the event's outcome.
    ///
    /// Refused events resolve at once: `Failed(BufferFull)` when full and not blocking,
    /// `Dropped(BeamClosed)` after `close`.
    pub async fn send(&self, event: Event) -> OutcomeFuture {
        let block = self.shared.config.block_on_full();
        let mut event = match self.shared.enqueue_one(event, !block) {
            Ok(outcome) => return outcome,
            Err(event) => event,
        };
        loop {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            event = match self.shared.enqueue_one(event, false) {
                Ok(outcome) => return outcome,
                Err(event) => event,
            };
            room.await;
        }
    }

    /// Hands one event in without waiting: when the buffer is full the outcome is
    /// `Failed(BufferFull)` whatever `blockOnFull` says.
    pub fn try_send(&self, event: Event) -> OutcomeFuture {
        match self.shared.enqueue_one(event, true) {
            Ok(outcome) => outcome,
            // Unreachable: refusing never hands the event back.
            Err(_) => OutcomeFuture::ready(Outcome::failed(SendError::Other(
                "event refused without an outcome".into(),
            ))),
        }
    }

    /// Hands many events in, in order; awaiting this waits for room as `send` does. The
    /// returned future resolves to one outcome per event, in input order.
    pub async fn send_all(&self, events: Vec<Event>) -> BatchOutcomes {
        let refuse = !self.shared.config.block_on_full();
        let mut out = BatchOutcomes::default();
        let mut events = events.into_iter();
        if self.shared.enqueue_many(&mut events, &mut out, refuse) {
            return out;
        }
        loop {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.shared.enqueue_many(&mut events, &mut out, false) {
                return out;
            }
            room.await;
        }
    }

    /// Hands `events` in as one batch of their own: never split, never merged with other
    /// events, dispatched as soon as a pending slot is free (no linger). Awaiting this waits
    /// for a slot whatever `blockOnFull` says (the caller bounds what it hands in); the
    /// returned future resolves to one outcome per event, in input order. A source hands each
    /// partition's records in this way, so that they reach the beam together and in order.
    pub async fn send_whole(&self, events: Vec<Event>) -> BatchOutcomes {
        let mut out = BatchOutcomes::default();
        let mut events = Some(events).filter(|e| !e.is_empty());
        while events.is_some() {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.shared.enqueue_whole(&mut events, &mut out) {
                break;
            }
            room.await;
        }
        out
    }

    /// Sends the buffer now and waits until every event handed in before this call has its
    /// outcome. Never fails; the outcomes tell.
    pub async fn flush(&self) {
        self.shared.send_buffer_now();
        let waits = self.shared.state.lock().unanswered();
        for wait in waits {
            wait.wait().await;
        }
    }

    /// Stops taking events (later ones are dropped with `BeamClosed`), sends what is
    /// buffered, waits for every batch, then closes the beam. Calling it again returns the
    /// first result.
    pub async fn close(&self) -> Result<(), CloseError> {
        self.shared.begin_close();
        self.shared.drain_and_close_beam().await
    }

    /// The counters now.
    pub fn stats(&self) -> TranquilizerStats {
        let st = self.shared.state.lock();
        let c = st.counts;
        TranquilizerStats {
            tally: c.tally,
            buffer_full: c.buffer_full,
            batches: c.batches,
            pending_events: (st.buffer.len() + st.in_flight_events) as u64,
            pending_batches: st.in_flight.len() as u64,
        }
    }
}

impl std::fmt::Debug for Tranquilizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tranquilizer")
            .field("beam", &self.shared.beam)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Drop for Tranquilizer {
    fn drop(&mut self) {
        if self.shared.closed_beam.initialized() {
            return;
        }
        // Nothing handed in may stay unresolved: drain and close in the background.
        self.shared.begin_close();
        let shared = Arc::clone(&self.shared);
        self.shared.runtime.spawn(async move {
            if let Err(error) = shared.drain_and_close_beam().await {
                tracing::warn!(%error, "closing the beam of a dropped Tranquilizer failed");
            }
        });
    }
}

/// A Tranquilizer is a beam too: `send_batch` hands the events in and waits for them. With
/// [`Linger::UntilFull`] it then sends the partial buffer holding its last events, since
/// nothing else would.
#[async_trait]
impl Beam for Tranquilizer {
    async fn send_batch(&self, events: Vec<Event>) -> Vec<Outcome> {
        let outcomes = self.send_all(events).await;
        if self.shared.config.linger() == Linger::UntilFull && !outcomes.is_ready() {
            self.shared.send_buffer_now();
        }
        outcomes.await
    }

    async fn close(&self) -> Result<(), CloseError> {
        Tranquilizer::close(self).await
    }
}

impl State {
    fn slot_free(&self, config: &TranquilizerConfig) -> bool {
        self.in_flight.len() < config.max_pending_batches()
    }

    /// Whether the buffer should go as soon as a slot is free.
    fn ready_to_go(&self, config: &TranquilizerConfig) -> bool {
        if self.buffer.is_empty() {
            return false;
        }
        if self.force || self.closed || self.buffer.len() >= config.max_batch_size() {
            return true;
        }
        match config.linger() {
            Linger::Immediate => true,
            Linger::UntilFull => false,
            Linger::For(linger) => self
                .buffer_since
                .is_some_and(|since| since + linger <= Instant::now()),
        }
    }

    fn take_batch(&mut self) -> Batch {
        let events = std::mem::take(&mut self.buffer);
        let result = std::mem::take(&mut self.buffer_result);
        self.buffer_since = None;
        self.force = false;
        self.in_flight.push(Arc::clone(&result));
        self.in_flight_events += events.len();
        self.counts.batches += 1;
        Batch {
            events,
            result,
            number: self.counts.batches,
        }
    }

    /// Takes `events` out as a batch of their own; the buffer stays as it is.
    fn take_whole(&mut self, events: Vec<Event>) -> Batch {
        let result: Arc<BatchResult> = Arc::default();
        self.in_flight.push(Arc::clone(&result));
        self.in_flight_events += events.len();
        self.counts.tally.received += events.len() as u64;
        self.counts.batches += 1;
        Batch {
            events,
            result,
            number: self.counts.batches,
        }
    }

    fn take_if_free(&mut self, config: &TranquilizerConfig) -> Option<Batch> {
        (!self.buffer.is_empty() && self.slot_free(config)).then(|| self.take_batch())
    }

    fn take_if_ready(&mut self, config: &TranquilizerConfig) -> Option<Batch> {
        (self.slot_free(config) && self.ready_to_go(config)).then(|| self.take_batch())
    }

    /// Makes room for one event: true if the buffer has room (taking a full buffer out when
    /// a slot is free). Full buffers otherwise wait for a batch to complete.
    fn make_room(&mut self, config: &TranquilizerConfig, out: &mut Vec<Batch>) -> bool {
        if self.buffer.len() < config.max_batch_size() {
            return true;
        }
        if self.slot_free(config) {
            out.push(self.take_batch());
            return true;
        }
        false
    }

    /// Notes the start of a new buffer; true when the linger timer must hear of it.
    fn starting_buffer(&mut self, config: &TranquilizerConfig) -> bool {
        if self.buffer.is_empty() {
            if let Linger::For(_) = config.linger() {
                self.buffer_since = Some(Instant::now());
                return true;
            }
        }
        false
    }

    /// Result cells of everything handed in and not yet answered.
    fn unanswered(&self) -> Vec<Arc<BatchResult>> {
        let mut cells = self.in_flight.clone();
        if !self.buffer.is_empty() {
            cells.push(Arc::clone(&self.buffer_result));
        }
        cells
    }

    fn refuse(&mut self, count: u64, refusal: &Outcome) {
        self.counts.tally.received += count;
        self.counts.tally.count(refusal, count);
        if refusal.is_failed() {
            self.counts.buffer_full += count;
        }
    }

    fn buffer_full(&self) -> Outcome {
        Outcome::failed(SendError::BufferFull {
            pending_batches: self.in_flight.len(),
        })
    }
}

impl Shared {
    /// Adds one event. `Err` gives the event back when full and not refusing.
    fn enqueue_one(
        self: &Arc<Self>,
        event: Event,
        refuse_when_full: bool,
    ) -> Result<OutcomeFuture, Event> {
        let config = &self.config;
        let mut batches = Vec::new();
        let mut wake_timer = false;
        let mut refused = None;
        let outcome = {
            let mut st = self.state.lock();
            if st.closed {
                let outcome = Outcome::Dropped(DropReason::BeamClosed);
                st.refuse(1, &outcome);
                refused = Some(outcome.clone());
                OutcomeFuture::ready(outcome)
            } else if !st.make_room(config, &mut batches) {
                if !refuse_when_full {
                    return Err(event);
                }
                let outcome = st.buffer_full();
                st.refuse(1, &outcome);
                refused = Some(outcome.clone());
                OutcomeFuture::ready(outcome)
            } else {
                wake_timer = st.starting_buffer(config);
                st.counts.tally.received += 1;
                let index = st.buffer.len();
                st.buffer.push(event);
                let outcome = OutcomeFuture::waiting(Arc::clone(&st.buffer_result), index);
                batches.extend(st.take_if_ready(config));
                outcome
            }
        };
        if let Some(observer) = &self.observer {
            observer.received(1);
            if let Some(refused) = refused {
                observer.answered(std::slice::from_ref(&refused));
            }
        }
        if wake_timer {
            self.timer.notify_one();
        }
        for batch in batches {
            self.dispatch(Some(batch));
        }
        Ok(outcome)
    }

    /// Adds as many events as fit, recording their outcomes in `out`; true when `events` is
    /// used up (refused events included).
    fn enqueue_many(
        self: &Arc<Self>,
        events: &mut std::vec::IntoIter<Event>,
        out: &mut BatchOutcomes,
        refuse_when_full: bool,
    ) -> bool {
        let config = &self.config;
        let mut batches = Vec::new();
        let mut wake_timer = false;
        let mut taken = 0u64;
        let mut refused: Option<(Outcome, usize)> = None;
        let done = {
            let mut st = self.state.lock();
            let done = loop {
                if events.len() == 0 {
                    break true;
                }
                if st.closed {
                    let outcome = Outcome::Dropped(DropReason::BeamClosed);
                    st.refuse(events.len() as u64, &outcome);
                    out.push_ready(outcome.clone(), events.len());
                    refused = Some((outcome, events.len()));
                    events.for_each(drop);
                    break true;
                }
                if !st.make_room(config, &mut batches) {
                    if !refuse_when_full {
                        break false;
                    }
                    let outcome = st.buffer_full();
                    st.refuse(events.len() as u64, &outcome);
                    out.push_ready(outcome.clone(), events.len());
                    refused = Some((outcome, events.len()));
                    events.for_each(drop);
                    break true;
                }
                wake_timer |= st.starting_buffer(config);
                let start = st.buffer.len();
                let room = config.max_batch_size() - start;
                st.buffer.extend(events.by_ref().take(room));
                let added = st.buffer.len() - start;
                st.counts.tally.received += added as u64;
                taken += added as u64;
                out.push_batch(&st.buffer_result, start, added);
                if st.buffer.len() >= config.max_batch_size() && st.slot_free(config) {
                    batches.push(st.take_batch());
                }
            };
            batches.extend(st.take_if_ready(config));
            done
        };
        if let Some(observer) = &self.observer {
            let refused_count = refused.as_ref().map_or(0, |(_, n)| *n);
            if taken > 0 || refused_count > 0 {
                observer.received(taken + refused_count as u64);
            }
            if let Some((outcome, n)) = refused {
                observer.answered(&vec![outcome; n]);
            }
        }
        if wake_timer {
            self.timer.notify_one();
        }
        for batch in batches {
            self.dispatch(Some(batch));
        }
        done
    }

    /// Sends `events` as a batch of their own when a slot is free (taking them out of the
    /// option) and records their outcomes in `out`; false when every slot is taken.
    fn enqueue_whole(
        self: &Arc<Self>,
        events: &mut Option<Vec<Event>>,
        out: &mut BatchOutcomes,
    ) -> bool {
        let (batch, refused) = {
            let mut st = self.state.lock();
            if st.closed {
                let count = events.take().map_or(0, |e| e.len());
                let outcome = Outcome::Dropped(DropReason::BeamClosed);
                st.refuse(count as u64, &outcome);
                out.push_ready(outcome.clone(), count);
                (None, Some((outcome, count)))
            } else if st.slot_free(&self.config) {
                let batch = st.take_whole(events.take().unwrap_or_default());
                out.push_batch(&batch.result, 0, batch.events.len());
                (Some(batch), None)
            } else {
                return false;
            }
        };
        if let Some(observer) = &self.observer {
            let count = batch.as_ref().map_or(0, |b| b.events.len())
                + refused.as_ref().map_or(0, |(_, n)| *n);
            observer.received(count as u64);
            if let Some((outcome, n)) = refused {
                observer.answered(&vec![outcome; n]);
            }
        }
        self.dispatch(batch);
        true
    }

    /// Sends a batch on a task of its own.
    fn dispatch(self: &Arc<Self>, batch: Option<Batch>) {
        let Some(Batch {
            events,
            result,
            number,
        }) = batch
        else {
            return;
        };
        // The guard travels inside the task, so a task dropped unpolled (runtime shutting
        // down) still answers its events.
        let guard = InFlight {
            shared: Arc::clone(self),
            result,
            events: events.len(),
            number,
            answered: false,
        };
        self.runtime.spawn(guard.run(events));
    }

    /// Records a batch's outcomes, frees its slot, answers its events and starts the next
    /// buffer if it is due.
    fn finish(self: &Arc<Self>, result: &Arc<BatchResult>, number: u64, outcomes: Vec<Outcome>) {
        let mut counts = Tally::default();
        for outcome in &outcomes {
            counts.count(outcome, 1);
        }
        let (next, pending) = {
            let mut st = self.state.lock();
            st.counts.tally.merge(&counts);
            if let Some(i) = st.in_flight.iter().position(|r| Arc::ptr_eq(r, result)) {
                st.in_flight.swap_remove(i);
            }
            st.in_flight_events = st.in_flight_events.saturating_sub(outcomes.len());
            (st.take_if_ready(&self.config), st.in_flight.len())
        };
        tracing::debug!(
            batch = number,
            events = outcomes.len(),
            sent = counts.sent,
            dropped = counts.dropped_total(),
            failed = counts.failed,
            pending_batches = pending,
            "tranquilizer batch answered"
        );
        if let Some(observer) = &self.observer {
            observer.answered(&outcomes);
        }
        result.complete(outcomes);
        self.dispatch(next);
        self.room.notify_waiters();
    }

    /// Lets the buffer go without lingering: now if a slot is free, else when one frees.
    fn send_buffer_now(self: &Arc<Self>) {
        let batch = {
            let mut st = self.state.lock();
            if st.buffer.is_empty() {
                return;
            }
            st.force = true;
            st.take_if_free(&self.config)
        };
        self.dispatch(batch);
    }

    /// Refuses new events from now on and lets the buffer go without lingering.
    fn begin_close(self: &Arc<Self>) {
        let batch = {
            let mut st = self.state.lock();
            st.closed = true;
            st.take_if_free(&self.config)
        };
        self.dispatch(batch);
        // Blocked senders wake to find the Tranquilizer closed; the timer task ends.
        self.room.notify_waiters();
        self.timer.notify_one();
    }

    /// Waits for every unanswered batch, then closes the beam once.
    async fn drain_and_close_beam(&self) -> Result<(), CloseError> {
        loop {
            let waits = self.state.lock().unanswered();
            if waits.is_empty() {
                break;
            }
            for wait in waits {
                wait.wait().await;
            }
        }
        self.closed_beam
            .get_or_init(|| async { self.beam.close().await.map_err(|e| e.0) })
            .await
            .clone()
            .map_err(CloseError)
    }
}

/// A batch on its way through the beam; answers its events even if the task is dropped.
struct InFlight {
    shared: Arc<Shared>,
    result: Arc<BatchResult>,
    events: usize,
    number: u64,
    answered: bool,
}

impl InFlight {
    async fn run(mut self, events: Vec<Event>) {
        let sent = AssertUnwindSafe(self.shared.beam.send_batch(events))
            .catch_unwind()
            .await;
        let outcomes = match sent {
            Ok(outcomes) => exact_outcomes(outcomes, self.events, &self.shared.beam),
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                tracing::error!(batch = self.number, %message, "beam panicked while sending");
                failed_all(
                    self.events,
                    format!("beam panicked while sending: {message}"),
                )
            }
        };
        self.answered = true;
        self.shared.finish(&self.result, self.number, outcomes);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.answered {
            let outcomes = failed_all(
                self.events,
                "the runtime stopped before the beam answered".into(),
            );
            self.shared.finish(&self.result, self.number, outcomes);
        }
    }
}

fn failed_all(count: usize, message: String) -> Vec<Outcome> {
    let error = Arc::new(SendError::Other(message));
    vec![Outcome::Failed(error); count]
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Sends buffers whose linger expired while a slot was free.
async fn linger_timer(shared: Arc<Shared>, linger: Duration) {
    loop {
        let woken = shared.timer.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let (closed, due, batch) = {
            let mut st = shared.state.lock();
            let batch = st.take_if_ready(&shared.config);
            (
                st.closed,
                st.buffer_since.map(|since| since + linger),
                batch,
            )
        };
        shared.dispatch(batch);
        if closed {
            return;
        }
        match due {
            // Not yet due: sleep until it is, or until something changes.
            Some(due) if due > Instant::now() => {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = woken => {}
                }
            }
            // Nothing buffered, or due but every slot is taken (a completing batch sends it).
            _ => woken.await,
        }
    }
}
