//! Time-chunk locks as Druid's `TaskLockbox` grants them, and the segment identities handed
//! out under them (`SegmentAllocateAction`).
//!
//! A lock covers one dataSource interval (a segment-granularity chunk) for a task group. Two
//! requests on overlapping chunks coexist when they are of the same group and type (the lock
//! is reused), when both are SHARED, or when both are APPEND, or one APPEND and one REPLACE;
//! otherwise the newcomer fails, unless its priority is higher than every conflicting lock's,
//! in which case those locks are revoked and their tasks fail when they try to publish
//! (Kafka tasks have priority 75, batch 50). Seen on Druid 33.0.0: two `index_parallel`
//! appends on one chunk fail the second without `intervals` and serialise with them; `index`
//! appends share the group `index_append_<ds>`; `useSharedLock` and `useConcurrentLocks`
//! appends run side by side.
//!
//! Segments appended into a chunk that has segments take the chunk's version and the next
//! partition number; into an empty chunk, the lock's version (the time the lock was taken, or
//! the epoch for APPEND locks, so a later REPLACE overshadows them).

use crate::time::{self, Interval};
use crate::Shared;
use parking_lot::Mutex;
use std::collections::BTreeSet;
use tokio::sync::watch;

/// The version of segments appended under an APPEND lock into an empty chunk.
pub const APPEND_LOCK_VERSION: &str = "1970-01-01T00:00:00.000Z";

/// Priority of Kafka reading tasks.
pub const KAFKA_PRIORITY: i64 = 75;

/// Druid's `TaskLockType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockType {
    /// The default: one group at a time.
    Exclusive,
    /// `useSharedLock`: shared with other SHARED locks.
    Shared,
    /// Concurrent append (`useConcurrentLocks` or `taskLockType: APPEND`).
    Append,
    /// Concurrent replace: coexists with APPEND locks.
    Replace,
}

impl LockType {
    /// Druid's name.
    pub fn name(self) -> &'static str {
        match self {
            LockType::Exclusive => "EXCLUSIVE",
            LockType::Shared => "SHARED",
            LockType::Append => "APPEND",
            LockType::Replace => "REPLACE",
        }
    }

    fn compatible(self, other: LockType) -> bool {
        matches!(
            (self, other),
            (LockType::Shared, LockType::Shared)
                | (LockType::Append, LockType::Append)
                | (LockType::Append, LockType::Replace)
                | (LockType::Replace, LockType::Append)
        )
    }
}

/// A lock request.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The task asking.
    pub task: &'a str,
    /// Its group (a lock is shared within a group).
    pub group: &'a str,
    /// The dataSource.
    pub data_source: &'a str,
    /// The chunk.
    pub interval: Interval,
    /// The lock type.
    pub kind: LockType,
    /// The task's priority.
    pub priority: i64,
}

#[derive(Debug, Clone)]
struct Lock {
    group: String,
    data_source: String,
    interval: Interval,
    version: String,
    kind: LockType,
    priority: i64,
    tasks: BTreeSet<String>,
    revoked: bool,
}

/// All locks held.
#[derive(Debug)]
pub struct LockBox {
    locks: Mutex<Vec<Lock>>,
    changed: watch::Sender<u64>,
}

impl Default for LockBox {
    fn default() -> Self {
        LockBox {
            locks: Mutex::default(),
            changed: watch::channel(0).0,
        }
    }
}

impl LockBox {
    /// Takes (or joins) a lock; its version on success.
    pub fn try_lock(&self, r: &Request<'_>) -> Option<String> {
        let mut locks = self.locks.lock();
        let overlapping: Vec<usize> = (0..locks.len())
            .filter(|i| {
                let l = &locks[*i];
                !l.revoked && l.data_source == r.data_source && l.interval.overlaps(&r.interval)
            })
            .collect();
        if let Some(i) = overlapping.iter().copied().find(|i| {
            let l = &locks[*i];
            l.group == r.group && l.kind == r.kind && l.interval == r.interval
        }) {
            locks[i].tasks.insert(r.task.to_owned());
            return Some(locks[i].version.clone());
        }
        let conflicting: Vec<usize> = overlapping
            .iter()
            .copied()
            .filter(|i| {
                let l = &locks[*i];
                let same_group = l.group == r.group && l.kind == r.kind;
                !(same_group || l.kind.compatible(r.kind))
            })
            .collect();
        if !conflicting.is_empty() {
            if conflicting.iter().all(|i| locks[*i].priority < r.priority) {
                for i in &conflicting {
                    locks[*i].revoked = true;
                    tracing::info!(group = %locks[*i].group, interval = %locks[*i].interval, "lock revoked by a higher-priority request");
                }
            } else {
                return None;
            }
        }
        // A compatible lock on the same chunk lends its version, so the two append into one.
        let version = overlapping
            .iter()
            .filter(|i| !conflicting.contains(i) && locks[**i].interval == r.interval)
            .map(|i| locks[*i].version.clone())
            .next()
            .unwrap_or_else(|| match r.kind {
                LockType::Append => APPEND_LOCK_VERSION.to_owned(),
                _ => time::iso(time::now_millis()),
            });
        locks.push(Lock {
            group: r.group.to_owned(),
            data_source: r.data_source.to_owned(),
            interval: r.interval,
            version: version.clone(),
            kind: r.kind,
            priority: r.priority,
            tasks: BTreeSet::from([r.task.to_owned()]),
            revoked: false,
        });
        Some(version)
    }

    /// Whether a lock of `task` on a chunk overlapping `interval` was revoked.
    pub fn revoked(&self, task: &str, interval: Interval) -> bool {
        self.locks
            .lock()
            .iter()
            .any(|l| l.revoked && l.interval.overlaps(&interval) && l.tasks.contains(task))
    }

    /// Releases every lock of a task (it ended).
    pub fn release(&self, task: &str) {
        let mut locks = self.locks.lock();
        for l in locks.iter_mut() {
            l.tasks.remove(task);
        }
        locks.retain(|l| !l.tasks.is_empty());
        drop(locks);
        self.changed.send_modify(|n| *n += 1);
    }

    /// Resolves when a lock is released (a waiting task tries again).
    pub async fn released(&self) {
        let mut rx = self.changed.subscribe();
        let _ = rx.changed().await;
    }
}

/// A (version, partition) for a new segment appended by `r.task` into chunk `r.interval`,
/// taking the chunk's lock first; `None` when the lock is not granted.
pub fn allocate(shared: &Shared, r: &Request<'_>) -> Option<(String, u32)> {
    let lock_version = shared.locks.try_lock(r)?;
    let version = chunk_version(shared, r.data_source, r.interval).unwrap_or(lock_version);
    let partition = shared
        .store
        .allocate_partition(r.data_source, r.interval, &version);
    Some((version, partition))
}

/// The newest version of the used segments of a chunk, loaded or still loading.
pub fn chunk_version(shared: &Shared, data_source: &str, interval: Interval) -> Option<String> {
    let loading = shared
        .metadata
        .loading(data_source)
        .into_iter()
        .filter(|u| u.segment.interval == interval)
        .map(|u| u.segment.version.clone())
        .max();
    shared
        .store
        .chunk_version(data_source, interval)
        .into_iter()
        .chain(loading)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(task: &'a str, group: &'a str, kind: LockType, priority: i64) -> Request<'a> {
        Request {
            task,
            group,
            data_source: "wiki",
            interval: Interval {
                start: 0,
                end: 3_600_000,
            },
            kind,
            priority,
        }
    }

    #[test]
    fn the_lock_table() {
        let b = LockBox::default();
        assert!(b
            .try_lock(&req("a", "a", LockType::Exclusive, 50))
            .is_some());
        assert!(
            b.try_lock(&req("b", "b", LockType::Exclusive, 50))
                .is_none(),
            "exclusive vs other group"
        );
        assert!(
            b.try_lock(&req("a2", "a", LockType::Exclusive, 50))
                .is_some(),
            "same group reuses"
        );
        b.release("a");
        b.release("a2");
        assert!(
            b.try_lock(&req("b", "b", LockType::Exclusive, 50))
                .is_some(),
            "free again"
        );
        b.release("b");

        let v1 = b.try_lock(&req("s1", "s1", LockType::Shared, 50)).unwrap();
        let v2 = b.try_lock(&req("s2", "s2", LockType::Shared, 50)).unwrap();
        assert_eq!(v1, v2, "shared locks share a version");
        b.release("s1");
        b.release("s2");

        assert_eq!(
            b.try_lock(&req("p1", "p1", LockType::Append, 50)).unwrap(),
            APPEND_LOCK_VERSION
        );
        assert!(b.try_lock(&req("p2", "p2", LockType::Append, 50)).is_some());
        assert!(
            b.try_lock(&req("r", "r", LockType::Replace, 25)).is_some(),
            "append + replace"
        );
        assert!(b
            .try_lock(&req("x", "x", LockType::Exclusive, 50))
            .is_none());
    }

    #[test]
    fn higher_priority_revokes() {
        let b = LockBox::default();
        b.try_lock(&req("batch", "batch", LockType::Exclusive, 50))
            .unwrap();
        assert!(b
            .try_lock(&req(
                "kafka",
                "index_kafka_wiki",
                LockType::Exclusive,
                KAFKA_PRIORITY
            ))
            .is_some());
        assert!(b.revoked("batch", Interval { start: 0, end: 1 }));
        assert!(!b.revoked("kafka", Interval { start: 0, end: 1 }));
        assert!(
            b.try_lock(&req("batch2", "batch2", LockType::Exclusive, 50))
                .is_none(),
            "kafka holds it now"
        );
    }
}
