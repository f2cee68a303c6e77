//! The offset tracker of one partition: which offset may be committed, given outcomes that
//! arrive in any order.
//!
//! Offsets are handed out in increasing order (with gaps: compaction and transaction markers
//! leave holes). Each one is resolved when its message has a final outcome (`Sent`, or
//! `Dropped` with a reason). The commit point is the offset after the longest resolved prefix:
//! every message below it is accounted for, so committing it loses nothing. A message that
//! failed and is being retried stays unresolved and holds the commit point back.
//!
//! ```text
//!  tracked:   5  6  7  9  10        (8 never arrived: a gap)
//!  resolved:  ✓  ✓  ·  ✓  ✓
//!  commit point = 7  (7 is still in flight; 9 and 10 wait behind it)
//! ```

use std::collections::VecDeque;

/// Why an offset could not be tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("offset {offset} is not above the last tracked offset {last}")]
pub struct OutOfOrder {
    /// The offset handed in.
    pub offset: i64,
    /// The highest offset tracked so far.
    pub last: i64,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    offset: i64,
    resolved: bool,
}

/// Offsets of one partition: in flight, resolved, and what has been committed.
#[derive(Debug, Clone, Default)]
pub struct OffsetTracker {
    /// Offsets handed out whose prefix is not fully resolved, in increasing order.
    slots: VecDeque<Slot>,
    /// Offset after the last message of the resolved prefix, once one exists.
    commit_point: Option<i64>,
    /// The highest offset tracked so far.
    last_tracked: Option<i64>,
    /// The last commit point acknowledged as committed.
    committed: Option<i64>,
}

impl OffsetTracker {
    /// An empty tracker: nothing handed out, nothing to commit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the message at `offset` was handed out. Offsets must increase.
    pub fn track(&mut self, offset: i64) -> Result<(), OutOfOrder> {
        if let Some(last) = self.last_tracked {
            if offset <= last {
                return Err(OutOfOrder { offset, last });
            }
        }
        self.last_tracked = Some(offset);
        self.slots.push_back(Slot {
            offset,
            resolved: false,
        });
        Ok(())
    }

    /// Records the final outcome of the message at `offset`. Returns false when the offset is
    /// not in flight (never tracked, or already resolved), which callers may count as a bug.
    pub fn resolve(&mut self, offset: i64) -> bool {
        let Ok(index) = self.slots.binary_search_by_key(&offset, |s| s.offset) else {
            return false;
        };
        let slot = &mut self.slots[index];
        if slot.resolved {
            return false;
        }
        slot.resolved = true;
        while let Some(front) = self.slots.front() {
            if !front.resolved {
                break;
            }
            self.commit_point = Some(front.offset + 1);
            self.slots.pop_front();
        }
        true
    }

    /// The offset to commit: every tracked message below it is resolved. `None` before the
    /// first message is resolved.
    pub fn commit_point(&self) -> Option<i64> {
        self.commit_point
    }

    /// The commit point when it is ahead of what was last committed.
    pub fn to_commit(&self) -> Option<i64> {
        match (self.commit_point, self.committed) {
            (Some(point), Some(done)) if point <= done => None,
            (point, _) => point,
        }
    }

    /// Records that `point` was committed to the broker.
    pub fn committed(&mut self, point: i64) {
        self.committed = Some(self.committed.map_or(point, |c| c.max(point)));
    }

    /// The last offset acknowledged as committed.
    pub fn last_committed(&self) -> Option<i64> {
        self.committed
    }

    /// Messages handed out whose outcome is not final, or that wait behind one that is not.
    pub fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| !s.resolved).count()
    }

    /// The oldest offset without a final outcome: the one holding the commit point back.
    pub fn oldest_unresolved(&self) -> Option<i64> {
        self.slots.iter().find(|s| !s.resolved).map(|s| s.offset)
    }

    /// The highest offset handed out.
    pub fn last_tracked(&self) -> Option<i64> {
        self.last_tracked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tracked(offsets: impl IntoIterator<Item = i64>) -> OffsetTracker {
        let mut t = OffsetTracker::new();
        for o in offsets {
            t.track(o).unwrap();
        }
        t
    }

    #[test]
    fn nothing_to_commit_until_the_first_message_resolves() {
        let mut t = tracked(0..3);
        assert_eq!(t.commit_point(), None);
        assert_eq!(t.to_commit(), None);
        assert!(t.resolve(1));
        assert_eq!(t.commit_point(), None, "offset 0 still holds it back");
        assert!(t.resolve(0));
        assert_eq!(t.commit_point(), Some(2));
        assert!(t.resolve(2));
        assert_eq!(t.commit_point(), Some(3));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn gaps_in_offsets_do_not_block() {
        let mut t = tracked([5, 6, 7, 9, 10]);
        for o in [5, 6, 9, 10] {
            assert!(t.resolve(o));
        }
        assert_eq!(t.commit_point(), Some(7));
        assert_eq!(t.oldest_unresolved(), Some(7));
        assert_eq!(t.in_flight(), 1);
        assert!(t.resolve(7));
        assert_eq!(t.commit_point(), Some(11));
        assert_eq!(t.oldest_unresolved(), None);
    }

    #[test]
    fn a_failed_message_holds_the_commit_point_until_its_retry_resolves() {
        let mut t = tracked(0..5);
        // 2 failed: it stays unresolved while the others succeed.
        for o in [0, 1, 3, 4] {
            t.resolve(o);
        }
        assert_eq!(t.to_commit(), Some(2));
        t.committed(2);
        assert_eq!(t.to_commit(), None, "nothing new to commit");
        t.track(5).unwrap();
        t.resolve(5);
        assert_eq!(t.to_commit(), None, "still blocked by 2");
        // The retry of 2 succeeds.
        assert!(t.resolve(2));
        assert_eq!(t.to_commit(), Some(6));
    }

    #[test]
    fn resolving_twice_or_unknown_offsets_is_refused() {
        let mut t = tracked([3, 4]);
        assert!(!t.resolve(2), "never tracked");
        assert!(t.resolve(4));
        assert!(!t.resolve(4), "already resolved");
        assert!(t.resolve(3));
        assert!(!t.resolve(3), "popped with the prefix");
        assert_eq!(t.commit_point(), Some(5));
    }

    #[test]
    fn offsets_must_increase() {
        let mut t = tracked([3]);
        assert_eq!(t.track(3), Err(OutOfOrder { offset: 3, last: 3 }));
        assert_eq!(t.track(1), Err(OutOfOrder { offset: 1, last: 3 }));
        assert!(t.track(8).is_ok());
        assert_eq!(t.last_tracked(), Some(8));
    }

    #[test]
    fn committed_never_goes_backwards() {
        let mut t = tracked(0..2);
        t.resolve(0);
        t.resolve(1);
        t.committed(2);
        t.committed(1);
        assert_eq!(t.last_committed(), Some(2));
        assert_eq!(t.to_commit(), None);
    }

    proptest! {
        /// Whatever order outcomes arrive in, the commit point is always the offset after the
        /// longest resolved prefix, never beyond an unresolved offset.
        #[test]
        fn commit_point_is_the_resolved_prefix(
            gaps in proptest::collection::vec(1i64..4, 1..60),
            unresolved in proptest::collection::vec(any::<proptest::sample::Index>(), 0..3),
            seed in any::<u64>(),
        ) {
            let mut offsets = Vec::new();
            let mut o = 0;
            for g in gaps {
                o += g;
                offsets.push(o);
            }
            let mut t = tracked(offsets.iter().copied());
            let held: std::collections::HashSet<i64> =
                unresolved.iter().map(|i| offsets[i.index(offsets.len())]).collect();
            // A deterministic shuffle from the seed.
            let mut shuffled = offsets.clone();
            let mut s = seed | 1;
            for i in (1..shuffled.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                shuffled.swap(i, (s % (i as u64 + 1)) as usize);
            }
            for (n, off) in shuffled.iter().enumerate() {
                if held.contains(off) {
                    continue;
                }
                prop_assert!(t.resolve(*off));
                let done: std::collections::HashSet<i64> = shuffled[..=n]
                    .iter()
                    .copied()
                    .filter(|x| !held.contains(x))
                    .collect();
                let prefix_end = offsets.iter().take_while(|x| done.contains(x)).last();
                prop_assert_eq!(t.commit_point(), prefix_end.map(|x| x + 1));
            }
            match offsets.iter().find(|x| held.contains(x)) {
                Some(first_held) => {
                    prop_assert!(t.commit_point().is_none_or(|p| p <= *first_held));
                    prop_assert_eq!(t.oldest_unresolved(), Some(*first_held));
                }
                None => prop_assert_eq!(t.commit_point(), offsets.last().map(|x| x + 1)),
            }
        }
    }
}
