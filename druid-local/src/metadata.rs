//! druid-local's metadata store: what Druid keeps in its SQL metadata database for Kafka
//! supervisors and native batch, as an append-only log of records in `<data-dir>/metadata/`.
//!
//! A record is one JSON file written to a temporary name, synced and renamed, so each is
//! committed whole or not at all. A publish record holds a task's segments *and* the stream
//! offsets they end at: a restart replays the log and resumes reading exactly where the last
//! committed publish ended, which is how Druid's Kafka ingestion is exactly-once (segments and
//! offsets in one metadata transaction). Without a data dir the log lives in memory only.

use crate::storage::{Segment, SegmentKey};
use crate::task::rollup::{Index, IndexSnapshot};
use crate::time::{self, Interval, Millis};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Stream offsets of one dataSource (Druid's `KafkaDataSourceMetadata`): the next offset to
/// read, per partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamOffsets {
    /// The topic.
    pub stream: String,
    /// Partition -> next offset to read.
    #[serde(with = "partition_map")]
    pub partitions: BTreeMap<i32, i64>,
}

/// Partition maps keyed by strings on disk (JSON keys), read back through the log's tagged
/// records, which cannot turn string keys into numbers by themselves.
mod partition_map {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(m: &BTreeMap<i32, i64>, s: S) -> Result<S::Ok, S::Error> {
        m.iter()
            .map(|(p, o)| (p.to_string(), *o))
            .collect::<BTreeMap<String, i64>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<i32, i64>, D::Error> {
        BTreeMap::<String, i64>::deserialize(d)?
            .into_iter()
            .map(|(p, o)| {
                p.parse()
                    .map(|p| (p, o))
                    .map_err(|_| serde::de::Error::custom(format!("bad partition [{p}]")))
            })
            .collect()
    }
}

/// One stored version of a supervisor spec (`GET /supervisor/{id}/history`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpecVersion {
    /// The spec as Druid re-serializes it; a terminated supervisor's tombstone is a `noop` spec.
    pub spec: Value,
    /// When it was stored (ISO).
    pub version: String,
}

/// A segment as the log keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct StoredSegment {
    data_source: String,
    start: Millis,
    end: Millis,
    version: String,
    partition: u32,
    index: IndexSnapshot,
}

/// A segment key with its dataSource, as a publish names what it drops.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DroppedSegment {
    data_source: String,
    start: Millis,
    end: Millis,
    version: String,
    partition: u32,
}

/// What a publish does to stored offsets: checked against `start`, then set to `end`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OffsetCommit {
    /// Key the offsets are stored under (the dataSource, or the supervisor id from 34).
    pub key: String,
    /// Offsets the publishing task started from (must match what is stored, if anything is).
    pub start: StreamOffsets,
    /// Offsets after the task's last record.
    pub end: StreamOffsets,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum Record {
    Spec {
        id: String,
        #[serde(flatten)]
        version: SpecVersion,
    },
    Publish {
        segments: Vec<StoredSegment>,
        dropped: Vec<DroppedSegment>,
        offsets: Option<OffsetCommit>,
        time: Millis,
    },
    Offsets {
        key: String,
        offsets: Option<StreamOffsets>,
    },
}

/// Why a publish was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The stored offsets moved since the task started (a reset, or another publish).
    #[error("Inconsistent metadata state. This can happen if you update input topic in a spec without changing the supervisor name. Stored metadata state: [{stored:?}], Target state: [{start:?}].")]
    Inconsistent {
        /// What is stored.
        stored: Option<StreamOffsets>,
        /// What the task started from.
        start: StreamOffsets,
    },
    /// The record could not be written.
    #[error("cannot write the metadata record: {0}")]
    Io(#[from] std::io::Error),
}

/// A used segment as the Coordinator's metadata API lists it.
#[derive(Debug, Clone)]
pub struct UsedSegment {
    /// The segment.
    pub segment: Arc<Segment>,
    /// Bytes of its stored form (Druid lists the segment's size).
    pub size: u64,
    /// When it becomes queryable (publish time plus the load delay).
    pub loaded_at: Millis,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    specs: BTreeMap<String, Vec<SpecVersion>>,
    offsets: HashMap<String, StreamOffsets>,
}

/// The metadata store.
#[derive(Debug)]
pub struct Metadata {
    dir: Option<PathBuf>,
    inner: Mutex<Inner>,
    /// Published segments not served yet (the load delay), by dataSource.
    loading: RwLock<HashMap<String, Vec<UsedSegment>>>,
    write: Mutex<()>,
}

/// One replayed publish: segments added and (dataSource, key) of segments dropped.
pub type Published = (Vec<Arc<Segment>>, Vec<(String, SegmentKey)>);

/// What replaying the log found: segments to serve and segments to drop, in log order.
#[derive(Debug, Default)]
pub struct Replay {
    /// Publishes in order.
    pub publishes: Vec<Published>,
}

impl Metadata {
    /// Opens the log under `data_dir/metadata` (memory only when `None`) and replays it.
    pub fn open(data_dir: Option<&Path>) -> std::io::Result<(Metadata, Replay)> {
        let dir = data_dir.map(|d| d.join("metadata"));
        let mut inner = Inner::default();
        let mut replay = Replay::default();
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir)?;
            let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
                .filter_map(|p| {
                    let seq = p.file_stem()?.to_str()?.parse().ok()?;
                    Some((seq, p))
                })
                .collect();
            files.sort();
            for (seq, path) in files {
                let bytes = std::fs::read(&path)?;
                let record: Record = serde_json::from_slice(&bytes).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("metadata record {}: {e}", path.display()),
                    )
                })?;
                inner.next = seq + 1;
                match record {
                    Record::Spec { id, version } => {
                        inner.specs.entry(id).or_default().push(version)
                    }
                    Record::Offsets { key, offsets } => match offsets {
                        Some(o) => {
                            inner.offsets.insert(key, o);
                        }
                        None => {
                            inner.offsets.remove(&key);
                        }
                    },
                    Record::Publish {
                        segments,
                        dropped,
                        offsets,
                        ..
                    } => {
                        let mut segs = Vec::new();
                        for s in segments {
                            segs.push(Arc::new(Segment {
                                data_source: s.data_source,
                                interval: Interval {
                                    start: s.start,
                                    end: s.end,
                                },
                                version: s.version,
                                partition: s.partition,
                                index: RwLock::new(Index::from_snapshot(s.index).map_err(|e| {
                                    std::io::Error::new(
                                        std::io::ErrorKind::InvalidData,
                                        format!("metadata record {}: {e}", path.display()),
                                    )
                                })?),
                            }));
                        }
                        let drops = dropped.into_iter().map(DroppedSegment::key).collect();
                        if let Some(c) = offsets {
                            merge_offsets(&mut inner.offsets, c);
                        }
                        replay.publishes.push((segs, drops));
                    }
                }
            }
        }
        Ok((
            Metadata {
                dir,
                inner: Mutex::new(inner),
                loading: RwLock::default(),
                write: Mutex::new(()),
            },
            replay,
        ))
    }

    /// Appends a record (synced, then renamed into place); the caller holds `self.write`.
    fn append(&self, record: &Record) -> std::io::Result<()> {
        let seq = {
            let mut i = self.inner.lock();
            let s = i.next;
            i.next += 1;
            s
        };
        if let Some(dir) = &self.dir {
            let bytes = serde_json::to_vec(record).map_err(std::io::Error::other)?;
            let path = dir.join(format!("{seq:012}.json"));
            let tmp = dir.join(format!("{seq:012}.json.tmp"));
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
        }
        Ok(())
    }

    /// Stores a new version of a supervisor's spec (a tombstone on terminate).
    pub fn store_spec(&self, id: &str, spec: Value) -> std::io::Result<SpecVersion> {
        let version = SpecVersion {
            spec,
            version: time::iso(time::now_millis()),
        };
        let _w = self.write.lock();
        self.append(&Record::Spec {
            id: id.to_owned(),
            version: version.clone(),
        })?;
        self.inner
            .lock()
            .specs
            .entry(id.to_owned())
            .or_default()
            .push(version.clone());
        Ok(version)
    }

    /// Every supervisor's spec history, newest first.
    pub fn histories(&self) -> BTreeMap<String, Vec<SpecVersion>> {
        self.inner
            .lock()
            .specs
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().rev().cloned().collect()))
            .collect()
    }

    /// The stored offsets under `key`.
    pub fn offsets(&self, key: &str) -> Option<StreamOffsets> {
        self.inner.lock().offsets.get(key).cloned()
    }

    /// Replaces (or with `None` deletes) the offsets under `key`: reset and resetOffsets.
    pub fn set_offsets(&self, key: &str, offsets: Option<StreamOffsets>) -> std::io::Result<()> {
        let _w = self.write.lock();
        self.append(&Record::Offsets {
            key: key.to_owned(),
            offsets: offsets.clone(),
        })?;
        let mut i = self.inner.lock();
        match offsets {
            Some(o) => {
                i.offsets.insert(key.to_owned(), o);
            }
            None => {
                i.offsets.remove(key);
            }
        }
        Ok(())
    }

    /// Commits segments (and the offsets they end at) in one record. With offsets, the stored
    /// ones must equal the task's start offsets for its partitions (or be absent), as Druid's
    /// `SegmentTransactionalInsertAction` checks.
    pub fn publish(
        &self,
        segments: &[Arc<Segment>],
        dropped: &[(String, SegmentKey)],
        offsets: Option<OffsetCommit>,
    ) -> Result<(), PublishError> {
        let _w = self.write.lock();
        if let Some(c) = &offsets {
            let stored = self.inner.lock().offsets.get(&c.key).cloned();
            if let Some(s) = &stored {
                let consistent = s.stream == c.start.stream
                    && c.start
                        .partitions
                        .iter()
                        .all(|(p, o)| s.partitions.get(p).is_none_or(|x| x == o));
                if !consistent {
                    return Err(PublishError::Inconsistent {
                        stored,
                        start: c.start.clone(),
                    });
                }
            }
        }
        let record = Record::Publish {
            segments: segments
                .iter()
                .map(|s| StoredSegment {
                    data_source: s.data_source.clone(),
                    start: s.interval.start,
                    end: s.interval.end,
                    version: s.version.clone(),
                    partition: s.partition,
                    index: s.index.read().snapshot(),
                })
                .collect(),
            dropped: dropped
                .iter()
                .map(|(ds, (iv, v, p))| DroppedSegment {
                    data_source: ds.clone(),
                    start: iv.start,
                    end: iv.end,
                    version: v.clone(),
                    partition: *p,
                })
                .collect(),
            offsets: offsets.clone(),
            time: time::now_millis(),
        };
        self.append(&record)?;
        if let Some(c) = offsets {
            merge_offsets(&mut self.inner.lock().offsets, c);
        }
        Ok(())
    }

    /// Remembers segments that are published but not loaded yet (the load delay).
    pub fn add_loading(&self, segs: &[Arc<Segment>], loaded_at: Millis) {
        let mut l = self.loading.write();
        for s in segs {
            let size = serde_json::to_vec(&s.index.read().snapshot()).map_or(0, |b| b.len() as u64);
            l.entry(s.data_source.clone())
                .or_default()
                .push(UsedSegment {
                    segment: s.clone(),
                    size,
                    loaded_at,
                });
        }
    }

    /// Forgets segments once they are served (or dropped).
    pub fn remove_loading(&self, segs: &[Arc<Segment>]) {
        let mut l = self.loading.write();
        for s in segs {
            if let Some(v) = l.get_mut(&s.data_source) {
                v.retain(|u| !Arc::ptr_eq(&u.segment, s));
            }
        }
        l.retain(|_, v| !v.is_empty());
    }

    /// Published segments of `data_source` still loading.
    pub fn loading(&self, data_source: &str) -> Vec<UsedSegment> {
        self.loading
            .read()
            .get(data_source)
            .cloned()
            .unwrap_or_default()
    }
}

/// A publish moves the offsets of its partitions only (groups publish separately); a new
/// stream replaces what was stored for another one.
fn merge_offsets(all: &mut HashMap<String, StreamOffsets>, c: OffsetCommit) {
    let entry = all.entry(c.key).or_insert_with(|| StreamOffsets {
        stream: c.end.stream.clone(),
        partitions: BTreeMap::new(),
    });
    if entry.stream != c.end.stream {
        entry.stream = c.end.stream;
        entry.partitions.clear();
    }
    entry.partitions.extend(c.end.partitions);
}

impl DroppedSegment {
    fn key(self) -> (String, SegmentKey) {
        (
            self.data_source,
            (
                Interval {
                    start: self.start,
                    end: self.end,
                },
                self.version,
                self.partition,
            ),
        )
    }
}

/// Druid's segment metadata JSON (`/druid/coordinator/v1/metadata/datasources/{ds}/segments?full`).
pub fn segment_json(seg: &Segment, data_dir: Option<&Path>) -> Value {
    let idx = seg.index.read();
    let dims = idx.dims.join(",");
    let metrics: Vec<String> = idx.metrics.iter().map(|m| m.name.clone()).collect();
    let size = serde_json::to_vec(&idx.snapshot()).map_or(0, |b| b.len());
    drop(idx);
    let path = data_dir
        .map(|d| d.join("metadata").display().to_string())
        .unwrap_or_else(|| "memory".into());
    json!({
        "dataSource": seg.data_source,
        "interval": seg.interval.to_string(),
        "version": seg.version,
        "loadSpec": {"type": "local", "path": path},
        "dimensions": dims,
        "metrics": metrics.join(","),
        "shardSpec": {"type": "numbered", "partitionNum": seg.partition, "partitions": 0},
        "binaryVersion": 9,
        "size": size,
        "identifier": seg.id(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{AggKind, MetricSpec};
    use crate::task::rollup::RowDims;

    fn segment(ds: &str, partition: u32) -> Arc<Segment> {
        let metrics = vec![MetricSpec {
            kind: AggKind::Count,
            name: "count".into(),
            field: None,
        }];
        let mut idx = Index::new(&[], &metrics, true);
        idx.add(0, 0, RowDims::Named(Vec::new()), &[]);
        Arc::new(Segment {
            data_source: ds.into(),
            interval: Interval {
                start: 0,
                end: 3_600_000,
            },
            version: "v1".into(),
            partition,
            index: RwLock::new(idx),
        })
    }

    fn offsets(p: &[(i32, i64)]) -> StreamOffsets {
        StreamOffsets {
            stream: "t".into(),
            partitions: p.iter().copied().collect(),
        }
    }

    #[test]
    fn publishes_and_offsets_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (m, _) = Metadata::open(Some(dir.path())).unwrap();
        m.store_spec("wiki", json!({"type": "kafka"})).unwrap();
        let commit = |start, end| OffsetCommit {
            key: "wiki".into(),
            start: offsets(start),
            end: offsets(end),
        };
        m.publish(
            &[segment("wiki", 0)],
            &[],
            Some(commit(&[(0, 0)], &[(0, 5)])),
        )
        .unwrap();
        // A task that started from stale offsets cannot publish.
        assert!(matches!(
            m.publish(
                &[segment("wiki", 1)],
                &[],
                Some(commit(&[(0, 0)], &[(0, 7)]))
            ),
            Err(PublishError::Inconsistent { .. })
        ));
        m.publish(
            &[segment("wiki", 1)],
            &[],
            Some(commit(&[(0, 5)], &[(0, 9)])),
        )
        .unwrap();
        drop(m);
        let (m, replay) = Metadata::open(Some(dir.path())).unwrap();
        assert_eq!(m.offsets("wiki"), Some(offsets(&[(0, 9)])));
        assert_eq!(replay.publishes.len(), 2);
        assert_eq!(replay.publishes[1].0[0].partition, 1);
        assert_eq!(m.histories()["wiki"].len(), 1);
        m.set_offsets("wiki", None).unwrap();
        drop(m);
        let (m, _) = Metadata::open(Some(dir.path())).unwrap();
        assert_eq!(m.offsets("wiki"), None);
    }
}
