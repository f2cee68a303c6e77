//! Replication: every batch goes to every replica; the outcomes merge per event by
//! [`Outcome::merge_replicas`].

use async_trait::async_trait;
use futures::future::join_all;

use super::partition::close_all;
use super::{exact_outcomes, Beam, CloseError, Outcome};
use crate::event::Event;

/// Sends each batch to all replicas concurrently. Per event: `Sent` if any replica sent it,
/// else `Dropped` if all dropped it, else `Failed` naming the failed replicas (the rule of
/// [`Outcome::merge_replicas`]).
#[derive(Debug)]
pub struct ReplicatedBeam<B> {
    replicas: Vec<B>,
}

impl<B: Beam> ReplicatedBeam<B> {
    /// A beam over `replicas`. With no replicas every event fails.
    pub fn new(replicas: Vec<B>) -> Self {
        Self { replicas }
    }

    /// The replicas, in the order their failures are numbered.
    pub fn replicas(&self) -> &[B] {
        &self.replicas
    }
}

#[async_trait]
impl<B: Beam> Beam for ReplicatedBeam<B> {
    async fn send_batch(&self, events: Vec<Event>) -> Vec<Outcome> {
        let total = events.len();
        if let [only] = &self.replicas[..] {
            return exact_outcomes(only.send_batch(events).await, total, only);
        }
        // Events share their bytes, so the copies are cheap; the last replica takes the original.
        let mut copies: Vec<Vec<Event>> =
            (1..self.replicas.len()).map(|_| events.clone()).collect();
        copies.push(events);
        let sends = self
            .replicas
            .iter()
            .zip(copies)
            .map(|(replica, batch)| async move {
                exact_outcomes(replica.send_batch(batch).await, total, replica)
            });
        let mut answers: Vec<std::vec::IntoIter<Outcome>> = join_all(sends)
            .await
            .into_iter()
            .map(Vec::into_iter)
            .collect();
        (0..total)
            .map(|_| Outcome::merge_replicas(answers.iter_mut().filter_map(Iterator::next)))
            .collect()
    }

    async fn close(&self) -> Result<(), CloseError> {
        close_all(&self.replicas, "replica").await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::beam::testing::{event, marked, FailableBeam, MemoryBeam};
    use crate::beam::{DropReason, SendError};

    fn push_error(target: &str) -> Outcome {
        Outcome::failed(SendError::Push {
            target: target.into(),
            message: "refused".into(),
        })
    }

    #[test]
    fn merge_rule() {
        use Outcome::*;
        let drop = |r| Dropped(r);
        // Any Sent wins.
        assert!(Outcome::merge_replicas([push_error("a"), Sent]).is_sent());
        assert!(Outcome::merge_replicas([drop(DropReason::BeamDefunct), Sent]).is_sent());
        // All dropped: the first reason.
        let merged = Outcome::merge_replicas([
            drop(DropReason::BeamDefunct),
            drop(DropReason::OutsideWindow),
        ]);
        assert!(matches!(merged, Dropped(DropReason::BeamDefunct)));
        // Dropped and failed: failed, naming only the failed replica.
        let merged = Outcome::merge_replicas([drop(DropReason::BeamDefunct), push_error("b")]);
        let Failed(error) = merged else {
            panic!("expected a failure, got {merged:?}");
        };
        let SendError::Replicas(failures) = error.as_ref() else {
            panic!("expected replica errors, got {error:?}");
        };
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].replica, 1);
        assert_eq!(
            error.to_string(),
            "no replica took the event: replica 1: push to b failed: refused"
        );
        assert!(error.is_retriable());
        // All failed: every replica named.
        let merged = Outcome::merge_replicas([push_error("a"), push_error("b")]);
        let text = match merged {
            Failed(e) => e.to_string(),
            other => panic!("expected a failure, got {other:?}"),
        };
        assert!(text.contains("replica 0: push to a") && text.contains("replica 1: push to b"));
        // One replica: unchanged; none: a failure.
        let one = Outcome::merge_replicas([push_error("a")]);
        assert!(matches!(&one, Failed(e) if matches!(e.as_ref(), SendError::Push { .. })));
        assert!(Outcome::merge_replicas(std::iter::empty()).is_failed());
    }

    #[test]
    fn replica_errors_are_retriable_only_if_one_is() {
        let error = SendError::Replicas(vec![crate::beam::ReplicaError {
            replica: 0,
            error: Arc::new(SendError::Other("bad".into())),
        }]);
        assert!(!error.is_retriable());
    }

    #[tokio::test]
    async fn sends_to_every_replica_and_merges_per_event() {
        // Replica 0 fails marked events; replica 1 drops events marked "drop" only.
        let r0 = FailableBeam::new().fail_if(|e| crate::beam::testing::mark(e).is_some());
        let r1 = FailableBeam::by_mark();
        let beam = ReplicatedBeam::new(vec![r0.clone(), r1.clone()]);
        let outcomes = beam
            .send_batch(vec![event(0), marked(1, "drop"), marked(2, "fail")])
            .await;
        assert_eq!(r0.batch_sizes(), vec![3]);
        assert_eq!(r1.batch_sizes(), vec![3]);
        assert!(outcomes[0].is_sent());
        assert!(
            outcomes[1].is_failed(),
            "dropped by one, failed by the other: {outcomes:?}"
        );
        let Outcome::Failed(error) = &outcomes[2] else {
            panic!("expected a failure");
        };
        assert!(error.to_string().contains("replica 0") && error.to_string().contains("replica 1"));
    }

    #[tokio::test]
    async fn all_replicas_dropping_is_a_drop() {
        let drop_all = || FailableBeam::new().drop_if(|_| true, DropReason::BeamDefunct);
        let beam = ReplicatedBeam::new(vec![drop_all(), drop_all(), drop_all()]);
        let outcomes = beam.send_batch(vec![event(0), event(1)]).await;
        assert!(outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Dropped(DropReason::BeamDefunct))));
    }

    #[tokio::test]
    async fn one_good_replica_is_enough_and_sends_run_concurrently() {
        let slow = FailableBeam::new();
        slow.hold();
        let broken = FailableBeam::new().fail_if(|_| true);
        let beam = Arc::new(ReplicatedBeam::new(vec![broken.clone(), slow.clone()]));
        let task = tokio::spawn({
            let beam = Arc::clone(&beam);
            async move { beam.send_batch(vec![event(0)]).await }
        });
        while slow.in_flight() == 0 || broken.batch_sizes().is_empty() {
            tokio::task::yield_now().await;
        }
        slow.release();
        assert!(task.await.unwrap()[0].is_sent());
    }

    #[tokio::test]
    async fn no_replicas_fail_and_close_reaches_all() {
        let none = ReplicatedBeam::<MemoryBeam>::new(Vec::new());
        assert!(none.send_batch(vec![event(0)]).await[0].is_failed());
        let replicas = vec![MemoryBeam::new(), MemoryBeam::new()];
        let beam = ReplicatedBeam::new(replicas.clone());
        beam.close().await.unwrap();
        assert!(replicas.iter().all(MemoryBeam::is_closed));
    }
}
