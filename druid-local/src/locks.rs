//! Segment identities for appends, as Druid's `SegmentAllocateAction` hands them out: in a
//! chunk that already has segments, the chunk's version and the next partition number; in an
//! empty chunk, the lock's version (now for EXCLUSIVE and SHARED locks, the epoch for APPEND
//! locks so that a later REPLACE overshadows them).

use crate::time::Interval;
use crate::Shared;

/// The version of segments appended under an APPEND lock into an empty chunk.
pub const APPEND_LOCK_VERSION: &str = "1970-01-01T00:00:00.000Z";

/// A (version, partition) for a new segment of `data_source` in chunk `interval`.
pub fn allocate(
    shared: &Shared,
    data_source: &str,
    interval: Interval,
    append_lock: bool,
) -> (String, u32) {
    let version = match shared.store.chunk_version(data_source, interval) {
        Some(v) => v,
        None if append_lock => APPEND_LOCK_VERSION.to_owned(),
        None => shared.store.version_for(data_source, interval),
    };
    let partition = shared
        .store
        .allocate_partition(data_source, interval, &version);
    (version, partition)
}
