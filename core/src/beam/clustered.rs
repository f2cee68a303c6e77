//! ClusteredBeam: one set of beams per segment interval, shared by every instance.
//!
//! ```text
//!                    ClusteredBeam (identity "druid:overlord/wiki")
//!                     │ group events by segment bucket; drop outside the window
//!      ┌──────────────┼───────────────────────────┐
//!   bucket 12:00   bucket 13:00                bucket 14:00 (warming)
//!      │              │ MergingPartitioningBeam (hash of time + dimensions)
//!      │        ┌─────┴─────┐
//!      │    partition 0  partition 1      each built by the BeamMaker from its descriptor
//!      │     (replicas)   (replicas)      (for Druid: one DruidBeam over the replica tasks)
//! ```
//!
//! Which beams serve which bucket is kept in shared [`BeamMetadata`] behind a
//! [`Coordinator`]: the first instance to need a bucket creates its partitions (through the
//! [`BeamMaker`], under the coordinator's lock) and every other instance rebuilds the same
//! beams from the stored descriptors. So any number of processes with the same configuration
//! push into exactly `partitions` beams per bucket.
//!
//! Window rule ([`WindowRule`]): an event whose bucket is `[S,E)` is accepted at `now` iff
//! `S <= now+W` and `E > now-W`; otherwise it is dropped with
//! [`DropReason::OutsideWindow`]. A bucket at or before the shared `latestCloseTime` is closed
//! for good ([`DropReason::IntervalClosed`]). Buckets expire (their beams are closed and their
//! metadata removed) once `end + W < now`.
//!
//! Unlike the original, a failure to create a bucket's beams or to push is a `Failed` outcome
//! with its error, never a silent drop; warming runs in the background and never delays or
//! fails the batch that triggered it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::join_all;
use parking_lot::Mutex;
use tracing::{info, warn};

use super::{Beam, CloseError, DropReason, MergingPartitioningBeam, Outcome, SendError};
use crate::coord::{BeamDescriptor, BeamMetadata, Coordinator};
use crate::event::Event;
use crate::time::window::WindowRule;
use crate::time::{Clock, Interval};

/// Makes the beams of one bucket and partition, and describes them so any instance can
/// rebuild them (the original's `BeamMaker`). This is the seam between the interval machinery
/// and how events reach Druid.
#[async_trait]
pub trait BeamMaker: Send + Sync + fmt::Debug {
    /// Creates what serves `interval` for `partition` (for realtime tasks: submits every
    /// replica's task) and describes it for the shared metadata.
    async fn create(&self, interval: Interval, partition: u32)
        -> Result<BeamDescriptor, SendError>;

    /// Builds a beam from a descriptor written by any instance.
    fn open(&self, descriptor: &BeamDescriptor) -> Result<Arc<dyn Beam>, SendError>;
}

/// Picks a partition for an event; taken modulo the partition count.
pub type Partitioner = Arc<dyn Fn(&Event) -> usize + Send + Sync>;

/// What a ClusteredBeam needs besides its maker and coordinator.
#[derive(Clone)]
pub struct ClusteredBeamConfig {
    /// Shared-metadata identity, `<indexServiceKey>/<dataSource>` (e.g. `druid:overlord/wiki`).
    pub identity: String,
    /// Segment granularity, windowPeriod and warmingPeriod.
    pub rule: WindowRule,
    /// Beams (partitions) per bucket; `task.partitions`, default 1.
    pub partitions: u32,
    /// Chooses the partition of an event.
    pub partitioner: Partitioner,
    /// The time source.
    pub clock: Arc<dyn Clock>,
}

impl fmt::Debug for ClusteredBeamConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusteredBeamConfig")
            .field("identity", &self.identity)
            .field("rule", &self.rule)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

/// One set of beams per segment bucket, created on demand and shared through a coordinator.
#[derive(Debug, Clone)]
pub struct ClusteredBeam {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ClusteredBeamConfig,
    maker: Arc<dyn BeamMaker>,
    coordinator: Arc<dyn Coordinator>,
    state: Mutex<State>,
    /// One creation at a time per bucket within this process.
    creating: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Debug, Default)]
struct State {
    /// Bucket start -> the bucket's merged beam.
    beams: BTreeMap<i64, Arc<dyn Beam>>,
    /// Buckets at or before this are closed for good.
    latest_close: i64,
    /// Warming already requested for these bucket starts.
    warming: HashSet<i64>,
    closed: bool,
}

impl ClusteredBeam {
    /// A clustered beam; beams are created lazily, on the first event of each bucket.
    pub fn new(
        config: ClusteredBeamConfig,
        maker: Arc<dyn BeamMaker>,
        coordinator: Arc<dyn Coordinator>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                maker,
                coordinator,
                state: Mutex::new(State {
                    latest_close: i64::MIN,
                    ..State::default()
                }),
                creating: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Bucket starts this instance currently holds beams for.
    pub fn open_buckets(&self) -> Vec<i64> {
        self.inner.state.lock().beams.keys().copied().collect()
    }
}

#[async_trait]
impl Beam for ClusteredBeam {
    async fn send_batch(&self, events: Vec<Event>) -> Vec<Outcome> {
        let inner = &self.inner;
        let now = inner.config.clock.now_millis();
        let total = events.len();
        inner.expire(now).await;

        let rule = &inner.config.rule;
        let mut outcomes: Vec<Option<Outcome>> = vec![None; total];
        let mut groups: BTreeMap<i64, (Vec<usize>, Vec<Event>)> = BTreeMap::new();
        let mut latest = i64::MIN;
        // The window is whole buckets, and events of a batch mostly share one bucket: both
        // are worked out once rather than per event.
        let window = rule.accept_window(now);
        let mut bucket = Interval { start: 0, end: 0 };
        for (i, event) in events.into_iter().enumerate() {
            let ts = event.timestamp_millis();
            if !window.contains(ts) {
                outcomes[i] = Some(Outcome::Dropped(DropReason::OutsideWindow));
                continue;
            }
            latest = latest.max(ts);
            if !bucket.contains(ts) {
                bucket = rule.segment_granularity.bucket(ts);
            }
            let group = groups.entry(bucket.start).or_default();
            group.0.push(i);
            group.1.push(event);
        }
        if latest > i64::MIN {
            warm(&self.inner, latest, now);
        }

        let sends = groups
            .into_iter()
            .map(|(start, (indexes, group))| async move {
                let result = match inner.beam_for(start, now).await {
                    Ok(Some(beam)) => {
                        let n = group.len();
                        let answered = beam.send_batch(group).await;
                        let answered = super::exact_outcomes(answered, n, &beam);
                        if answered
                            .iter()
                            .any(|o| matches!(o, Outcome::Dropped(DropReason::BeamDefunct)))
                        {
                            inner.defunct(start).await;
                        }
                        answered
                    }
                    Ok(None) => vec![Outcome::Dropped(DropReason::IntervalClosed); group.len()],
                    Err(error) => {
                        let error = Arc::new(error);
                        vec![Outcome::Failed(error); group.len()]
                    }
                };
                (indexes, result)
            });
        for (indexes, result) in join_all(sends).await {
            for (i, outcome) in indexes.into_iter().zip(result) {
                outcomes[i] = Some(outcome);
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Dropped(DropReason::BeamClosed)))
            .collect()
    }

    async fn close(&self) -> Result<(), CloseError> {
        let beams: Vec<_> = {
            let mut state = self.inner.state.lock();
            state.closed = true;
            std::mem::take(&mut state.beams).into_values().collect()
        };
        let mut errors = Vec::new();
        for result in join_all(beams.iter().map(|b| b.close())).await {
            if let Err(e) = result {
                errors.push(e.to_string());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(CloseError(errors.join("; ")))
        }
    }
}

impl Inner {
    /// The merged beam of a bucket: cached, or rebuilt from or created in the shared metadata.
    /// `None` when the bucket is closed.
    async fn beam_for(&self, start: i64, now: i64) -> Result<Option<Arc<dyn Beam>>, SendError> {
        if let Some(found) = self.cached(start)? {
            return Ok(found);
        }
        let gate = self.creating.lock().entry(start).or_default().clone();
        let _held = gate.lock().await;
        if let Some(found) = self.cached(start)? {
            return Ok(found);
        }
        let meta = self.ensure_in_metadata(vec![start], now).await?;
        self.follow(&meta)?;
        Ok(self.cached(start)?.flatten())
    }

    /// `Some(Some(beam))` if cached, `Some(None)` if the bucket is closed, `None` if unknown.
    fn cached(&self, start: i64) -> Result<Option<Option<Arc<dyn Beam>>>, SendError> {
        let state = self.state.lock();
        if state.closed {
            return Ok(Some(None));
        }
        if let Some(beam) = state.beams.get(&start) {
            return Ok(Some(Some(beam.clone())));
        }
        if start <= state.latest_close {
            return Ok(Some(None));
        }
        Ok(None)
    }

    /// Under the coordinator's lock: expires old buckets, then creates whatever partitions of
    /// `starts` are missing (unless closed). Returns the metadata as stored.
    async fn ensure_in_metadata(
        &self,
        starts: Vec<i64>,
        now: i64,
    ) -> Result<BeamMetadata, SendError> {
        let rule = self.config.rule;
        let partitions = self.config.partitions;
        let maker = self.maker.clone();
        let identity = self.config.identity.clone();
        let result = crate::coord::update_with(
            self.coordinator.as_ref(),
            &self.config.identity,
            move |mut meta: BeamMetadata| async move {
                let mut changed = expire_metadata(&mut meta, &rule, now);
                for start in starts {
                    if close_millis(&meta) >= start {
                        info!(
                            identity = %identity,
                            bucket = %crate::time::format_iso_millis(start),
                            "latestCloseTime has moved past this bucket; not creating beams"
                        );
                        continue;
                    }
                    let interval = rule.segment_granularity.bucket(start);
                    let key = start;
                    let have: HashSet<u32> = meta
                        .beams
                        .get(&key)
                        .map(|ds| ds.iter().map(|d| d.partition).collect())
                        .unwrap_or_default();
                    for partition in (0..partitions).filter(|p| !have.contains(p)) {
                        let descriptor = maker.create(interval, partition).await?;
                        meta.beams.entry(key).or_default().push(descriptor);
                        changed = true;
                    }
                }
                Ok(changed.then_some(meta))
            },
        )
        .await;
        result.map_err(|e| match e {
            crate::coord::CoordError::Modify { source, .. } => match source.downcast::<SendError>()
            {
                Ok(send) => *send,
                Err(other) => SendError::Coordination(other.to_string()),
            },
            other => SendError::Coordination(other.to_string()),
        })
    }

    /// Makes the local cache follow the shared metadata.
    fn follow(&self, meta: &BeamMetadata) -> Result<(), SendError> {
        let latest_close = close_millis(meta);
        let mut opened = Vec::new();
        for (key, descriptors) in &meta.beams {
            let start = *key;
            if start <= latest_close || self.state.lock().beams.contains_key(&start) {
                continue;
            }
            let mut by_partition: Vec<&BeamDescriptor> = descriptors.iter().collect();
            by_partition.sort_by_key(|d| d.partition);
            by_partition.dedup_by_key(|d| d.partition);
            let parts = by_partition
                .iter()
                .map(|d| self.maker.open(d))
                .collect::<Result<Vec<_>, _>>()?;
            let partitioner = self.config.partitioner.clone();
            let merged: Arc<dyn Beam> = if parts.len() == 1 {
                parts
                    .into_iter()
                    .next()
                    .ok_or_else(|| SendError::Other("no beam in a bucket's descriptors".into()))?
            } else {
                Arc::new(MergingPartitioningBeam::new(parts, move |e: &Event| {
                    partitioner(e)
                }))
            };
            opened.push((start, merged));
        }
        let gone: Vec<Arc<dyn Beam>> = {
            let mut state = self.state.lock();
            state.latest_close = state.latest_close.max(latest_close);
            for (start, beam) in opened {
                state.beams.entry(start).or_insert(beam);
            }
            let stale: Vec<i64> = state
                .beams
                .keys()
                .copied()
                .filter(|s| *s <= state.latest_close)
                .collect();
            stale
                .into_iter()
                .filter_map(|s| state.beams.remove(&s))
                .collect()
        };
        close_in_background(gone);
        Ok(())
    }

    /// Closes local beams whose bucket expired and raises the local close time.
    async fn expire(&self, now: i64) {
        let rule = self.config.rule;
        let gone: Vec<Arc<dyn Beam>> = {
            let mut state = self.state.lock();
            let expired: Vec<i64> = state
                .beams
                .keys()
                .copied()
                .filter(|s| rule.is_expired(rule.segment_granularity.next_bucket_start(*s), now))
                .collect();
            for s in &expired {
                state.latest_close = state.latest_close.max(*s);
                state.warming.remove(s);
            }
            expired
                .into_iter()
                .filter_map(|s| state.beams.remove(&s))
                .collect()
        };
        close_in_background(gone);
    }

    /// Every task of a bucket is gone: forget it here and in the shared metadata, for good.
    async fn defunct(&self, start: i64) {
        warn!(
            identity = %self.config.identity,
            bucket = %crate::time::format_iso_millis(start),
            "beam defunct: every task of this bucket is gone; later events for it are dropped"
        );
        let beam = {
            let mut state = self.state.lock();
            state.latest_close = state.latest_close.max(start);
            state.beams.remove(&start)
        };
        close_in_background(beam.into_iter().collect());
        let result = crate::coord::update_with(
            self.coordinator.as_ref(),
            &self.config.identity,
            move |mut meta: BeamMetadata| async move {
                let key = start;
                meta.beams.remove(&key);
                raise_close_time(&mut meta, key);
                Ok(Some(meta))
            },
        )
        .await;
        if let Err(e) = result {
            warn!(identity = %self.config.identity, error = %e, "could not record a defunct bucket");
        }
    }
}

/// Requests beams for the buckets after `latest` within warmingPeriod, in the background.
fn warm(inner: &Arc<Inner>, latest: i64, now: i64) {
    let starts: Vec<i64> = {
        let mut state = inner.state.lock();
        inner
            .config
            .rule
            .warming_bucket_starts(latest)
            .into_iter()
            .filter(|s| !state.beams.contains_key(s) && state.warming.insert(*s))
            .collect()
    };
    if starts.is_empty() {
        return;
    }
    let inner = inner.clone();
    tokio::spawn(async move {
        for start in starts {
            if let Err(e) = inner.beam_for(start, now).await {
                warn!(
                    identity = %inner.config.identity,
                    bucket = %crate::time::format_iso_millis(start),
                    error = %e,
                    "warming failed"
                );
                inner.state.lock().warming.remove(&start);
            }
        }
    });
}

/// Removes expired buckets (`end + W < now`) and raises `latestCloseTime` past them.
fn expire_metadata(meta: &mut BeamMetadata, rule: &WindowRule, now: i64) -> bool {
    let expired: Vec<i64> = meta
        .beams
        .keys()
        .copied()
        .filter(|start| rule.is_expired(rule.segment_granularity.next_bucket_start(*start), now))
        .collect();
    for key in &expired {
        meta.beams.remove(key);
        raise_close_time(meta, *key);
    }
    !expired.is_empty()
}

fn close_in_background(beams: Vec<Arc<dyn Beam>>) {
    if beams.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for beam in beams {
            if let Err(e) = beam.close().await {
                warn!(error = %e, "closing an expired beam failed");
            }
        }
    });
}

fn close_millis(meta: &BeamMetadata) -> i64 {
    meta.latest_close_time_or_epoch()
}

fn raise_close_time(meta: &mut BeamMetadata, to: i64) {
    if meta.latest_close_time.is_none_or(|t| t < to) {
        meta.latest_close_time = Some(to);
    }
}

#[cfg(test)]
#[path = "clustered_tests.rs"]
mod tests;
