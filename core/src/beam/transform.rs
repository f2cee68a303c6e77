//! A beam that rewrites each event before passing it on; a rejected event gets its own
//! outcome and the rest of the batch goes ahead.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use async_trait::async_trait;

use super::tranquilizer::panic_message;
use super::{exact_outcomes, Beam, CloseError, DropReason, Outcome, SendError};
use crate::event::Event;

/// Why a transform refused an event: it is either dropped (for example an unparseable
/// timestamp) or failed.
#[derive(Debug)]
pub enum TransformRejection {
    /// The event is dropped with this reason.
    Dropped(DropReason),
    /// The event fails with this error.
    Failed(SendError),
}

impl TransformRejection {
    fn into_outcome(self) -> Outcome {
        match self {
            TransformRejection::Dropped(reason) => Outcome::Dropped(reason),
            TransformRejection::Failed(error) => Outcome::failed(error),
        }
    }
}

impl From<DropReason> for TransformRejection {
    fn from(reason: DropReason) -> Self {
        TransformRejection::Dropped(reason)
    }
}

impl From<SendError> for TransformRejection {
    fn from(error: SendError) -> Self {
        TransformRejection::Failed(error)
    }
}

type Transform = Arc<dyn Fn(Event) -> Result<Event, TransformRejection> + Send + Sync>;

/// Applies a fallible transform to each event, then sends the accepted ones to the inner
/// beam. A rejection, or a panic in the transform, affects only that event.
pub struct TransformingBeam<B> {
    inner: B,
    transform: Transform,
}

impl<B: Beam> TransformingBeam<B> {
    /// A beam applying `transform` before `inner`.
    pub fn new(
        inner: B,
        transform: impl Fn(Event) -> Result<Event, TransformRejection> + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner,
            transform: Arc::new(transform),
        }
    }

    /// The beam the transformed events go to.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    fn apply(&self, event: Event) -> Result<Event, Outcome> {
        match catch_unwind(AssertUnwindSafe(|| (self.transform)(event))) {
            Ok(Ok(event)) => Ok(event),
            Ok(Err(rejection)) => Err(rejection.into_outcome()),
            Err(panic) => Err(Outcome::failed(SendError::Other(format!(
                "transform panicked: {}",
                panic_message(panic.as_ref())
            )))),
        }
    }
}

impl<B: fmt::Debug> fmt::Debug for TransformingBeam<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransformingBeam")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<B: Beam> Beam for TransformingBeam<B> {
    async fn send_batch(&self, events: Vec<Event>) -> Vec<Outcome> {
        let total = events.len();
        let mut rejected: Vec<Option<Outcome>> = Vec::new();
        let mut accepted = Vec::with_capacity(total);
        for (i, event) in events.into_iter().enumerate() {
            match self.apply(event) {
                Ok(event) => {
                    accepted.push(event);
                    if !rejected.is_empty() {
                        rejected.push(None);
                    }
                }
                Err(outcome) => {
                    if rejected.is_empty() {
                        // First rejection: remember the accepted ones before it as gaps.
                        rejected.reserve(total);
                        rejected.resize_with(i, || None);
                    }
                    rejected.push(Some(outcome));
                }
            }
        }
        let sent = accepted.len();
        let inner = if sent == 0 {
            Vec::new()
        } else {
            exact_outcomes(self.inner.send_batch(accepted).await, sent, &self.inner)
        };
        if rejected.is_empty() {
            return inner;
        }
        let mut inner = inner.into_iter();
        rejected
            .into_iter()
            .map(|slot| {
                slot.or_else(|| inner.next()).unwrap_or_else(|| {
                    Outcome::failed(SendError::Other("inner beam gave no outcome".into()))
                })
            })
            .collect()
    }

    async fn close(&self) -> Result<(), CloseError> {
        self.inner.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beam::testing::{event, number, MemoryBeam};

    /// Doubles the timestamp; drops odd numbers above 10, fails multiples of 3, panics on 7.
    fn transform(event: Event) -> Result<Event, TransformRejection> {
        let n = number(&event).unwrap_or(0);
        if n == 7 {
            panic!("seven");
        }
        if n > 10 && n % 2 == 1 {
            return Err(DropReason::Unparseable.into());
        }
        if n % 3 == 0 {
            return Err(SendError::Other(format!("no multiples of 3: {n}")).into());
        }
        Ok(Event::new(
            event.timestamp_millis() * 2,
            event.raw().clone(),
        ))
    }

    #[tokio::test]
    async fn rejections_affect_only_their_event() {
        let memory = MemoryBeam::new();
        let beam = TransformingBeam::new(memory.clone(), transform);
        let outcomes = beam
            .send_batch([1, 3, 4, 7, 11, 14].into_iter().map(event).collect())
            .await;
        assert!(outcomes[0].is_sent());
        assert!(
            matches!(&outcomes[1], Outcome::Failed(e) if e.to_string().contains("multiples of 3"))
        );
        assert!(outcomes[2].is_sent());
        assert!(
            matches!(&outcomes[3], Outcome::Failed(e) if e.to_string() == "transform panicked: seven")
        );
        assert!(matches!(
            outcomes[4],
            Outcome::Dropped(DropReason::Unparseable)
        ));
        assert!(outcomes[5].is_sent());
        let sent = memory.events();
        let numbers: Vec<u64> = sent.iter().filter_map(number).collect();
        assert_eq!(numbers, [1, 4, 14]);
        let timestamps: Vec<i64> = sent.iter().map(Event::timestamp_millis).collect();
        assert_eq!(timestamps, [2, 8, 28]);
    }

    #[tokio::test]
    async fn all_accepted_or_all_rejected() {
        let memory = MemoryBeam::new();
        let beam = TransformingBeam::new(memory.clone(), transform);
        let ok = beam.send_batch(vec![event(1), event(2)]).await;
        assert!(ok.iter().all(Outcome::is_sent));
        let bad = beam.send_batch(vec![event(3), event(6)]).await;
        assert!(bad.iter().all(Outcome::is_failed));
        assert_eq!(
            memory.batch_sizes(),
            vec![2],
            "an all-rejected batch never reaches the beam"
        );
        beam.close().await.unwrap();
        assert!(memory.is_closed());
    }
}
