//! The push path of events read from a source: each carries an [`Origin`] (its partition's
//! [`Ownership`] and its offset). They are pushed under the partition's producer id with the
//! chunk's last offset as `X-Firehose-Producer-Seq`, so that a task skips a message it already
//! has when the message is read and pushed again (after a crash, a SIGKILL, a rebalance).
//!
//! # Why a skip never loses a message
//!
//! A task holds, per producer id, the highest sequence `L` it recorded, and skips a push whose
//! sequence is not above `L` (recording it before it parses the events). For one partition
//! and one task, call (I): *every record of the partition routed to the task with an offset
//! at most `L` is in the task* (or was missed by this replica while another replica of the
//! same partition took it: replicas are independent copies, as in Druid).
//!
//! 1. With (I), a skip loses nothing: a skipped chunk's last offset is at most `L`, so all its
//!    records are in the task already.
//! 2. An accepted push of a chunk with last offset `s` keeps (I) when every record routed to
//!    the task with an offset at most `s` is either in the chunk or already in the task.
//!    Records reach the pushes in offset order, and a record is never pushed after a later
//!    one of its partition was accepted by the same task:
//!    - the source driver hands a partition's records over in waves, one at a time, in
//!      offset order, and the records of a wave that failed go first in the next wave, before
//!      anything read after them (`crate::source`);
//!    - a wave reaches a beam as one batch (the Tranquilizer's `send_whole`; the clustered and
//!      partitioning beams split it by interval and Druid partition, one call per beam);
//!    - here its events are pushed in offset order, chunk after chunk, each to every replica,
//!      each chunk answered before the next goes;
//!    - when a chunk fails (no replica took it), nothing after it is pushed: the rest of the
//!      call fails too and comes back, after it, in the next wave. A chunk that one replica
//!      took is sent, so it never comes back: a replica that missed it keeps missing it.
//! 3. A chunk must not straddle `L` either: one whose first offset is at most `L` and last
//!    offset above it would be accepted and its records up to `L` ingested twice. This
//!    process knows `L` only after a push the task accepted from this ownership (it is then
//!    that push's sequence). Before that (a new ownership: after a start, a rebalance, a
//!    rewind) and after a push that failed or was skipped (its fate, or someone else's push,
//!    moved `L`), events go to the task one per push: each one is skipped (the task has it)
//!    or accepted (then `L` is known, and everything after it is new). The cost is one
//!    request per message the task already had, plus one.
//! 4. An ownership ends when its partition is revoked, rewound or the source aborts: it is
//!    fenced, and nothing more is pushed for it, so its next owner (starting at 3) does not
//!    race it. Only a push already on the wire at that moment can still land after the next
//!    owner's first pushes, and duplicate what they both sent.
//!
//! A record at or below an offset the task already accepted from this ownership would break 2;
//! the rules above make it impossible, and should it happen the chunk is pushed under a pooled
//! producer id (delivered at least once) with an error in the log.
//!
//! # Limits
//!
//! - The dedup map lives in the task's memory: a replica task restored after its own restart,
//!   or a task that ended (its interval closed and handed off), does not know these messages;
//!   a message read again then reaches it again (or is dropped, if its interval is closed).
//! - Druid records the sequence before parsing: a push that fails after that (HTTP 500 when an
//!   event cannot be parsed, or the firehose closed while the push waited for buffer space)
//!   and is retried is skipped, and its events are lost, as with any producer id.
//! - Druid 0.9.2 to 0.11 ignore the headers: nothing is skipped there.
//! - A task that tracks 10 000 producer ids (Druid's limit) refuses every push with one
//!   (403); the receiver client then pushes to it without an id, at least once (see
//!   [`crate::druid::receiver`]). Here ids are one per source partition feeding the task.

use std::sync::Arc;

use tracing::{debug, error, info};

use super::{DruidBeam, EventShape};
use crate::beam::{Outcome, SendError};
use crate::druid::receiver::{PushReply, ReceiverError};
use crate::event::Event;
use crate::source::{Delivery, Origin, Ownership};

/// One ownership's events of a batch, each with its index in the batch.
type Group = (Arc<Ownership>, Vec<(usize, Event)>);

impl DruidBeam {
    /// Sends a batch holding events with an origin: each ownership's events in offset order
    /// (see the module docs), events without one as [`DruidBeam::send_plain`] does.
    pub(super) async fn send_positioned(
        &self,
        shape: &EventShape,
        events: Vec<Event>,
    ) -> Vec<Outcome> {
        let total = events.len();
        let mut plain: (Vec<usize>, Vec<Event>) = (Vec::new(), Vec::new());
        let mut groups: Vec<Group> = Vec::new();
        for (i, event) in events.into_iter().enumerate() {
            let Some(ownership) = event.origin().map(|o| o.ownership().clone()) else {
                plain.0.push(i);
                plain.1.push(event);
                continue;
            };
            match groups.iter_mut().find(|(o, _)| Arc::ptr_eq(o, &ownership)) {
                Some((_, group)) => group.push((i, event)),
                None => groups.push((ownership, vec![(i, event)])),
            }
        }
        let mut outcomes: Vec<Option<Outcome>> = vec![None; total];
        if !plain.1.is_empty() {
            let answered = self.send_plain(shape, &plain.1).await;
            for (i, outcome) in plain.0.into_iter().zip(answered) {
                outcomes[i] = Some(outcome);
            }
        }
        for (ownership, mut group) in groups {
            group.sort_by_key(|(_, e)| offset(e));
            let (indexes, events): (Vec<usize>, Vec<Event>) = group.into_iter().unzip();
            let answered = self.send_in_order(shape, &ownership, &events).await;
            for (i, outcome) in indexes.into_iter().zip(answered) {
                outcomes[i] = Some(outcome);
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Outcome::failed(SendError::Other("no outcome".into()))))
            .collect()
    }

    /// Pushes one ownership's events, sorted by offset, chunk after chunk; stops at the first
    /// chunk that fails (the rest fails with it, to go again after it).
    async fn send_in_order(
        &self,
        shape: &EventShape,
        ownership: &Ownership,
        events: &[Event],
    ) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(events.len());
        let mut at = 0;
        while at < events.len() {
            if ownership.is_fenced() {
                let error = SendError::Push {
                    target: ownership.partition().to_string(),
                    message: "the partition is no longer read here; its next owner sends this"
                        .into(),
                };
                outcomes.resize(events.len(), Outcome::failed(error));
                break;
            }
            let deliveries: Vec<Delivery> = self
                .active()
                .iter()
                .map(|&i| ownership.delivery(&self.tasks[i].task_id))
                .collect();
            // One event per push until every task's position is known (module docs, 3).
            let known = deliveries.iter().all(|d| d.known.is_some());
            let size = if known {
                self.context.chunk_size.max(1)
            } else {
                1
            };
            let chunk = &events[at..events.len().min(at + size)];
            let (first, last) = (offset(&chunk[0]), offset(&chunk[chunk.len() - 1]));
            let late = deliveries
                .iter()
                .any(|d| d.highest_accepted.is_some_and(|h| first <= h));
            let outcome = match self.encode(shape, chunk) {
                Err(e) => Outcome::failed(e),
                Ok(body) if late => {
                    error!(
                        dataSource = %self.context.data_source,
                        partition = %ownership.partition(),
                        offset = first,
                        "events reached the push out of order; pushing them without \
                         deduplication (at least once)"
                    );
                    self.push_chunk(&body, None).await
                }
                Ok(body) => self.push_chunk(&body, Some((ownership, last))).await,
            };
            let failed = outcome.is_failed();
            outcomes.extend(std::iter::repeat_n(outcome, chunk.len()));
            at += chunk.len();
            if failed && at < events.len() {
                let error = SendError::Push {
                    target: ownership.partition().to_string(),
                    message: format!(
                        "held back behind offset {first}, whose push failed: it goes again first"
                    ),
                };
                outcomes.resize(events.len(), Outcome::failed(error));
                break;
            }
        }
        outcomes
    }
}

/// Notes what a task's answer to a positioned push says of its position (module docs, 3).
pub(super) fn note(
    ownership: &Ownership,
    task: &str,
    seq: i64,
    events: usize,
    result: &Result<PushReply, ReceiverError>,
) {
    let before = ownership.delivery(task);
    let after = match result {
        Ok(reply) if !reply.skipped => {
            if before.skipped > 0 {
                info!(
                    task,
                    partition = %ownership.partition(),
                    records = before.skipped,
                    "the task already had these records (read again after a restart or a \
                     rebalance): skipped, not ingested twice"
                );
            }
            Delivery {
                known: Some(seq),
                highest_accepted: Some(before.highest_accepted.map_or(seq, |h| h.max(seq))),
                skipped: 0,
            }
        }
        Ok(_) => {
            debug!(task, partition = %ownership.partition(), seq, "skipped: the task has it");
            Delivery {
                known: None,
                skipped: before.skipped + events as u64,
                ..before
            }
        }
        Err(_) => Delivery {
            known: None,
            ..before
        },
    };
    if after != before {
        ownership.set_delivery(task, after);
    }
}

fn offset(event: &Event) -> i64 {
    event.origin().map_or(i64::MIN, Origin::offset)
}

#[cfg(test)]
mod tests;
