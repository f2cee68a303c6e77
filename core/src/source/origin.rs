//! Where an event was read, carried with it down to the push, so that a task can recognise a
//! message it already has when the message is read again (after a crash, a rebalance or a
//! restart).
//!
//! Druid's event receiver keeps, per producer id, the highest `X-Firehose-Producer-Seq` it saw
//! and skips a push whose sequence is not above it. Events read from a source carry an
//! [`Origin`]: the [`Ownership`] of their partition (which names the producer id) and their
//! offset (which gives the sequence). The realtime beam pushes such events under the
//! partition's producer id with the chunk's last offset as the sequence, so a message pushed
//! again is pushed with the same id and a sequence the task has already seen.
//!
//! The producer id names the partition only (`tranquility:<namespace>:<topic>:<partition>`):
//! each task keeps its own map, so the task needs no place in the id, and every owner of the
//! partition, in any process and after any restart, pushes under the same id.

use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::PartitionId;

/// Where one event was read: its partition's ownership and its offset.
#[derive(Clone, PartialEq, Eq)]
pub struct Origin {
    ownership: Arc<Ownership>,
    offset: i64,
}

impl Origin {
    /// The event at `offset`, read under `ownership`.
    pub fn new(ownership: Arc<Ownership>, offset: i64) -> Self {
        Self { ownership, offset }
    }

    /// The partition's ownership.
    pub fn ownership(&self) -> &Arc<Ownership> {
        &self.ownership
    }

    /// The event's offset.
    pub fn offset(&self) -> i64 {
        self.offset
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.ownership.partition, self.offset)
    }
}

/// One owner's hold on a partition: from its assignment (or its first record) until it is
/// revoked, rewound or the owner stops. It names the producer id, is fenced when the hold
/// ends (nothing more is pushed for it, so a next owner never races it), and remembers, per
/// task, what the task recorded from it.
pub struct Ownership {
    partition: PartitionId,
    producer_id: String,
    fenced: AtomicBool,
    deliveries: Mutex<HashMap<String, Delivery>>,
}

/// What one task recorded from one [`Ownership`], as far as this process knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// The sequence the task holds for the producer id, when known: set by a push it
    /// accepted, unknown (`None`) before the first push, and after one that failed or was
    /// skipped (someone else's push may have moved it).
    pub known: Option<i64>,
    /// The highest sequence the task accepted from this ownership.
    pub highest_accepted: Option<i64>,
    /// Events the task skipped (it had them) since it last accepted a push.
    pub skipped: u64,
}

impl Ownership {
    /// A new hold on `partition` of a source named `namespace` (for example the Kafka
    /// cluster), so that two clusters' topics of the same name get different producer ids.
    pub fn new(namespace: &str, partition: PartitionId) -> Arc<Self> {
        let mut producer_id = String::from("tranquility:");
        if !namespace.is_empty() {
            escape_into(&mut producer_id, namespace);
            producer_id.push(':');
        }
        escape_into(&mut producer_id, &partition.topic);
        let _ = write!(producer_id, ":{}", partition.partition);
        Arc::new(Self {
            partition,
            producer_id,
            fenced: AtomicBool::new(false),
            deliveries: Mutex::new(HashMap::new()),
        })
    }

    /// The partition.
    pub fn partition(&self) -> &PartitionId {
        &self.partition
    }

    /// The `X-Firehose-Producer-Id` of the partition's events.
    pub fn producer_id(&self) -> &str {
        &self.producer_id
    }

    /// Ends the hold: nothing more is pushed for it.
    pub fn fence(&self) {
        self.fenced.store(true, Ordering::Release);
    }

    /// Whether the hold has ended.
    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }

    /// What `task` recorded from this ownership.
    pub fn delivery(&self, task: &str) -> Delivery {
        self.deliveries
            .lock()
            .get(task)
            .copied()
            .unwrap_or_default()
    }

    /// Notes what `task` recorded from this ownership.
    pub fn set_delivery(&self, task: &str, delivery: Delivery) {
        let mut deliveries = self.deliveries.lock();
        match deliveries.get_mut(task) {
            Some(d) => *d = delivery,
            None => {
                deliveries.insert(task.to_owned(), delivery);
            }
        }
    }
}

impl PartialEq for Ownership {
    /// The same hold (not just the same partition).
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Ownership {}

impl fmt::Debug for Ownership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ownership")
            .field("producer_id", &self.producer_id)
            .field("fenced", &self.is_fenced())
            .finish_non_exhaustive()
    }
}

/// Appends `text`, with `%`, `:` and anything outside visible ASCII escaped as `%XX`, so the id
/// is a valid header value and its parts cannot run into each other.
fn escape_into(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_graphic() && b != b'%' && b != b':' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_ids_name_the_namespace_topic_and_partition() {
        let a = Ownership::new("kafka:abc", PartitionId::new("wiki", 3));
        assert_eq!(a.producer_id(), "tranquility:kafka%3Aabc:wiki:3");
        let plain = Ownership::new("", PartitionId::new("wi ki%", 0));
        assert_eq!(plain.producer_id(), "tranquility:wi%20ki%25:0");
        // Every hold of a partition pushes under the same id, but is its own hold.
        let again = Ownership::new("kafka:abc", PartitionId::new("wiki", 3));
        assert_eq!(again.producer_id(), a.producer_id());
        assert_ne!(*again, *a);
    }

    #[test]
    fn deliveries_are_per_task_and_fencing_sticks() {
        let o = Ownership::new("", PartitionId::new("t", 0));
        assert_eq!(o.delivery("task-a"), Delivery::default());
        let d = Delivery {
            known: Some(7),
            highest_accepted: Some(7),
            skipped: 0,
        };
        o.set_delivery("task-a", d);
        assert_eq!(o.delivery("task-a"), d);
        assert_eq!(o.delivery("task-b"), Delivery::default());
        assert!(!o.is_fenced());
        o.fence();
        assert!(o.is_fenced());
        let origin = Origin::new(o.clone(), 5);
        assert_eq!(format!("{origin:?}"), "t[0]@5");
    }
}
