//! Partitioning beams: split a batch over several inner beams and stitch the outcomes back.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::join_all;

use super::{exact_outcomes, Beam, CloseError, Outcome, SendError};
use crate::event::Event;

type Partitioner = Arc<dyn Fn(&Event) -> usize + Send + Sync>;

/// Splits each batch by a partitioner over N beams, sends the groups concurrently and answers
/// in input order.
///
/// The partitioner's number is taken modulo N, so a hash can be returned as is.
pub struct MergingPartitioningBeam<B> {
    beams: Vec<B>,
    partitioner: Partitioner,
}

impl<B: Beam> MergingPartitioningBeam<B> {
    /// A beam over `beams`, choosing `partitioner(event) % beams.len()` for each event.
    /// With no beams every event fails.
    pub fn new(
        beams: Vec<B>,
        partitioner: impl Fn(&Event) -> usize + Send + Sync + 'static,
    ) -> Self {
        Self {
            beams,
            partitioner: Arc::new(partitioner),
        }
    }

    /// The inner beams, by partition.
    pub fn beams(&self) -> &[B] {
        &self.beams
    }
}

impl<B: fmt::Debug> fmt::Debug for MergingPartitioningBeam<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MergingPartitioningBeam")
            .field("beams", &self.beams)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<B: Beam> Beam for MergingPartitioningBeam<B> {
    async fn send_batch(&self, events: Vec<Event>) -> Vec<Outcome> {
        let n = self.beams.len();
        let total = events.len();
        match n {
            0 => return no_beams(total),
            1 => {
                return exact_outcomes(
                    self.beams[0].send_batch(events).await,
                    total,
                    &self.beams[0],
                )
            }
            _ => {}
        }
        let mut partitions = Vec::with_capacity(total);
        let mut groups: Vec<Vec<Event>> = (0..n).map(|_| Vec::new()).collect();
        for event in events {
            let p = (self.partitioner)(&event) % n;
            partitions.push(p);
            groups[p].push(event);
        }
        let sends = groups
            .into_iter()
            .enumerate()
            .filter(|(_, group)| !group.is_empty())
            .map(|(p, group)| async move {
                let len = group.len();
                let beam = &self.beams[p];
                (p, exact_outcomes(beam.send_batch(group).await, len, beam))
            });
        let answered = join_all(sends).await;
        if let [(_, outcomes)] = &answered[..] {
            if outcomes.len() == total {
                // Everything went to one partition: its answer is already in order.
                return answered
                    .into_iter()
                    .next()
                    .map(|(_, o)| o)
                    .unwrap_or_default();
            }
        }
        let mut by_partition: Vec<std::vec::IntoIter<Outcome>> =
            (0..n).map(|_| Vec::new().into_iter()).collect();
        for (p, outcomes) in answered {
            by_partition[p] = outcomes.into_iter();
        }
        partitions
            .into_iter()
            .map(|p| {
                by_partition[p].next().unwrap_or_else(|| {
                    Outcome::failed(SendError::Other(format!("partition {p} gave no outcome")))
                })
            })
            .collect()
    }

    async fn close(&self) -> Result<(), CloseError> {
        close_all(&self.beams, "partition").await
    }
}

fn no_beams(count: usize) -> Vec<Outcome> {
    let error = Arc::new(SendError::Other("no beams to send to".into()));
    vec![Outcome::Failed(error); count]
}

/// Closes every beam concurrently; the error names each one that failed by its index.
pub(crate) async fn close_all<B: Beam>(beams: &[B], what: &str) -> Result<(), CloseError> {
    let results = join_all(beams.iter().map(|b| b.close())).await;
    let failures: Vec<String> = results
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| r.err().map(|e| format!("{what} {i}: {}", e.0)))
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CloseError(failures.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beam::testing::{event, marked, number, FailableBeam, MemoryBeam};

    fn by_number(e: &Event) -> usize {
        number(e).unwrap_or(0) as usize
    }

    #[tokio::test]
    async fn splits_by_partitioner_and_keeps_input_order() {
        let beams = vec![MemoryBeam::new(), MemoryBeam::new(), MemoryBeam::new()];
        let beam = MergingPartitioningBeam::new(beams.clone(), by_number);
        let outcomes = beam.send_batch((0..10).map(event).collect()).await;
        assert_eq!(outcomes.len(), 10);
        assert!(outcomes.iter().all(Outcome::is_sent));
        for (p, inner) in beams.iter().enumerate() {
            let got: Vec<u64> = inner.events().iter().filter_map(number).collect();
            let want: Vec<u64> = (0..10).filter(|n| *n as usize % 3 == p).collect();
            assert_eq!(got, want, "partition {p}");
            assert_eq!(inner.batch_sizes().len(), 1, "one batch per partition");
        }
    }

    #[tokio::test]
    async fn stitches_mixed_outcomes_back_in_order() {
        // Partition 0 fails what is marked, partition 1 drops what is marked.
        let beams = vec![FailableBeam::by_mark(), FailableBeam::by_mark()];
        let beam = MergingPartitioningBeam::new(beams, by_number);
        let events = vec![
            marked(0, "fail"),
            event(1),
            event(2),
            marked(3, "drop"),
            marked(4, "drop"),
            marked(5, "fail"),
        ];
        let outcomes = beam.send_batch(events).await;
        let kinds: Vec<&str> = outcomes
            .iter()
            .map(|o| match o {
                Outcome::Sent => "sent",
                Outcome::Dropped(_) => "dropped",
                Outcome::Failed(_) => "failed",
            })
            .collect();
        assert_eq!(
            kinds,
            ["failed", "sent", "sent", "dropped", "dropped", "failed"]
        );
    }

    #[tokio::test]
    async fn sends_groups_concurrently() {
        let beams = vec![FailableBeam::new(), FailableBeam::new()];
        beams[0].hold();
        beams[1].hold();
        let beam = Arc::new(MergingPartitioningBeam::new(beams.clone(), by_number));
        let task = tokio::spawn({
            let beam = Arc::clone(&beam);
            async move { beam.send_batch((0..4).map(event).collect()).await }
        });
        while beams.iter().any(|b| b.in_flight() == 0) {
            tokio::task::yield_now().await;
        }
        beams[0].release();
        beams[1].release();
        assert_eq!(task.await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn wraps_large_partition_numbers_and_handles_misbehaving_inner_beams() {
        let beams = vec![FailableBeam::new().answer_short(), FailableBeam::new()];
        let beam = MergingPartitioningBeam::new(beams, |e: &Event| by_number(e) + 1_000_000);
        // 1_000_000 is even: even numbers go to the short-answering partition 0.
        let outcomes = beam.send_batch((0..4).map(event).collect()).await;
        assert_eq!(outcomes.len(), 4);
        assert!(outcomes[0].is_sent());
        assert!(outcomes[1].is_sent());
        assert!(
            outcomes[2].is_failed(),
            "the missing outcome fails, not panics"
        );
        assert!(outcomes[3].is_sent());
    }

    #[tokio::test]
    async fn no_beams_fails_every_event() {
        let beam = MergingPartitioningBeam::<MemoryBeam>::new(Vec::new(), by_number);
        let outcomes = beam.send_batch(vec![event(1)]).await;
        assert!(outcomes[0].is_failed());
        beam.close().await.unwrap();
    }

    #[tokio::test]
    async fn close_closes_all_and_names_failures() {
        let beams = vec![FailableBeam::new(), FailableBeam::new().fail_close("boom")];
        let beam = MergingPartitioningBeam::new(beams.clone(), by_number);
        let err = beam.close().await.unwrap_err();
        assert_eq!(err.0, "partition 1: boom");
        assert!(beams.iter().all(|b| b.close_count() == 1));
    }
}
