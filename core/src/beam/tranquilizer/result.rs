//! The result cell one batch shares with every event in it, and the futures reading it.
//!
//! A batch completes once; each event's future holds the batch's cell and its own index, so
//! handing an event in costs one reference count, not a channel or a task.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use crate::beam::Outcome;

/// Outcomes of one batch, set once, plus the wakers of the futures waiting for them.
#[derive(Debug, Default)]
pub(super) struct BatchResult {
    outcomes: OnceLock<Box<[Outcome]>>,
    wakers: Mutex<Vec<Waker>>,
}

impl BatchResult {
    /// Stores the outcomes (the first call wins) and wakes every waiting future.
    pub(super) fn complete(&self, outcomes: Vec<Outcome>) {
        let _ = self.outcomes.set(outcomes.into_boxed_slice());
        // Taken after the set: a poller that registered before this lock is woken, one that
        // locks after it sees the outcomes.
        let wakers = std::mem::take(&mut *self.wakers.lock());
        for waker in wakers {
            waker.wake();
        }
    }

    /// True once the outcomes are stored.
    pub(super) fn is_complete(&self) -> bool {
        self.outcomes.get().is_some()
    }

    /// The outcomes if stored; otherwise registers the waker under `key` and returns `None`.
    fn poll_outcomes(&self, cx: &mut Context<'_>, key: &mut Option<usize>) -> Option<&[Outcome]> {
        if let Some(outcomes) = self.outcomes.get() {
            return Some(outcomes);
        }
        let mut wakers = self.wakers.lock();
        if let Some(outcomes) = self.outcomes.get() {
            return Some(outcomes);
        }
        match *key {
            Some(i) if i < wakers.len() => {
                if !wakers[i].will_wake(cx.waker()) {
                    wakers[i] = cx.waker().clone();
                }
            }
            _ => {
                *key = Some(wakers.len());
                wakers.push(cx.waker().clone());
            }
        }
        None
    }

    /// Waits until the outcomes are stored.
    pub(super) fn wait(self: Arc<Self>) -> impl Future<Output = ()> + Send {
        let mut key = None;
        std::future::poll_fn(move |cx| match self.poll_outcomes(cx, &mut key) {
            Some(_) => Poll::Ready(()),
            None => Poll::Pending,
        })
    }
}

/// The outcome of one event handed to a [`Tranquilizer`](super::Tranquilizer).
///
/// Resolves when the event's batch is answered (or at once, when the event was refused).
/// It always resolves: closing or dropping the Tranquilizer drains its batches first.
#[derive(Debug)]
#[must_use = "the outcome says whether the event reached Druid"]
pub struct OutcomeFuture {
    state: OutcomeState,
}

#[derive(Debug)]
enum OutcomeState {
    Ready(Option<Outcome>),
    Waiting {
        batch: Arc<BatchResult>,
        index: usize,
        key: Option<usize>,
    },
}

impl OutcomeFuture {
    pub(super) fn ready(outcome: Outcome) -> Self {
        Self {
            state: OutcomeState::Ready(Some(outcome)),
        }
    }

    pub(super) fn waiting(batch: Arc<BatchResult>, index: usize) -> Self {
        Self {
            state: OutcomeState::Waiting {
                batch,
                index,
                key: None,
            },
        }
    }

    /// True when awaiting would return at once.
    pub fn is_ready(&self) -> bool {
        match &self.state {
            OutcomeState::Ready(outcome) => outcome.is_some(),
            OutcomeState::Waiting { batch, .. } => batch.is_complete(),
        }
    }
}

impl Future for OutcomeFuture {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = self.get_mut();
        match &mut this.state {
            OutcomeState::Ready(outcome) => match outcome.take() {
                Some(outcome) => Poll::Ready(outcome),
                None => panic!("OutcomeFuture polled after completion"),
            },
            OutcomeState::Waiting { batch, index, key } => match batch.poll_outcomes(cx, key) {
                Some(outcomes) => Poll::Ready(outcome_at(outcomes, *index)),
                None => Poll::Pending,
            },
        }
    }
}

fn outcome_at(outcomes: &[Outcome], index: usize) -> Outcome {
    // The cell always holds one outcome per event of its batch; the fallback only guards
    // against a broken invariant without panicking.
    outcomes.get(index).cloned().unwrap_or_else(|| {
        Outcome::failed(crate::beam::SendError::Other(format!(
            "no outcome at index {index} of a batch of {}",
            outcomes.len()
        )))
    })
}

/// The outcomes of many events handed over at once, in input order.
#[derive(Debug, Default)]
#[must_use = "the outcomes say whether the events reached Druid"]
pub struct BatchOutcomes {
    parts: Vec<Part>,
    /// Parts before this index are known to be complete.
    done: usize,
    len: usize,
}

#[derive(Debug)]
enum Part {
    /// Outcomes known when the events were handed in (refused or closed).
    Ready(Outcome, usize),
    /// A run of events in one batch: `len` outcomes from `start`.
    Batch {
        batch: Arc<BatchResult>,
        start: usize,
        len: usize,
        key: Option<usize>,
    },
}

impl BatchOutcomes {
    pub(super) fn push_ready(&mut self, outcome: Outcome, count: usize) {
        if count == 0 {
            return;
        }
        self.len += count;
        self.parts.push(Part::Ready(outcome, count));
    }

    pub(super) fn push_batch(&mut self, batch: &Arc<BatchResult>, start: usize, len: usize) {
        if len == 0 {
            return;
        }
        self.len += len;
        if let Some(Part::Batch {
            batch: last,
            start: s,
            len: l,
            ..
        }) = self.parts.last_mut()
        {
            if Arc::ptr_eq(last, batch) && *s + *l == start {
                *l += len;
                return;
            }
        }
        self.parts.push(Part::Batch {
            batch: Arc::clone(batch),
            start,
            len,
            key: None,
        });
    }

    /// How many outcomes this resolves to.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when awaiting would return at once.
    pub fn is_ready(&self) -> bool {
        self.parts[self.done..].iter().all(|part| match part {
            Part::Ready(..) => true,
            Part::Batch { batch, .. } => batch.is_complete(),
        })
    }

    /// True when no events were handed in.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Future for BatchOutcomes {
    type Output = Vec<Outcome>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<Outcome>> {
        let this = self.get_mut();
        while let Some(part) = this.parts.get_mut(this.done) {
            if let Part::Batch { batch, key, .. } = part {
                if batch.poll_outcomes(cx, key).is_none() {
                    return Poll::Pending;
                }
            }
            this.done += 1;
        }
        let mut out = Vec::with_capacity(this.len);
        for part in this.parts.drain(..) {
            match part {
                Part::Ready(outcome, count) => {
                    out.extend(std::iter::repeat_n(outcome, count));
                }
                Part::Batch {
                    batch, start, len, ..
                } => {
                    let outcomes = batch.outcomes.get().map(|o| &o[..]).unwrap_or(&[]);
                    out.extend((start..start + len).map(|i| outcome_at(outcomes, i)));
                }
            }
        }
        this.done = 0;
        this.len = 0;
        Poll::Ready(out)
    }
}
