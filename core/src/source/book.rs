//! The offset book of one driver: an [`OffsetTracker`] per partition it reads, shared with the
//! source's client, which reports assignment changes and lag from its own callbacks (a Kafka
//! rebalance runs inside the client's poll, on the driver's task, so the lock never waits).
//!
//! Each tracker generation is one [`Ownership`] of its partition: a revocation, a rewind or
//! an abort fences it at once, from inside the client's callback, so nothing more is pushed
//! for it while the partition's next owner starts.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use tracing::{info, warn};

use super::metrics::{PartitionMetrics, SourceMetrics};
use super::offsets::OffsetTracker;
use super::origin::Ownership;
use super::{PartitionId, Position, SourceError};

/// The partitions a driver reads and where each one may be committed. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Partitions {
    book: Arc<Mutex<Book>>,
    metrics: SourceMetrics,
    member: usize,
}

#[derive(Debug, Default)]
struct Book {
    trackers: HashMap<PartitionId, Tracked>,
    owned: HashSet<PartitionId>,
    next_epoch: u64,
    /// What the source calls itself in producer ids (see [`Ownership::new`]).
    namespace: String,
}

#[derive(Debug)]
struct Tracked {
    epoch: u64,
    tracker: OffsetTracker,
    metrics: PartitionMetrics,
    ownership: Arc<Ownership>,
}

/// A record's place: its partition, the generation of that partition's tracker, its offset.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub(crate) partition: PartitionId,
    pub(crate) epoch: u64,
    pub(crate) offset: i64,
}

impl Book {
    fn live(&mut self, key: &Key) -> Option<&mut Tracked> {
        self.trackers
            .get_mut(&key.partition)
            .filter(|t| t.epoch == key.epoch)
    }

    fn to_commit(&self, only: Option<&[PartitionId]>) -> Vec<Position> {
        let mut out: Vec<Position> = self
            .trackers
            .iter()
            .filter(|(id, _)| only.is_none_or(|o| o.contains(id)))
            .filter_map(|(id, t)| {
                t.tracker.to_commit().map(|offset| Position {
                    partition: id.clone(),
                    offset,
                })
            })
            .collect();
        out.sort();
        out
    }

    fn committed(&mut self, points: &[Position]) {
        for point in points {
            if let Some(t) = self.trackers.get_mut(&point.partition) {
                t.tracker.committed(point.offset);
                t.metrics.committed(point.offset);
            }
        }
    }
}

impl Partitions {
    pub(crate) fn new(metrics: SourceMetrics, member: usize) -> Self {
        Self {
            book: Arc::default(),
            metrics,
            member,
        }
    }

    /// Names the source in the producer ids of partitions tracked from now on (for example
    /// `kafka:<cluster id>`), so that topics of the same name in two clusters never share one.
    /// Call it before the first record is returned.
    pub fn name_source(&self, namespace: impl Into<String>) {
        self.book.lock().namespace = namespace.into();
    }

    /// Partitions assigned to this driver (a partition the driver reads from is owned anyway).
    pub fn assigned(&self, partitions: &[PartitionId]) {
        let mut book = self.book.lock();
        book.owned.extend(partitions.iter().cloned());
        self.metrics.owned(partitions, true);
        self.metrics.assigned(self.member, book.owned.len());
        info!(
            member = self.member,
            partitions = partitions.len(),
            "partitions assigned"
        );
    }

    /// Partitions taken away: `commit` stores their done offsets (while the client still owns
    /// them), then their trackers are forgotten, so outcomes still arriving for them no longer
    /// count towards a commit (their next owner reads those records again).
    pub fn revoke(
        &self,
        partitions: &[PartitionId],
        commit: impl FnOnce(&[Position]) -> Result<(), SourceError>,
    ) {
        let mut book = self.book.lock();
        let points = book.to_commit(Some(partitions));
        if !points.is_empty() {
            match commit(&points) {
                Ok(()) => {
                    book.committed(&points);
                    info!(
                        member = self.member,
                        "Committed offsets {} of revoked partitions.",
                        describe(&points)
                    );
                }
                Err(e) => warn!(
                    member = self.member,
                    error = %e,
                    "committing offsets {} of revoked partitions failed; their new owner starts from the previous commit",
                    describe(&points)
                ),
            }
        }
        for id in partitions {
            if let Some(tracked) = book.trackers.remove(id) {
                tracked.ownership.fence();
            }
            book.owned.remove(id);
        }
        self.metrics.owned(partitions, false);
        self.metrics.assigned(self.member, book.owned.len());
        info!(
            member = self.member,
            partitions = partitions.len(),
            "partitions revoked"
        );
    }

    /// The partition's lag as the client sees it (`high_watermark` minus its committed offset)
    /// for the lag gauge; the stall check also counts every record from the oldest one still
    /// waiting for an outcome, even when it was consumed long ago.
    pub fn lag(&self, partition: &PartitionId, lag: i64, high_watermark: i64) {
        let waiting_from = self
            .book
            .lock()
            .trackers
            .get(partition)
            .and_then(|t| t.tracker.oldest_unresolved());
        let behind = waiting_from.map_or(lag, |o| lag.max(high_watermark - o));
        if lag >= 0 || behind > 0 {
            self.metrics.partition(partition).lag(lag, behind);
        }
    }

    /// Tracks the record at `offset`; returns its key and the ownership it was read under. An
    /// offset that goes backwards means the partition was rewound (re-assigned, or its
    /// position reset): its tracker starts afresh under a new ownership, and outcomes for the
    /// old one are ignored.
    pub(crate) fn track(
        &self,
        partition: &PartitionId,
        offset: i64,
        metrics: &PartitionMetrics,
    ) -> (Key, Arc<Ownership>) {
        let mut book = self.book.lock();
        if !book.owned.contains(partition) {
            book.owned.insert(partition.clone());
            self.metrics.owned([partition], true);
            self.metrics.assigned(self.member, book.owned.len());
        }
        book.next_epoch += 1;
        let fresh = book.next_epoch;
        let Book {
            trackers,
            namespace,
            ..
        } = &mut *book;
        let tracked = trackers
            .entry(partition.clone())
            .or_insert_with(|| Tracked {
                epoch: fresh,
                tracker: OffsetTracker::new(),
                metrics: metrics.clone(),
                ownership: Ownership::new(namespace, partition.clone()),
            });
        if let Err(e) = tracked.tracker.track(offset) {
            warn!(partition = %partition, %e, "partition rewound; starting its offsets afresh");
            tracked.epoch = fresh;
            tracked.tracker = OffsetTracker::new();
            tracked.ownership.fence();
            tracked.ownership = Ownership::new(namespace, partition.clone());
            // A fresh tracker accepts any first offset.
            let _ = tracked.tracker.track(offset);
        }
        let key = Key {
            partition: partition.clone(),
            epoch: tracked.epoch,
            offset,
        };
        (key, tracked.ownership.clone())
    }

    /// Resolves the record at `key`; false when its partition is no longer read.
    pub(crate) fn resolve(&self, key: &Key) -> bool {
        self.book
            .lock()
            .live(key)
            .is_some_and(|t| t.tracker.resolve(key.offset))
    }

    /// Whether `key`'s tracker is still the live one.
    pub(crate) fn is_live(&self, key: &Key) -> bool {
        self.book.lock().live(key).is_some()
    }

    /// Commit points that moved since the last commit.
    pub(crate) fn to_commit(&self) -> Vec<Position> {
        self.book.lock().to_commit(None)
    }

    /// Records that `points` were committed.
    pub(crate) fn committed(&self, points: &[Position]) {
        self.book.lock().committed(points);
    }

    /// Records whose outcome is not final, over every partition.
    pub(crate) fn unresolved(&self) -> usize {
        self.book
            .lock()
            .trackers
            .values()
            .map(|t| t.tracker.in_flight())
            .sum()
    }

    /// Forgets (and fences) every tracker, so nothing more is committed or pushed: what an
    /// abort leaves behind.
    pub(crate) fn clear(&self) {
        for (_, tracked) in self.book.lock().trackers.drain() {
            tracked.ownership.fence();
        }
    }
}

/// `{topic[partition]=offset, ...}`, for logs.
pub(crate) fn describe(points: &[Position]) -> String {
    let parts: Vec<String> = points
        .iter()
        .map(|p| format!("{}={}", p.partition, p.offset))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn outcomes_of_forgotten_generations_do_not_count() {
        let metrics = SourceMetrics::register(&Metrics::new(), "test");
        let book = Partitions::new(metrics.clone(), 0);
        let id = PartitionId::new("t", 0);
        let pm = metrics.partition(&id);
        let (old, old_hold) = book.track(&id, 10, &pm);
        assert!(!old_hold.is_fenced());
        // Revoked, then assigned again from an earlier committed offset.
        book.revoke(std::slice::from_ref(&id), |_| Ok(()));
        assert!(
            old_hold.is_fenced(),
            "nothing more is pushed for a revoked partition"
        );
        let (new, new_hold) = book.track(&id, 5, &pm);
        assert_ne!(old.epoch, new.epoch);
        assert_ne!(*old_hold, *new_hold);
        assert_eq!(old_hold.producer_id(), new_hold.producer_id());
        assert!(
            !book.resolve(&old),
            "an outcome of the old generation does not count"
        );
        assert!(!book.is_live(&old));
        assert!(book.resolve(&new));
        let points = book.to_commit();
        assert_eq!(
            points,
            [Position {
                partition: id.clone(),
                offset: 6
            }]
        );
        book.committed(&points);
        assert!(book.to_commit().is_empty(), "nothing new to commit");
        // A rewind within one generation starts afresh too.
        let (rewound, rewound_hold) = book.track(&id, 2, &pm);
        assert_ne!(new.epoch, rewound.epoch);
        assert!(new_hold.is_fenced() && !rewound_hold.is_fenced());
        assert!(book.to_commit().is_empty());
        assert_eq!(book.unresolved(), 1);
        book.clear();
        assert!(rewound_hold.is_fenced(), "an abort fences what is left");
    }

    #[test]
    fn revocation_commits_done_offsets_of_those_partitions_only() {
        let metrics = SourceMetrics::register(&Metrics::new(), "test");
        let book = Partitions::new(metrics.clone(), 0);
        let (a, b) = (PartitionId::new("t", 0), PartitionId::new("t", 1));
        book.assigned(&[a.clone(), b.clone()]);
        let (ka, _) = book.track(&a, 0, &metrics.partition(&a));
        let (kb, _) = book.track(&b, 7, &metrics.partition(&b));
        book.track(&a, 1, &metrics.partition(&a));
        book.resolve(&ka);
        book.resolve(&kb);
        let mut asked = Vec::new();
        book.revoke(std::slice::from_ref(&a), |points| {
            asked.extend_from_slice(points);
            Ok(())
        });
        assert_eq!(
            asked,
            [Position {
                partition: a.clone(),
                offset: 1
            }]
        );
        assert_eq!(
            book.to_commit(),
            [Position {
                partition: b,
                offset: 8
            }],
            "the other partition is still ours"
        );
        assert_eq!(book.unresolved(), 0, "a's unresolved offset 1 is forgotten");
    }
}
