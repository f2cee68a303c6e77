//! The beam metadata shared through a [`Coordinator`](super::Coordinator): which beams (and
//! behind them, which Druid tasks) serve each segment interval, and how far intervals have closed.
//!
//! The JSON form is the one the original Tranquility keeps in ZooKeeper, so both can read each
//! other's data:
//!
//! ```json
//! {"latestTime":"2019-01-01T04:00:00.000Z","latestCloseTime":"2019-01-01T02:00:00.000Z",
//!  "beams":{"2019-01-01T03:00:00.000Z":[{"interval":"2019-01-01T03:00:00.000Z/2019-01-01T04:00:00.000Z",
//!    "partition":0,"tasks":[{"id":"index_realtime_foo_2019-01-01T03:00:00.000Z_0_0","firehoseId":"foo-003-0000-0000"}],
//!    "timestamp":"2019-01-01T03:00:00.000Z"}]}}
//! ```
//!
//! A [`BeamDescriptor`] keeps the interval and partition typed and everything else (the part only
//! the maker of that kind of beam understands, such as `tasks`) as raw JSON in `details`, so other
//! ways into Druid can store their own description. [`RealtimeTasks`] is the realtime-task view.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::time::{format_iso_millis as format_time, parse_iso_datetime, Interval, Zone};

/// Something in the stored metadata could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The bytes are not the metadata JSON.
    #[error("beam metadata is not valid: {0}")]
    Json(#[from] serde_json::Error),
    /// A beam descriptor lacks what its reader needs.
    #[error("beam descriptor for partition {partition} is not valid: {reason}")]
    Descriptor {
        /// The descriptor's partition.
        partition: u32,
        /// What is wrong.
        reason: String,
    },
}

/// Parses a stored instant: ISO-8601 with an offset or `Z`, or without one (then UTC).
fn parse_time(s: &str) -> Result<i64, String> {
    parse_iso_datetime(s, Zone::UTC).map_err(|e| format!("'{s}' is not an ISO-8601 instant: {e}"))
}

/// A time stored as an ISO string or as epoch milliseconds.
fn time_value(v: &Value) -> Result<Option<i64>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => parse_time(s).map(Some),
        Value::Number(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{n} is not a time in epoch milliseconds")),
        other => Err(format!("{other} is not a time")),
    }
}

/// One partition's beam for one interval, as stored in the metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct BeamDescriptor {
    /// The interval the beam covers. Old writers stored only `timestamp` (the interval start);
    /// then this is `None` and the reader derives it from the segment granularity.
    pub interval: Option<Interval>,
    /// The interval start (epoch millis), written only when the interval is exactly one
    /// segment bucket.
    pub timestamp: Option<i64>,
    /// Partition number (Druid's `partitionNum`).
    pub partition: u32,
    /// The rest of the object: what the beam maker needs to rebuild the beam (for realtime
    /// tasks, `tasks`).
    pub details: Map<String, Value>,
}

impl BeamDescriptor {
    /// The interval start (epoch millis): from `interval`, else from `timestamp`.
    pub fn start(&self) -> Option<i64> {
        self.interval.map(|i| i.start).or(self.timestamp)
    }
}

impl Serialize for BeamDescriptor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = Map::new();
        if let Some(interval) = &self.interval {
            map.insert("interval".into(), Value::String(interval.to_string()));
        }
        map.insert("partition".into(), Value::from(self.partition));
        for (k, v) in &self.details {
            map.insert(k.clone(), v.clone());
        }
        if let Some(t) = self.timestamp {
            map.insert("timestamp".into(), Value::String(format_time(t)));
        }
        map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for BeamDescriptor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut map = Map::deserialize(d)?;
        let partition = match map.remove("partition") {
            Some(v) => v
                .as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .ok_or_else(|| D::Error::custom(format!("bad partition {v}")))?,
            None => return Err(D::Error::missing_field("partition")),
        };
        let interval = match map.remove("interval") {
            Some(Value::String(s)) => Some(s.parse::<Interval>().map_err(D::Error::custom)?),
            Some(Value::Null) | None => None,
            Some(v) => return Err(D::Error::custom(format!("bad interval {v}"))),
        };
        let timestamp = match map.remove("timestamp") {
            Some(Value::String(s)) => Some(parse_time(&s).map_err(D::Error::custom)?),
            Some(Value::Null) | None => None,
            Some(v) => return Err(D::Error::custom(format!("bad timestamp {v}"))),
        };
        if interval.is_none() && timestamp.is_none() {
            return Err(D::Error::custom(format!(
                "beam descriptor of partition {partition} has neither interval nor timestamp"
            )));
        }
        Ok(BeamDescriptor {
            interval,
            timestamp,
            partition,
            details: map,
        })
    }
}

/// Everything stored for one identity (`<indexServiceKey>/<dataSource>`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BeamMetadata {
    /// Intervals starting at or before this (epoch millis) are closed: no beams are created
    /// for them again.
    pub latest_close_time: Option<i64>,
    /// Beams by interval start (epoch millis), one descriptor per partition.
    pub beams: BTreeMap<i64, Vec<BeamDescriptor>>,
    /// Top-level keys this version does not know, kept so a rewrite does not lose them.
    pub extra: Map<String, Value>,
}

impl BeamMetadata {
    /// `latestCloseTime`, with the epoch standing in for "never".
    pub fn latest_close_time_or_epoch(&self) -> i64 {
        self.latest_close_time.unwrap_or(0)
    }

    /// `latestTime` as written for older readers: the latest of latestCloseTime and beam keys.
    pub fn latest_time(&self) -> i64 {
        let last_beam = self.beams.keys().next_back().copied();
        last_beam
            .into_iter()
            .fold(self.latest_close_time_or_epoch(), |a, b| a.max(b))
    }

    /// Parses stored bytes; the empty value (a freshly created node) is the empty metadata.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetaError> {
        if Self::is_unwritten(bytes) {
            return Ok(BeamMetadata::default());
        }
        Ok(serde_json::from_slice(bytes)?)
    }

    /// Whether stored bytes are a node nobody has written the metadata JSON into yet (earlier
    /// versions of Tranquility-RS created it with no bytes, which the original cannot read).
    pub fn is_unwritten(bytes: &[u8]) -> bool {
        bytes.iter().all(u8::is_ascii_whitespace)
    }

    /// Serializes to the stored JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing maps of strings and numbers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl Serialize for BeamMetadata {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = Map::new();
        map.insert(
            "latestTime".into(),
            Value::String(format_time(self.latest_time())),
        );
        map.insert(
            "latestCloseTime".into(),
            Value::String(format_time(self.latest_close_time_or_epoch())),
        );
        let mut beams = Map::new();
        for (start, descriptors) in &self.beams {
            let list = serde_json::to_value(descriptors).map_err(serde::ser::Error::custom)?;
            beams.insert(format_time(*start), list);
        }
        map.insert("beams".into(), Value::Object(beams));
        for (k, v) in &self.extra {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
        map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for BeamMetadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut map = Map::deserialize(d)?;
        // Derived on write; not worth keeping.
        map.remove("latestTime");
        // The epoch is how writers spell "never" (the original's empty metadata has it).
        let latest_close_time = match map.remove("latestCloseTime") {
            Some(v) => time_value(&v)
                .map_err(|e| D::Error::custom(format!("bad latestCloseTime: {e}")))?
                .filter(|t| *t != 0),
            None => None,
        };
        let mut beams = BTreeMap::new();
        match map.remove("beams") {
            Some(Value::Object(entries)) => {
                for (key, list) in entries {
                    let start = parse_time(&key).map_err(D::Error::custom)?;
                    let descriptors: Vec<BeamDescriptor> =
                        serde_json::from_value(list).map_err(D::Error::custom)?;
                    beams.insert(start, descriptors);
                }
            }
            Some(Value::Null) | None => {}
            Some(v) => return Err(D::Error::custom(format!("bad beams {v}"))),
        }
        Ok(BeamMetadata {
            latest_close_time,
            beams,
            extra: map,
        })
    }
}

/// One realtime task behind a beam.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskRef {
    /// The Overlord's task id.
    pub id: String,
    /// The receiver firehose id (`<ds>-<cycle>-<partition>-<replicant>`).
    #[serde(rename = "firehoseId")]
    pub firehose_id: String,
}

/// The realtime-task view of a [`BeamDescriptor`]: its replicas' tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealtimeTasks(pub Vec<TaskRef>);

impl RealtimeTasks {
    /// Reads `tasks`, or the old single-task form `{"taskId","firehoseId"}`.
    pub fn from_descriptor(descriptor: &BeamDescriptor) -> Result<Self, MetaError> {
        let bad = |reason: String| MetaError::Descriptor {
            partition: descriptor.partition,
            reason,
        };
        if let Some(tasks) = descriptor.details.get("tasks") {
            let tasks: Vec<TaskRef> =
                serde_json::from_value(tasks.clone()).map_err(|e| bad(format!("tasks: {e}")))?;
            return Ok(RealtimeTasks(tasks));
        }
        let field = |name: &str| {
            descriptor
                .details
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("neither tasks nor {name}")))
        };
        Ok(RealtimeTasks(vec![TaskRef {
            id: field("taskId")?,
            firehose_id: field("firehoseId")?,
        }]))
    }

    /// The `details` of a descriptor holding these tasks.
    pub fn to_details(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert(
            "tasks".into(),
            serde_json::to_value(&self.0).unwrap_or(Value::Array(Vec::new())),
        );
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // latestTime is max(latestCloseTime, beam keys), as the original computes it.
    const SAMPLE: &str = r#"{"latestTime":"2019-01-01T03:00:00.000Z","latestCloseTime":"2019-01-01T02:00:00.000Z","beams":{"2019-01-01T03:00:00.000Z":[{"interval":"2019-01-01T03:00:00.000Z/2019-01-01T04:00:00.000Z","partition":0,"tasks":[{"id":"index_realtime_foo_2019-01-01T03:00:00.000Z_0_0","firehoseId":"foo-003-0000-0000"}],"timestamp":"2019-01-01T03:00:00.000Z"}]}}"#;

    fn t(s: &str) -> i64 {
        parse_time(s).expect("test time")
    }

    #[test]
    fn reads_and_writes_the_original_layout_byte_for_byte() {
        let meta = BeamMetadata::from_bytes(SAMPLE.as_bytes()).expect("sample parses");
        assert_eq!(meta.latest_close_time, Some(t("2019-01-01T02:00:00.000Z")));
        let beams = &meta.beams[&t("2019-01-01T03:00:00Z")];
        assert_eq!(beams.len(), 1);
        assert_eq!(
            beams[0].interval.map(|i| i.end),
            Some(t("2019-01-01T04:00:00Z"))
        );
        let tasks = RealtimeTasks::from_descriptor(&beams[0]).expect("tasks");
        assert_eq!(tasks.0[0].firehose_id, "foo-003-0000-0000");
        assert_eq!(String::from_utf8(meta.to_bytes()).expect("utf8"), SAMPLE);
    }

    #[test]
    fn empty_value_is_empty_metadata_with_epoch_times() {
        let meta = BeamMetadata::from_bytes(b"").expect("empty parses");
        assert!(meta.beams.is_empty());
        // What the original writes into a node it creates, byte for byte.
        let original = r#"{"latestTime":"1970-01-01T00:00:00.000Z","latestCloseTime":"1970-01-01T00:00:00.000Z","beams":{}}"#;
        assert_eq!(String::from_utf8(meta.to_bytes()).expect("utf8"), original);
        assert_eq!(
            BeamMetadata::from_bytes(original.as_bytes()).expect("parses"),
            BeamMetadata::default()
        );
        assert!(BeamMetadata::is_unwritten(b" \n"));
        assert!(!BeamMetadata::is_unwritten(original.as_bytes()));
    }

    #[test]
    fn accepts_legacy_timestamp_and_single_task_forms() {
        let old = r#"{"beams":{"2019-01-01T03:00:00Z":[{"timestamp":"2019-01-01T03:00:00Z","partition":1,"taskId":"t1","firehoseId":"f1"}]}}"#;
        let meta = BeamMetadata::from_bytes(old.as_bytes()).expect("old form parses");
        assert_eq!(meta.latest_close_time, None);
        assert_eq!(meta.latest_close_time_or_epoch(), 0);
        let d = &meta.beams[&t("2019-01-01T03:00:00Z")][0];
        assert_eq!(d.interval, None);
        assert_eq!(d.start(), Some(t("2019-01-01T03:00:00Z")));
        assert_eq!(d.partition, 1);
        let tasks = RealtimeTasks::from_descriptor(d).expect("single task form");
        assert_eq!(
            tasks.0,
            vec![TaskRef {
                id: "t1".into(),
                firehose_id: "f1".into()
            }]
        );
        assert_eq!(meta.latest_time(), t("2019-01-01T03:00:00Z"));
    }

    #[test]
    fn accepts_epoch_millis_and_offsetless_times() {
        let text = r#"{"latestCloseTime":3600000,"beams":{"1970-01-01T02:00:00":[{"timestamp":"1970-01-01T02:00:00","partition":0,"tasks":[]}]}}"#;
        let meta = BeamMetadata::from_bytes(text.as_bytes()).expect("parses");
        assert_eq!(meta.latest_close_time, Some(t("1970-01-01T01:00:00Z")));
        assert!(meta.beams.contains_key(&t("1970-01-01T02:00:00Z")));
    }

    #[test]
    fn unknown_keys_survive_a_round_trip() {
        let text = r#"{"latestCloseTime":"2019-01-01T02:00:00.000Z","beams":{"2019-01-01T03:00:00.000Z":[{"interval":"2019-01-01T03:00:00.000Z/2019-01-01T05:00:00.000Z","partition":0,"kafka":{"topic":"x"}}]},"counter":7}"#;
        let meta = BeamMetadata::from_bytes(text.as_bytes()).expect("parses");
        assert_eq!(meta.extra["counter"], 7);
        let again = BeamMetadata::from_bytes(&meta.to_bytes()).expect("re-parses");
        assert_eq!(again, meta);
        let d = &again.beams[&t("2019-01-01T03:00:00Z")][0];
        assert_eq!(d.details["kafka"]["topic"], "x");
        assert_eq!(d.timestamp, None);
        assert!(RealtimeTasks::from_descriptor(d).is_err());
    }

    #[test]
    fn rejects_bad_data_with_a_reason() {
        for (bad, needle) in [
            (r#"{"beams":{"nope":[]}}"#, "nope"),
            (
                r#"{"beams":{"2019-01-01T03:00:00Z":[{"partition":0}]}}"#,
                "neither",
            ),
            (r#"{"latestCloseTime":true}"#, "latestCloseTime"),
            (
                r#"{"beams":{"2019-01-01T03:00:00Z":[{"partition":-1,"timestamp":"2019-01-01T03:00:00Z"}]}}"#,
                "partition",
            ),
            ("[1]", "map"),
        ] {
            let err = BeamMetadata::from_bytes(bad.as_bytes())
                .expect_err(bad)
                .to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn interval_round_trip_and_validation() {
        let i: Interval = "2019-01-01T03:00:00+01:00/2019-01-01T04:00:00Z"
            .parse()
            .expect("interval");
        assert_eq!(
            i.to_string(),
            "2019-01-01T02:00:00.000Z/2019-01-01T04:00:00.000Z"
        );
        assert!("2019-01-01T04:00:00Z/2019-01-01T03:00:00Z"
            .parse::<Interval>()
            .is_err());
        assert!("2019-01-01T04:00:00Z".parse::<Interval>().is_err());
    }
}
