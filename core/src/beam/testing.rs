//! Test doubles that are beams: [`MemoryBeam`] records and sends everything, [`FailableBeam`]
//! fails, drops, delays or holds the events it is told to. Both are cheap handles: clone one,
//! give a clone to the code under test, inspect through the other.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::{Beam, CloseError, DropReason, Outcome, SendError};
use crate::event::Event;

/// A test event `{"n":<n>}` with timestamp `n` milliseconds.
pub fn event(n: u64) -> Event {
    Event::new(n as i64, format!(r#"{{"n":{n}}}"#))
}

/// A test event `{"n":<n>,"mark":"<mark>"}`, for [`FailableBeam::by_mark`].
pub fn marked(n: u64, mark: &str) -> Event {
    Event::new(n as i64, format!(r#"{{"n":{n},"mark":"{mark}"}}"#))
}

/// The `n` of an event made by [`event`] or [`marked`].
pub fn number(event: &Event) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_slice(event.raw()).ok()?;
    value.get("n")?.as_u64()
}

/// The mark of an event made by [`marked`].
pub fn mark(event: &Event) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(event.raw()).ok()?;
    Some(value.get("mark")?.as_str()?.to_string())
}

/// A beam that records every batch and answers `Sent`; after `close`, `Dropped(BeamClosed)`.
#[derive(Clone, Default)]
pub struct MemoryBeam {
    inner: Arc<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    batches: Mutex<Vec<Vec<Event>>>,
    closed: AtomicBool,
    closes: AtomicUsize,
}

impl MemoryBeam {
    /// An empty beam.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event sent so far, in arrival order.
    pub fn events(&self) -> Vec<Event> {
        self.inner
            .batches
            .lock()
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// The size of each batch received, in arrival order.
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.inner.batches.lock().iter().map(Vec::len).collect()
    }

    /// True once `close` was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// How many times `close` was called.
    pub fn close_count(&self) -> usize {
        self.inner.closes.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for MemoryBeam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBeam")
            .field("batches", &self.inner.batches.lock().len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

#[async_trait]
impl Beam for MemoryBeam {
    async fn send_batch(&self, events: Vec<Event>) -> Vec<Outcome> {
        if self.is_closed() {
            return vec![Outcome::Dropped(DropReason::BeamClosed); events.len()];
        }
        let n = events.len();
        self.inner.batches.lock().push(events);
        vec![Outcome::Sent; n]
    }

    async fn close(&self) -> Result<(), CloseError> {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.closes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

type Predicate = Arc<dyn Fn(&Event) -> bool + Send + Sync>;

#[derive(Clone, Default)]
struct Rules {
    fail: Option<Predicate>,
    drop: Option<(Predicate, DropReason)>,
    panic: Option<Predicate>,
    delay: Option<Duration>,
    answer_short: bool,
    close_error: Option<String>,
}

#[derive(Default)]
struct FailableState {
    held: AtomicBool,
    gate: Notify,
    batches: Mutex<Vec<Vec<Event>>>,
    sent: Mutex<Vec<Event>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    closes: AtomicUsize,
}

/// A beam that fails, drops or panics on chosen events, can answer late, and can hold every
/// batch until released (to fill a Tranquilizer's pending slots on purpose).
///
/// Events it neither fails nor drops are answered `Sent` and recorded.
#[derive(Clone, Default)]
pub struct FailableBeam {
    rules: Arc<Rules>,
    state: Arc<FailableState>,
}

impl FailableBeam {
    /// A beam that sends everything (until told otherwise).
    pub fn new() -> Self {
        Self::default()
    }

    /// Fails events marked `"fail"` and drops (`OutsideWindow`) events marked `"drop"`.
    pub fn by_mark() -> Self {
        Self::new()
            .fail_if(|e| mark(e).as_deref() == Some("fail"))
            .drop_if(
                |e| mark(e).as_deref() == Some("drop"),
                DropReason::OutsideWindow,
            )
    }

    /// Fails events matching `predicate` with `SendError::Push`.
    pub fn fail_if(mut self, predicate: impl Fn(&Event) -> bool + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.rules).fail = Some(Arc::new(predicate));
        self
    }

    /// Drops events matching `predicate` with `reason`.
    pub fn drop_if(
        mut self,
        predicate: impl Fn(&Event) -> bool + Send + Sync + 'static,
        reason: DropReason,
    ) -> Self {
        Arc::make_mut(&mut self.rules).drop = Some((Arc::new(predicate), reason));
        self
    }

    /// Panics while sending a batch that holds an event matching `predicate`.
    pub fn panic_if(mut self, predicate: impl Fn(&Event) -> bool + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.rules).panic = Some(Arc::new(predicate));
        self
    }

    /// Answers each batch only after `delay`.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        Arc::make_mut(&mut self.rules).delay = Some(delay);
        self
    }

    /// Misbehaves by answering one outcome fewer than it was given events.
    pub fn answer_short(mut self) -> Self {
        Arc::make_mut(&mut self.rules).answer_short = true;
        self
    }

    /// Makes `close` fail with `message`.
    pub fn fail_close(mut self, message: &str) -> Self {
        Arc::make_mut(&mut self.rules).close_error = Some(message.to_string());
        self
    }

    /// Holds every batch (arrived or arriving) until [`release`](Self::release).
    pub fn hold(&self) {
        self.state.held.store(true, Ordering::SeqCst);
    }

    /// Lets held batches go on.
    pub fn release(&self) {
        self.state.held.store(false, Ordering::SeqCst);
        self.state.gate.notify_waiters();
    }

    /// The events of each batch received, in arrival order.
    pub fn batches(&self) -> Vec<Vec<Event>> {
        self.state.batches.lock().clone()
    }

    /// The size of each batch received, in arrival order.
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.state.batches.lock().iter().map(Vec::len).collect()
    }

    /// The events answered `Sent`.
    pub fn sent(&self) -> Vec<Event> {
        self.state.sent.lock().clone()
    }

    /// Batches being sent right now (including held ones).
    pub fn in_flight(&self) -> usize {
        self.state.in_flight.load(Ordering::SeqCst)
    }

    /// The most batches that were ever in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// How many times `close` was called.
    pub fn close_count(&self) -> usize {
        self.state.closes.load(Ordering::SeqCst)
    }

    async fn wait_for_gate(&self) {
        loop {
            let opened = self.state.gate.notified();
            tokio::pin!(opened);
            opened.as_mut().enable();
            if !self.state.held.load(Ordering::SeqCst) {
                return;
            }
            opened.await;
        }
    }

    fn outcome(&self, event: &Event) -> Outcome {
        let rules = &self.rules;
        if rules.fail.as_ref().is_some_and(|p| p(event)) {
            return Outcome::failed(SendError::Push {
                target: "failable".into(),
                message: "failed on purpose".into(),
            });
        }
        if let Some((p, reason)) = &rules.drop {
            if p(event) {
                return Outcome::Dropped(*reason);
            }
        }
        self.state.sent.lock().push(event.clone());
        Outcome::Sent
    }
}

/// Counts a batch in flight until dropped, even when the batch panics or is cancelled.
struct InFlightMark<'a>(&'a FailableState);

impl<'a> InFlightMark<'a> {
    fn new(state: &'a FailableState) -> Self {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(state)
    }
}

impl Drop for InFlightMark<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl fmt::Debug for FailableBeam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailableBeam")
            .field("batches", &self.state.batches.lock().len())
            .field("held", &self.state.held.load(Ordering::SeqCst))
            .field("delay", &self.rules.delay)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Beam for FailableBeam {
    async fn send_batch(&self, events: Vec<Event>) -> Vec<Outcome> {
        let _mark = InFlightMark::new(&self.state);
        self.state.batches.lock().push(events.clone());
        self.wait_for_gate().await;
        if let Some(delay) = self.rules.delay {
            tokio::time::sleep(delay).await;
        }
        if let Some(p) = &self.rules.panic {
            if events.iter().any(|e| p(e)) {
                panic!("FailableBeam panics on purpose");
            }
        }
        let mut outcomes: Vec<Outcome> = events.iter().map(|e| self.outcome(e)).collect();
        if self.rules.answer_short {
            outcomes.pop();
        }
        outcomes
    }

    async fn close(&self) -> Result<(), CloseError> {
        self.state.closes.fetch_add(1, Ordering::SeqCst);
        match &self.rules.close_error {
            Some(message) => Err(CloseError(message.clone())),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_beam_records_and_sends_until_closed() {
        let beam = MemoryBeam::new();
        let outcomes = beam.send_batch(vec![event(1), event(2)]).await;
        assert!(outcomes.iter().all(Outcome::is_sent));
        assert_eq!(beam.batch_sizes(), vec![2]);
        assert_eq!(number(&beam.events()[1]), Some(2));
        beam.close().await.unwrap();
        let after = beam.send_batch(vec![event(3)]).await;
        assert!(matches!(after[0], Outcome::Dropped(DropReason::BeamClosed)));
        assert_eq!(beam.events().len(), 2);
    }

    #[tokio::test]
    async fn failable_beam_follows_marks() {
        let beam = FailableBeam::by_mark();
        let outcomes = beam
            .send_batch(vec![marked(1, "fail"), event(2), marked(3, "drop")])
            .await;
        assert!(outcomes[0].is_failed());
        assert!(outcomes[1].is_sent());
        assert!(matches!(
            outcomes[2],
            Outcome::Dropped(DropReason::OutsideWindow)
        ));
        assert_eq!(beam.sent().len(), 1);
    }

    #[tokio::test]
    async fn failable_beam_holds_until_released() {
        let beam = FailableBeam::new();
        beam.hold();
        let task = tokio::spawn({
            let beam = beam.clone();
            async move { beam.send_batch(vec![event(1)]).await }
        });
        tokio::task::yield_now().await;
        while beam.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(!task.is_finished());
        beam.release();
        let outcomes = task.await.unwrap();
        assert!(outcomes[0].is_sent());
        assert_eq!(beam.in_flight(), 0);
        assert_eq!(beam.max_in_flight(), 1);
    }

    #[tokio::test]
    async fn failable_beam_can_answer_short_and_fail_close() {
        let beam = FailableBeam::new().answer_short().fail_close("nope");
        assert_eq!(beam.send_batch(vec![event(1), event(2)]).await.len(), 1);
        assert_eq!(beam.close().await.unwrap_err().0, "nope");
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<std::sync::atomic::AtomicI64>);

impl ManualClock {
    /// A clock reading `now` (epoch millis).
    pub fn at(now: i64) -> Self {
        Self(Arc::new(std::sync::atomic::AtomicI64::new(now)))
    }

    /// Sets the time.
    pub fn set(&self, now: i64) {
        self.0.store(now, Ordering::SeqCst);
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(
            i64::try_from(by.as_millis()).unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
    }
}

impl crate::time::Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
