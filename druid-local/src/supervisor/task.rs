//! `index_kafka` tasks as the task API shows them: ids `index_kafka_<ds>_<hash>_<random>`,
//! group `index_kafka_<ds>`, and the payload Druid 33 stores for them (`GET /task/{id}`).

use super::spec::KafkaSpec;
use crate::metadata::StreamOffsets;
use crate::spec::{Firehose, Rejection, TaskKind, TaskSpec};
use crate::time::Granularity;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

/// Eight random letters `a`..`p`, as Druid's task ids end.
pub fn random_suffix() -> String {
    use rand::Rng;
    let mut r = rand::rng();
    (0..8)
        .map(|_| char::from(b'a' + r.random_range(0..16u8)))
        .collect()
}

/// `index_kafka_<ds>_<15 hex>`: the group's sequence name, a hash of what the tasks read.
pub fn base_sequence_name(spec: &KafkaSpec, group: u32, start: &StreamOffsets) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    spec.written["spec"].to_string().hash(&mut h);
    group.hash(&mut h);
    start.partitions.hash(&mut h);
    let hex = format!("{:016x}", h.finish());
    format!(
        "index_kafka_{}_{}",
        spec.data_schema.data_source,
        &hex[..15]
    )
}

fn offsets_json(stream: &str, map: &BTreeMap<i32, i64>, kind: &str, exclusive: bool) -> Value {
    let m: serde_json::Map<String, Value> =
        map.iter().map(|(p, o)| (p.to_string(), json!(o))).collect();
    let mut v = json!({"type": kind, "stream": stream, "topic": stream,
        "partitionSequenceNumberMap": m.clone(), "partitionOffsetMap": m});
    if exclusive {
        v["exclusivePartitions"] = json!([]);
    }
    v
}

/// The payload of a reading task, in the shape Druid 33 stores.
pub fn payload(
    spec: &KafkaSpec,
    id: &str,
    base: &str,
    group: u32,
    start: &StreamOffsets,
    end: Option<&StreamOffsets>,
) -> Value {
    let open: BTreeMap<i32, i64> = start.partitions.keys().map(|p| (*p, i64::MAX)).collect();
    let end_map = end.map(|e| e.partitions.clone()).unwrap_or(open);
    let stream = &spec.io.stream;
    let checkpoints = json!({"0": start.partitions.iter().map(|(p, o)| (p.to_string(), json!(o))).collect::<serde_json::Map<_, _>>()});
    let mut context = match &spec.context {
        Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    context.insert("checkpoints".into(), json!(checkpoints.to_string()));
    context.insert("useLineageBasedSegmentAllocation".into(), json!(true));
    context.insert("IS_INCREMENTAL_HANDOFF_SUPPORTED".into(), json!(true));
    context.entry("forceTimeChunkLock").or_insert(json!(true));
    let written = &spec.written;
    json!({
        "type": "index_kafka",
        "id": id,
        "resource": {"availabilityGroup": base, "requiredCapacity": 1},
        "dataSchema": written["dataSchema"],
        "tuningConfig": written["tuningConfig"],
        "ioConfig": {
            "type": "kafka",
            "taskGroupId": group,
            "baseSequenceName": base,
            "startPartitions": offsets_json(stream, &start.partitions, "end", false),
            "endPartitions": offsets_json(stream, &end_map, "end", false),
            "startSequenceNumbers": offsets_json(stream, &start.partitions, "start", true),
            "endSequenceNumbers": offsets_json(stream, &end_map, "end", false),
            "consumerProperties": written["ioConfig"]["consumerProperties"],
            "pollTimeout": written["ioConfig"]["pollTimeout"],
            "useTransaction": true,
            "inputFormat": written["ioConfig"]["inputFormat"],
            "configOverrides": written["ioConfig"]["configOverrides"],
            "multiTopic": spec.io.pattern.is_some(),
        },
        "context": context,
        "groupId": format!("index_kafka_{}", spec.data_schema.data_source),
        "dataSource": spec.data_schema.data_source,
    })
}

/// The task API's view of a reading task (no realtime parts).
pub fn task_spec(id: &str, data_source: &str, payload: Value) -> TaskSpec {
    TaskSpec {
        kind: TaskKind::IndexKafka,
        id: id.to_owned(),
        data_source: data_source.to_owned(),
        group_id: format!("index_kafka_{data_source}"),
        metrics: Vec::new(),
        segment_granularity: Granularity::None,
        query_granularity: Granularity::None,
        rollup: true,
        firehose: Firehose {
            clip: None,
            shutoff: None,
            service_name: String::new(),
            buffer_size: 0,
            max_idle: None,
        },
        window_period: 0,
        rejection: Rejection::None,
        partition_num: 0,
        schema: Err("an index_kafka task is run by its supervisor".into()),
        payload,
    }
}

/// Restores a reading task's record after a restart.
pub fn parse_stored(v: &Value) -> Result<TaskSpec, String> {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .ok_or("index_kafka record without id")?;
    let ds = v
        .get("dataSource")
        .or_else(|| v.pointer("/dataSchema/dataSource"))
        .and_then(Value::as_str)
        .ok_or("index_kafka record without dataSource")?;
    Ok(task_spec(id, ds, v.clone()))
}
