//! The segment store: live (realtime) segments of running tasks, handed-off segments in the
//! local deep storage under the data dir, lock versions, and the one-copy-per-partition view
//! that queries read (as Druid's broker does with replicas).

use crate::task::rollup::{Index, IndexSnapshot};
use crate::time::{self, Interval};
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One segment: an index for a (dataSource, interval, version, partition).
#[derive(Debug)]
pub struct Segment {
    /// Data source.
    pub data_source: String,
    /// Segment interval.
    pub interval: Interval,
    /// Lock version shared by the replicas and partitions of the interval.
    pub version: String,
    /// Partition number.
    pub partition: u32,
    /// Rows.
    pub index: RwLock<Index>,
}

impl Segment {
    /// Druid's segment id: `<ds>_<start>_<end>_<version>[_<partition>]`.
    pub fn id(&self) -> String {
        let base = format!(
            "{}_{}_{}_{}",
            self.data_source,
            time::iso(self.interval.start),
            time::iso(self.interval.end),
            self.version
        );
        if self.partition > 0 {
            format!("{base}_{}", self.partition)
        } else {
            base
        }
    }
}

/// Identity of a segment copy: replicas share it.
pub type SegmentKey = (Interval, String, u32);

#[derive(Debug, Default)]
struct Entry {
    handed_off: Option<Arc<Segment>>,
    live: Vec<(String, Arc<Segment>)>,
}

/// All segments of all data sources.
#[derive(Debug)]
pub struct Store {
    data_dir: Option<PathBuf>,
    segments: RwLock<BTreeMap<String, BTreeMap<SegmentKey, Entry>>>,
    versions: Mutex<BTreeMap<(String, Interval), String>>,
    /// Next partition number to allocate per (dataSource, interval, version).
    allocated: Mutex<BTreeMap<(String, Interval, String), u32>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SegmentFile {
    data_source: String,
    start: i64,
    end: i64,
    version: String,
    partition: u32,
    index: IndexSnapshot,
}

impl Store {
    /// A store persisting to `data_dir` (memory only when `None`); loads handed-off segments.
    pub fn open(data_dir: Option<&Path>) -> std::io::Result<Store> {
        let store = Store {
            data_dir: data_dir.map(Path::to_path_buf),
            segments: RwLock::default(),
            versions: Mutex::default(),
            allocated: Mutex::default(),
        };
        if let Some(dir) = store.segment_dir() {
            std::fs::create_dir_all(&dir)?;
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                let bytes = std::fs::read(&path)?;
                let file: SegmentFile = serde_json::from_slice(&bytes).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("segment file {}: {e}", path.display()),
                    )
                })?;
                let mut index = Index::from_snapshot(file.index).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("segment file {}: {e}", path.display()),
                    )
                })?;
                index.handed_off = true;
                let interval = Interval {
                    start: file.start,
                    end: file.end,
                };
                store
                    .versions
                    .lock()
                    .entry((file.data_source.clone(), interval))
                    .or_insert_with(|| file.version.clone());
                let seg = Arc::new(Segment {
                    data_source: file.data_source,
                    interval,
                    version: file.version,
                    partition: file.partition,
                    index: RwLock::new(index),
                });
                let key = (seg.interval, seg.version.clone(), seg.partition);
                let ds = seg.data_source.clone();
                store
                    .segments
                    .write()
                    .entry(ds)
                    .or_default()
                    .entry(key)
                    .or_default()
                    .handed_off = Some(seg);
            }
        }
        Ok(store)
    }

    fn segment_dir(&self) -> Option<PathBuf> {
        self.data_dir.as_ref().map(|d| d.join("segments"))
    }

    /// The lock version of an interval: the first task to ask gets "now", later ones share it.
    pub fn version_for(&self, data_source: &str, interval: Interval) -> String {
        self.versions
            .lock()
            .entry((data_source.to_owned(), interval))
            .or_insert_with(|| time::iso(time::now_millis()))
            .clone()
    }

    /// A partition number of (dataSource, interval, version) that no segment uses yet, as the
    /// Overlord's segment allocation hands out to appenderator tasks.
    pub fn allocate_partition(&self, data_source: &str, interval: Interval, version: &str) -> u32 {
        let mut allocated = self.allocated.lock();
        let key = (data_source.to_owned(), interval, version.to_owned());
        let next = match allocated.get(&key) {
            Some(n) => *n,
            None => self
                .segments
                .read()
                .get(data_source)
                .and_then(|m| {
                    m.keys()
                        .filter(|(iv, v, _)| *iv == interval && v == version)
                        .map(|(_, _, p)| p + 1)
                        .max()
                })
                .unwrap_or(0),
        };
        allocated.insert(key, next + 1);
        next
    }

    /// Registers a running task's copy of a segment.
    pub fn add_live(&self, task_id: &str, seg: Arc<Segment>) {
        let key = (seg.interval, seg.version.clone(), seg.partition);
        self.segments
            .write()
            .entry(seg.data_source.clone())
            .or_default()
            .entry(key)
            .or_default()
            .live
            .push((task_id.to_owned(), seg));
    }

    /// Drops a task's live copies (task failed or was shut down).
    pub fn drop_live(&self, task_id: &str) {
        let mut all = self.segments.write();
        for per_ds in all.values_mut() {
            for e in per_ds.values_mut() {
                e.live.retain(|(t, _)| t != task_id);
            }
            per_ds.retain(|_, e| e.handed_off.is_some() || !e.live.is_empty());
        }
        all.retain(|_, m| !m.is_empty());
    }

    /// Publishes a task's segment to deep storage and serves it from there from now on.
    pub fn hand_off(&self, task_id: &str, seg: &Arc<Segment>) -> std::io::Result<()> {
        let key = (seg.interval, seg.version.clone(), seg.partition);
        let already = self
            .segments
            .read()
            .get(&seg.data_source)
            .and_then(|m| m.get(&key))
            .is_some_and(|e| e.handed_off.is_some());
        if !already && !seg.index.read().is_empty() {
            {
                let mut idx = seg.index.write();
                idx.sort_metrics_by_name();
                idx.handed_off = true;
            }
            if let Some(dir) = self.segment_dir() {
                let file = SegmentFile {
                    data_source: seg.data_source.clone(),
                    start: seg.interval.start,
                    end: seg.interval.end,
                    version: seg.version.clone(),
                    partition: seg.partition,
                    index: seg.index.read().snapshot(),
                };
                let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
                let name = format!("{}.json", encode_file_name(&seg.id()));
                let tmp = dir.join(format!("{name}.tmp"));
                std::fs::write(&tmp, bytes)?;
                std::fs::rename(&tmp, dir.join(name))?;
            }
        }
        let mut all = self.segments.write();
        let e = all
            .entry(seg.data_source.clone())
            .or_default()
            .entry(key)
            .or_default();
        if e.handed_off.is_none() && !seg.index.read().is_empty() {
            e.handed_off = Some(seg.clone());
        }
        e.live.retain(|(t, _)| t != task_id);
        Ok(())
    }

    /// Serves segments published through the metadata log (`crate::metadata`) as handed off,
    /// drops the task's live copies and removes `drop` (segments a replace overshadowed), all
    /// in one step for readers. Nothing is written here: the log is the durable copy.
    pub fn publish(
        &self,
        task_id: Option<&str>,
        add: &[Arc<Segment>],
        drop: &[(String, SegmentKey)],
    ) {
        let mut all = self.segments.write();
        {
            let mut versions = self.versions.lock();
            for seg in add {
                let key = (seg.interval, seg.version.clone(), seg.partition);
                all.entry(seg.data_source.clone())
                    .or_default()
                    .entry(key)
                    .or_default()
                    .handed_off = Some(seg.clone());
                let v = versions
                    .entry((seg.data_source.clone(), seg.interval))
                    .or_insert_with(|| seg.version.clone());
                if seg.version > *v {
                    *v = seg.version.clone();
                }
            }
        }
        for (ds, key) in drop {
            if let Some(per_ds) = all.get_mut(ds) {
                per_ds.remove(key);
            }
        }
        if let Some(t) = task_id {
            for per_ds in all.values_mut() {
                for e in per_ds.values_mut() {
                    e.live.retain(|(id, _)| id != t);
                }
            }
        }
        for per_ds in all.values_mut() {
            per_ds.retain(|_, e| e.handed_off.is_some() || !e.live.is_empty());
        }
        all.retain(|_, m| !m.is_empty());
    }

    /// The newest version any segment of exactly this chunk has, if the chunk has segments.
    pub fn chunk_version(&self, data_source: &str, interval: Interval) -> Option<String> {
        self.segments
            .read()
            .get(data_source)?
            .keys()
            .filter(|(iv, _, _)| *iv == interval)
            .map(|(_, v, _)| v.clone())
            .max()
    }

    /// Handed-off (published) segments of a data source, in key order.
    pub fn published(&self, data_source: &str) -> Vec<Arc<Segment>> {
        self.segments
            .read()
            .get(data_source)
            .map(|m| m.values().filter_map(|e| e.handed_off.clone()).collect())
            .unwrap_or_default()
    }

    /// Whether `seg` is served from deep storage (handed off) rather than by a running task.
    pub fn is_handed_off(&self, seg: &Segment) -> bool {
        let key = (seg.interval, seg.version.clone(), seg.partition);
        self.segments
            .read()
            .get(&seg.data_source)
            .and_then(|m| m.get(&key))
            .is_some_and(|e| e.handed_off.is_some())
    }

    /// Names of data sources with at least one segment holding rows.
    pub fn data_sources(&self) -> Vec<String> {
        self.segments
            .read()
            .iter()
            .filter(|(_, m)| {
                m.values().any(|e| {
                    e.handed_off
                        .iter()
                        .chain(e.live.iter().map(|(_, s)| s))
                        .any(|s| !s.index.read().is_empty())
                })
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// One copy per (interval, version, partition) overlapping any of `intervals`; the
    /// handed-off copy wins, then the oldest live replica. A newer version of an interval
    /// overshadows older ones.
    pub fn view(&self, data_source: &str, intervals: &[Interval]) -> Vec<Arc<Segment>> {
        let all = self.segments.read();
        let Some(per_ds) = all.get(data_source) else {
            return Vec::new();
        };
        // Newest version per interval, then anything inside a newer interval's span is
        // overshadowed too (a replace with a coarser segment granularity).
        let mut newest: BTreeMap<Interval, &str> = BTreeMap::new();
        for (iv, version, _) in per_ds.keys() {
            let v = newest.entry(*iv).or_insert(version.as_str());
            if version.as_str() > *v {
                *v = version.as_str();
            }
        }
        let overshadowed = |iv: &Interval, version: &str| {
            newest
                .iter()
                .any(|(other, v)| *v > version && other.start <= iv.start && iv.end <= other.end)
        };
        per_ds
            .iter()
            .filter(|((iv, version, _), _)| {
                newest.get(iv).is_some_and(|v| *v == version.as_str()) && !overshadowed(iv, version)
            })
            .filter(|((iv, _, _), _)| intervals.iter().any(|q| q.overlaps(iv)))
            .filter_map(|(_, e)| {
                e.handed_off
                    .clone()
                    .or_else(|| e.live.first().map(|(_, s)| s.clone()))
            })
            .collect()
    }
}

/// Makes a segment id safe as a file name (keeps it readable, escapes `/`, `%` and controls).
fn encode_file_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '/' | '\\' | '%' | ':' => out.push_str(&format!("%{:02X}", c as u32)),
            c if c.is_control() => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
