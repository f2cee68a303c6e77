//! The `index_realtime` task Tranquility submits for one interval, partition and replicant.
//!
//! The shape follows the original (see `reference/tranquility.md` §4.5): task id
//! `index_realtime_<ds>_<start>_<partition>_<replicant>`, the firehose chain
//! `clipped(interval) -> timed(shutoffTime) -> receiver(serviceName, bufferSize)`, a linear
//! shardSpec per partition, `rejectionPolicy` none (we drop by window before sending), and the
//! user's tuningConfig laid over the original's task defaults.
//!
//! Like the original's, the task's `map` parser reads the timestampSpec's column in `millis`
//! (`{"column": <column>, "format": "millis", "missingValue": null}`), so an instance of the
//! original and one of ours push into each other's tasks alike. Events are written to match
//! ([`super::event_shape`]): the timestamp in epoch milliseconds, the other fields as they came
//! (the original sent only the fields the schema uses; Druid ignores the others).

use rand::Rng;
use serde_json::{json, Map, Value};
use tracing::warn;

use crate::spec::properties::CoreProperties;
use crate::spec::IngestionSpec;
use crate::time::window::firehose_cycle;
use crate::time::{format_iso_millis, Interval};

/// A task ready to submit, with the names a beam needs to find its receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct RealtimeTask {
    /// The task id we ask for (the Overlord's answer is authoritative).
    pub id: String,
    /// `<ds>-<cycle>-<partition>-<replicant>`, the receiver's name within its service.
    pub firehose_id: String,
    /// The receiver's service name, `firehose:<indexServiceKey>:<firehoseId>`.
    pub service_name: String,
    /// The task JSON.
    pub json: Value,
}

/// Why a task could not be described.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the task for {data_source} interval {interval}: {reason}")]
pub struct TaskSpecError {
    /// The dataSource.
    pub data_source: String,
    /// The interval.
    pub interval: String,
    /// What is wrong.
    pub reason: String,
}

/// Builds the task of `replicant` for `partition` of `interval`.
pub fn realtime_task(
    spec: &IngestionSpec,
    props: &CoreProperties,
    interval: Interval,
    partition: u32,
    replicant: u32,
) -> Result<RealtimeTask, TaskSpecError> {
    let schema = &spec.data_schema;
    let ds = schema.data_source.as_str();
    let fail = |reason: String| TaskSpecError {
        data_source: ds.to_string(),
        interval: interval.to_string(),
        reason,
    };
    let start = format_iso_millis(interval.start);
    let cycle = firehose_cycle(&schema.granularity_spec.segment_granularity, interval.start)
        .map_err(|e| fail(e.to_string()))?;

    let mut id = format!("index_realtime_{ds}_{start}_{partition}_{replicant}");
    if props.randomize_task_id {
        let mut rng = rand::rng();
        id.push('_');
        id.extend((0..8).map(|_| char::from(b'a' + rng.random_range(0..16u8))));
    }
    let firehose_id = format!("{ds}-{cycle:03}-{partition:04}-{replicant:04}");
    let service_name = format!("firehose:{}:{firehose_id}", props.indexing_service_key());

    let window = spec.tuning_config.window_period();
    let shutoff = props
        .firehose_grace_period
        .add_to_utc_saturating(window.add_to_utc_saturating(interval.end));

    let mut data_schema = match serde_json::to_value(schema) {
        Ok(Value::Object(map)) => map,
        Ok(other) => return Err(fail(format!("dataSchema is not an object: {other}"))),
        Err(e) => return Err(fail(e.to_string())),
    };
    // Tasks receive maps from the firehose: a `map` parser reading the timestamp column in
    // millis, as the original's tasks do, and the schema's dimensionsSpec.
    data_schema.remove("timestampSpec");
    data_schema.remove("dimensionsSpec");
    data_schema.insert(
        "parser".into(),
        json!({
            "type": "map",
            "parseSpec": {
                "format": "json",
                "timestampSpec": task_timestamp_spec(&schema.timestamp_spec().column),
                "dimensionsSpec": schema.dimensions_spec(),
            }
        }),
    );

    let mut tuning = spec.tuning_config.with_task_defaults();
    let forced: [(&str, Value); 3] = [
        ("windowPeriod", Value::from(window.to_string())),
        (
            "shardSpec",
            json!({"type": "linear", "partitionNum": partition}),
        ),
        ("rejectionPolicy", json!({"type": "none"})),
    ];
    for (key, value) in forced {
        if let Some(old) = tuning.get(key).filter(|old| **old != value) {
            warn!(task = %id, key, from = %old, to = %value, "tuningConfig key overridden");
        }
        tuning.insert(key.into(), value);
    }

    let json = json!({
        "type": "index_realtime",
        "id": id,
        "resource": {
            "availabilityGroup": format!("{ds}-{start}-{partition:04}"),
            "requiredCapacity": 1,
        },
        "spec": {
            "dataSchema": Value::Object(data_schema),
            "ioConfig": {
                "type": "realtime",
                "plumber": null,
                "firehose": {
                    "type": "clipped",
                    "interval": interval.to_string(),
                    "delegate": {
                        "type": "timed",
                        "shutoffTime": format_iso_millis(shutoff),
                        "delegate": {
                            "type": "receiver",
                            "serviceName": service_name,
                            "bufferSize": props.firehose_buffer_size,
                        }
                    }
                }
            },
            "tuningConfig": Value::Object(tuning),
        }
    });
    Ok(RealtimeTask {
        id,
        firehose_id,
        service_name,
        json,
    })
}

/// The timestampSpec of the tasks we create, the original's: `column` in epoch milliseconds.
pub fn task_timestamp_spec(column: &str) -> Value {
    json!({"column": column, "format": "millis", "missingValue": null})
}

/// Reads a task JSON's firehose service name back (used when rebuilding beams).
pub fn service_name_of(task: &Map<String, Value>) -> Option<&str> {
    task.get("spec")?
        .pointer("/ioConfig/firehose/delegate/delegate/serviceName")?
        .as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::properties::Properties;

    fn spec() -> IngestionSpec {
        serde_json::from_value(json!({
            "dataSchema": {
                "dataSource": "wiki",
                "parser": {
                    "type": "string",
                    "parseSpec": {
                        "format": "json",
                        "timestampSpec": {"column": "timestamp", "format": "iso"},
                        "dimensionsSpec": {"dimensions": ["page", "language"]}
                    }
                },
                "metricsSpec": [
                    {"type": "count", "name": "count"},
                    {"type": "longSum", "name": "added", "fieldName": "added"}
                ],
                "granularitySpec": {
                    "type": "uniform",
                    "segmentGranularity": "hour",
                    "queryGranularity": "minute"
                },
                "myExtension": {"kept": true}
            },
            "tuningConfig": {
                "type": "realtime",
                "windowPeriod": "PT10M",
                "maxRowsInMemory": "100000",
                "rejectionPolicy": {"type": "serverTime"}
            }
        }))
        .unwrap()
    }

    fn props(pairs: &[(&str, &str)]) -> CoreProperties {
        let mut p = Properties::new();
        for (k, v) in pairs {
            p.insert(*k, *v);
        }
        CoreProperties::from_properties(&p).unwrap()
    }

    #[test]
    fn golden_task_matches_the_original_shape() {
        let interval: Interval = "2024-01-01T10:00:00.000Z/2024-01-01T11:00:00.000Z"
            .parse()
            .unwrap();
        let task = realtime_task(&spec(), &props(&[]), interval, 1, 0).unwrap();
        assert_eq!(task.id, "index_realtime_wiki_2024-01-01T10:00:00.000Z_1_0");
        assert_eq!(task.firehose_id, "wiki-010-0001-0000");
        assert_eq!(
            task.service_name,
            "firehose:druid:overlord:wiki-010-0001-0000"
        );
        let expected = json!({
            "type": "index_realtime",
            "id": "index_realtime_wiki_2024-01-01T10:00:00.000Z_1_0",
            "resource": {"availabilityGroup": "wiki-2024-01-01T10:00:00.000Z-0001", "requiredCapacity": 1},
            "spec": {
                "dataSchema": {
                    "dataSource": "wiki",
                    "parser": {
                        "type": "map",
                        "parseSpec": {
                            "format": "json",
                            "timestampSpec": {"column": "timestamp", "format": "millis", "missingValue": null},
                            "dimensionsSpec": {"dimensions": ["page", "language"]}
                        }
                    },
                    "metricsSpec": [
                        {"type": "count", "name": "count"},
                        {"type": "longSum", "name": "added", "fieldName": "added"}
                    ],
                    "granularitySpec": {
                        "type": "uniform",
                        "segmentGranularity": "HOUR",
                        "queryGranularity": "MINUTE",
                        "rollup": true
                    },
                    "myExtension": {"kept": true}
                },
                "ioConfig": {
                    "type": "realtime",
                    "plumber": null,
                    "firehose": {
                        "type": "clipped",
                        "interval": "2024-01-01T10:00:00.000Z/2024-01-01T11:00:00.000Z",
                        "delegate": {
                            "type": "timed",
                            "shutoffTime": "2024-01-01T11:15:00.000Z",
                            "delegate": {
                                "type": "receiver",
                                "serviceName": "firehose:druid:overlord:wiki-010-0001-0000",
                                "bufferSize": 100000
                            }
                        }
                    }
                },
                "tuningConfig": {
                    "type": "realtime",
                    "maxRowsInMemory": 100000,
                    "intermediatePersistPeriod": "PT10M",
                    "maxPendingPersists": 0,
                    "buildV9Directly": false,
                    "windowPeriod": "PT10M",
                    "rejectionPolicy": {"type": "none"},
                    "shardSpec": {"type": "linear", "partitionNum": 1}
                }
            }
        });
        assert_eq!(task.json, expected, "{:#}", task.json);
        assert_eq!(
            service_name_of(task.json.as_object().unwrap()),
            Some(task.service_name.as_str())
        );
    }

    #[test]
    fn randomized_ids_and_custom_service() {
        let interval: Interval = "2024-01-01T00:00:00Z/2024-01-02T00:00:00Z".parse().unwrap();
        let mut s = spec();
        s.data_schema.granularity_spec.segment_granularity = crate::time::Granularity::DAY;
        let p = props(&[
            ("druidBeam.randomizeTaskId", "true"),
            (
                "druid.selectors.indexing.serviceName",
                "druid/prod/overlord",
            ),
            ("druidBeam.firehoseGracePeriod", "PT1M"),
        ]);
        let a = realtime_task(&s, &p, interval, 0, 1).unwrap();
        let b = realtime_task(&s, &p, interval, 0, 1).unwrap();
        let prefix = "index_realtime_wiki_2024-01-01T00:00:00.000Z_0_1_";
        assert!(a.id.starts_with(prefix), "{}", a.id);
        let suffix = &a.id[prefix.len()..];
        assert_eq!(suffix.len(), 8);
        assert!(suffix.chars().all(|c| ('a'..='p').contains(&c)), "{suffix}");
        assert_ne!(a.id, b.id);
        assert_eq!(a.firehose_id, "wiki-001-0000-0001");
        assert_eq!(
            a.service_name,
            "firehose:druid:prod:overlord:wiki-001-0000-0001"
        );
        assert_eq!(
            a.json
                .pointer("/spec/ioConfig/firehose/delegate/shutoffTime"),
            Some(&json!("2024-01-02T00:11:00.000Z"))
        );
    }

    #[test]
    fn unsupported_segment_granularity_is_an_error() {
        let interval: Interval = "2024-01-01T00:00:00Z/2024-04-01T00:00:00Z".parse().unwrap();
        let mut s = spec();
        s.data_schema.granularity_spec.segment_granularity = "QUARTER".parse().unwrap();
        let err = realtime_task(&s, &props(&[]), interval, 0, 0).unwrap_err();
        assert!(err.to_string().contains("QUARTER"), "{err}");
    }
}
