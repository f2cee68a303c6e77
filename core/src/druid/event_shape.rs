//! How events are written for the task they are pushed to, so that a task reads each event's
//! timestamp as this instance read it, whoever created the task.
//!
//! Tasks created here have the original Tranquility's shape: their parser reads the
//! timestampSpec's column in `millis` (see [`super::task_spec`]), so a Java instance of the
//! original pushes into them as into its own. Events going to such a task carry their
//! timestamp as epoch milliseconds in that column; the rest of the event is sent as received
//! (fields the task's schema does not use are ignored by Druid). A task created otherwise (by
//! an earlier Tranquility-RS, which kept the user's timestampSpec, or by the original's
//! builder API) is asked for its spec once, and events are written the way it reads them.
//!
//! The rewrite is one splice per event: the column's value is found by the structural scan
//! the timestamp extractor uses, and the bytes around it are copied into the push body with
//! the new value between them; an event whose value is already right is copied whole.

use std::io::Write as _;

use serde_json::{Map, Value};

use super::receiver::{encode_smile_array, PushBody};
use crate::event::scan::{top_level_value, Found};
use crate::event::{Event, TimestampExtractor, TimestampFormat};
use crate::spec::properties::SerializationFormat;
use crate::spec::TimestampSpec;
use crate::time::format_iso_millis;

/// How to write events for one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventShape {
    /// The task reads timestamps exactly as this instance does: events go as received.
    AsReceived,
    /// The task reads another column or format: each event's timestamp is written there.
    Rewrite(TimestampWriter),
}

/// Writes an event's timestamp into one top-level column in one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampWriter {
    column: String,
    /// Whether `column` is the one this instance reads timestamps from (then extraction
    /// already noted where its value lies).
    same_column: bool,
    /// The column as a JSON string, for appending it to events that lack it.
    key: Vec<u8>,
    unit: Unit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Millis,
    Posix,
    Micro,
    Nano,
    Ruby,
    Iso,
}

impl EventShape {
    /// The shape of tasks this version creates (the original's): the events' timestamp column
    /// in `millis`.
    pub fn created(ours: &TimestampExtractor) -> Self {
        let spec = TimestampSpec::new(ours.column(), "millis");
        Self::for_task(&spec, ours).unwrap_or(EventShape::AsReceived)
    }

    /// The shape for a task whose parser has `task`'s timestampSpec, given how this instance
    /// reads its events (`ours`). A Joda pattern other than ours cannot be written.
    pub fn for_task(task: &TimestampSpec, ours: &TimestampExtractor) -> Result<Self, String> {
        let theirs = TimestampExtractor::new(task)
            .map_err(|e| format!("the task's timestampSpec cannot be used: {e}"))?;
        if theirs == *ours {
            return Ok(EventShape::AsReceived);
        }
        let unit = match theirs.format() {
            TimestampFormat::Auto | TimestampFormat::Millis => Unit::Millis,
            TimestampFormat::Posix => Unit::Posix,
            TimestampFormat::Micro => Unit::Micro,
            TimestampFormat::Nano => Unit::Nano,
            TimestampFormat::Ruby => Unit::Ruby,
            TimestampFormat::Iso => Unit::Iso,
            TimestampFormat::Pattern(p) => {
                return Err(format!(
                    "the task reads column '{}' with the pattern '{}', which differs from this \
                     instance's timestampSpec (column '{}', format '{}'); give every instance \
                     writing to this dataSource the same timestampSpec",
                    task.column,
                    p.as_str(),
                    ours.column(),
                    ours.format()
                ))
            }
        };
        Ok(EventShape::Rewrite(TimestampWriter {
            same_column: task.column == ours.column(),
            key: serde_json::to_vec(&task.column).unwrap_or_default(),
            column: task.column.clone(),
            unit,
        }))
    }

    /// The shape for a task given its JSON (as submitted, or the Overlord's `payload`).
    pub fn for_task_json(task: &Value, ours: &TimestampExtractor) -> Result<Self, String> {
        let schema = task.pointer("/spec/dataSchema").unwrap_or(&Value::Null);
        let spec = schema
            .pointer("/parser/parseSpec/timestampSpec")
            .or_else(|| schema.get("timestampSpec"))
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        let spec: TimestampSpec = serde_json::from_value(spec)
            .map_err(|e| format!("the task's timestampSpec cannot be read: {e}"))?;
        Self::for_task(&spec, ours)
    }

    /// A chunk of events as one push body.
    pub fn encode(&self, chunk: &[Event], format: SerializationFormat) -> Result<PushBody, String> {
        let writer = match (self, format) {
            (EventShape::AsReceived, SerializationFormat::Json) => {
                return Ok(super::receiver::encode_json_array(
                    chunk.iter().map(|e| e.raw()),
                ))
            }
            (EventShape::AsReceived, SerializationFormat::Smile) => {
                return encode_smile_array(chunk.iter().map(|e| e.raw())).map_err(|e| e.to_string())
            }
            (EventShape::Rewrite(writer), _) => writer,
        };
        let mut value = Vec::with_capacity(32);
        match format {
            SerializationFormat::Json => {
                let size: usize = chunk.iter().map(|e| e.raw().len() + 16).sum();
                let mut out = Vec::with_capacity(size + 2);
                out.push(b'[');
                for (i, event) in chunk.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    writer.write(event, &mut value, &mut out)?;
                }
                out.push(b']');
                Ok(PushBody {
                    bytes: out.into(),
                    format: SerializationFormat::Json,
                    events: chunk.len(),
                })
            }
            SerializationFormat::Smile => {
                let mut events = Vec::with_capacity(chunk.len());
                for event in chunk {
                    let mut out = Vec::with_capacity(event.raw().len() + 16);
                    writer.write(event, &mut value, &mut out)?;
                    events.push(out);
                }
                encode_smile_array(events).map_err(|e| e.to_string())
            }
        }
    }
}

impl TimestampWriter {
    /// Appends `event` to `out` with its timestamp written into the column; `value` is scratch.
    fn write(&self, event: &Event, value: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<(), String> {
        value.clear();
        self.value(event.timestamp_millis(), value)?;
        let json = event.raw().as_ref();
        // Where extraction found the value, if it is the column we write; else look for it.
        let (start, old) = match event.timestamp_value().filter(|_| self.same_column) {
            Some(at) => at,
            None => match top_level_value(json, &self.column) {
                // The scan returns a sub-slice of `json`.
                Found::Value(old) => (old.as_ptr() as usize - json.as_ptr() as usize, old),
                Found::Missing => return self.append(json, value, out),
                Found::Unsure => return self.rewrite_parsed(json, value, out),
            },
        };
        if old == value.as_slice() {
            out.extend_from_slice(json);
        } else {
            out.extend_from_slice(&json[..start]);
            out.extend_from_slice(value);
            out.extend_from_slice(&json[start + old.len()..]);
        }
        Ok(())
    }

    /// A well-formed object without the column: the column is added before the closing brace.
    fn append(&self, json: &[u8], value: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let end = json
            .iter()
            .rposition(|b| *b == b'}')
            .ok_or("not an object")?;
        let empty = json[..end].iter().rev().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        out.extend_from_slice(&json[..end]);
        if !empty {
            out.push(b',');
        }
        out.extend_from_slice(&self.key);
        out.push(b':');
        out.extend_from_slice(value);
        out.extend_from_slice(&json[end..]);
        Ok(())
    }

    /// Keys the scan does not decide (escapes): the object is parsed and written again.
    fn rewrite_parsed(&self, json: &[u8], value: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let mut map: Map<String, Value> =
            serde_json::from_slice(json).map_err(|e| e.to_string())?;
        let new: Value = serde_json::from_slice(value).map_err(|e| e.to_string())?;
        map.insert(self.column.clone(), new);
        serde_json::to_writer(&mut *out, &map).map_err(|e| e.to_string())
    }

    /// Writes the timestamp `millis` as the JSON value the task's format reads.
    fn value(&self, millis: i64, out: &mut Vec<u8>) -> Result<(), String> {
        let too_far = || format!("timestamp {millis} ms cannot be written in that unit");
        let number = match self.unit {
            Unit::Millis => millis,
            Unit::Posix => millis.div_euclid(1000),
            Unit::Micro => millis.checked_mul(1_000).ok_or_else(too_far)?,
            Unit::Nano => millis.checked_mul(1_000_000).ok_or_else(too_far)?,
            Unit::Ruby => {
                let (s, ms) = (millis.div_euclid(1000), millis.rem_euclid(1000));
                return write!(out, "{s}.{ms:03}").map_err(|e| e.to_string());
            }
            Unit::Iso => {
                return write!(out, "\"{}\"", format_iso_millis(millis)).map_err(|e| e.to_string())
            }
        };
        push_integer(out, number);
        Ok(())
    }
}

/// Appends `n` in decimal (the hot path's one number per event, without the formatter).
fn push_integer(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RawEvent;
    use bytes::Bytes;
    use serde_json::json;

    fn extractor(column: &str, format: &str) -> TimestampExtractor {
        TimestampExtractor::new(&TimestampSpec::new(column, format)).expect("spec")
    }

    fn events(ours: &TimestampExtractor, raws: &[&str]) -> Vec<Event> {
        raws.iter()
            .map(|r| Event::from_json(Bytes::from(r.to_string()), ours).expect("event"))
            .collect()
    }

    fn body(shape: &EventShape, chunk: &[Event]) -> Value {
        let body = shape
            .encode(chunk, SerializationFormat::Json)
            .expect("encode");
        serde_json::from_slice(&body.bytes).expect("a JSON array")
    }

    #[test]
    fn integers_are_written_in_decimal() {
        for n in [0, 7, -7, 1546311600123, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            push_integer(&mut out, n);
            assert_eq!(String::from_utf8(out).expect("utf8"), n.to_string());
        }
    }

    #[test]
    fn created_tasks_get_millis_in_the_same_column() {
        let ours = extractor("ts", "iso");
        let shape = EventShape::created(&ours);
        let chunk = events(
            &ours,
            &[
                r#"{"ts":"2019-01-01T03:00:00.123Z","page":"a","n":1}"#,
                r#"{ "page" : "b" , "ts" : "2019-01-01T04:00:00+01:00" }"#,
            ],
        );
        assert_eq!(
            body(&shape, &chunk),
            json!([{"ts": 1546311600123_i64, "page": "a", "n": 1},
                   {"page": "b", "ts": 1546311600000_i64}])
        );
        // Already millis, read as millis: nothing to do.
        assert_eq!(
            EventShape::created(&extractor("ts", "millis")),
            EventShape::AsReceived
        );
    }

    #[test]
    fn where_extraction_found_the_timestamp_is_used_and_right() {
        let ours = extractor("ts", "auto");
        let value = json!({"a": "ts", "ts": "2019-01-01T03:00:00Z", "b": [1, {"ts": 2}]});
        let well_formed = Event::from_raw(RawEvent::from_value(&value), &ours).expect("event");
        let unchecked = events(&ours, &[&value.to_string()]);
        let shape = EventShape::created(&ours);
        let expected = json!([{"a": "ts", "ts": 1546311600000_i64, "b": [1, {"ts": 2}]}]);
        assert_eq!(body(&shape, std::slice::from_ref(&well_formed)), expected);
        assert_eq!(body(&shape, &unchecked), expected);
        // Another column than the one extraction read: found by scanning.
        let other = EventShape::for_task(&TimestampSpec::new("a", "millis"), &ours).expect("a");
        assert_eq!(body(&other, &[well_formed])[0]["a"], 1546311600000_i64);
    }

    #[test]
    fn events_already_right_or_missing_the_column_are_handled() {
        let ours = TimestampExtractor::new(&TimestampSpec {
            missing_value: Some(json!(1000)),
            ..TimestampSpec::new("ts", "auto")
        })
        .expect("spec");
        let shape = EventShape::created(&ours);
        let chunk = events(
            &ours,
            &[r#"{"ts":1546311600000,"a":1}"#, r#"{"a":2}"#, "{ }"],
        );
        let json = shape
            .encode(&chunk, SerializationFormat::Json)
            .expect("encode");
        assert_eq!(
            std::str::from_utf8(&json.bytes).expect("utf8"),
            r#"[{"ts":1546311600000,"a":1},{"a":2,"ts":1000},{ "ts":1000}]"#
        );
    }

    #[test]
    fn tasks_of_other_shapes_read_what_we_write() {
        let ours = extractor("timestamp", "iso");
        let chunk = events(
            &ours,
            &[r#"{"timestamp":"2019-01-01T03:00:01.500Z","x":"\"q\""}"#],
        );
        for (format, expected) in [
            ("posix", json!(1546311601)),
            ("micro", json!(1546311601500000_i64)),
            ("nano", json!(1546311601500000000_i64)),
            ("ruby", json!(1546311601.5)),
            ("auto", json!(1546311601500_i64)),
            ("ISO", json!("2019-01-01T03:00:01.500Z")),
        ] {
            let task = TimestampSpec::new("timestamp", format);
            let shape = EventShape::for_task(&task, &ours).expect(format);
            let out = body(&shape, &chunk);
            assert_eq!(out[0]["timestamp"], expected, "{format}");
            assert_eq!(out[0]["x"], "\"q\"");
        }
        // Another column: written there too, the original one kept.
        let shape = EventShape::for_task(&TimestampSpec::new("t", "millis"), &ours).expect("t");
        assert_eq!(body(&shape, &chunk)[0]["t"], 1546311601500_i64);
        // The very same spec: untouched.
        let same = EventShape::for_task(&TimestampSpec::new("timestamp", "iso"), &ours);
        assert_eq!(same, Ok(EventShape::AsReceived));
        // A pattern we do not read with cannot be written: a clear refusal.
        let err = EventShape::for_task(&TimestampSpec::new("timestamp", "yyyy-MM-dd"), &ours)
            .expect_err("pattern");
        assert!(err.contains("same timestampSpec"), "{err}");
    }

    #[test]
    fn reads_the_timestamp_spec_of_old_and_new_task_json() {
        let ours = extractor("timestamp", "iso");
        let old = json!({"spec": {"dataSchema": {"parser": {"type": "map", "parseSpec": {
            "format": "json", "timestampSpec": {"column": "timestamp", "format": "millis", "missingValue": null}}}}}});
        assert!(matches!(
            EventShape::for_task_json(&old, &ours),
            Ok(EventShape::Rewrite(_))
        ));
        let new = json!({"spec": {"dataSchema": {"timestampSpec": {"column": "timestamp", "format": "iso"}}}});
        assert_eq!(
            EventShape::for_task_json(&new, &ours),
            Ok(EventShape::AsReceived)
        );
    }

    #[test]
    fn escaped_keys_fall_back_to_a_full_rewrite_and_smile_works_too() {
        let ours = extractor("ts", "iso");
        let shape = EventShape::created(&ours);
        let chunk = events(&ours, &[r#"{"a\u0062":1,"ts":"1970-01-01T00:00:01Z"}"#]);
        assert_eq!(body(&shape, &chunk), json!([{"ab": 1, "ts": 1000}]));
        let smile = shape
            .encode(&chunk, SerializationFormat::Smile)
            .expect("smile");
        assert_eq!(smile.format, SerializationFormat::Smile);
        assert_eq!(smile.events, 1);
        let back: Value = serde_smile::from_slice(&smile.bytes).expect("smile decodes");
        assert_eq!(back, json!([{"ab": 1, "ts": 1000}]));
    }
}
