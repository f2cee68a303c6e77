//! A dataSource's realtime spec translated for Druid 31+, which has no `index_realtime`: a
//! Kafka supervisor spec (events on a topic, read by Druid's Kafka indexing service) and an
//! `index_parallel` task with an `inline` input source (a micro-batch of events).
//!
//! The dataSchema keeps its meaning: the parser's `timestampSpec` and `dimensionsSpec` move to
//! the top of `dataSchema` (Druid 0.17's layout), `metricsSpec`, `granularitySpec` and
//! `transformSpec` stay, and the parser's `flattenSpec` goes where the events are read. What
//! only realtime tasks understand (`windowPeriod`, `rejectionPolicy`, `shardSpec`,
//! `versioningPolicy`, ...) is dropped from the tuning; the window stays a client-side drop,
//! and a supervisor also gets it as late/early message rejection, as a backstop.
//!
//! Events reach Druid as Tranquility holds them, JSON objects, whatever format the producer
//! posted (text lines are parsed into objects first), so the input format is `json`
//! ([`EventFormat::Json`]). Those events are already flat (the pipeline applies the
//! flattenSpec as they come in, see [`crate::event::flatten`]), so that `inputFormat` carries
//! no flattenSpec: flattening them again would look for nested fields that are gone. A
//! supervisor on a user's own topic reads the messages as they are and takes the format,
//! flattenSpec included, from the parseSpec instead ([`EventFormat::AsParseSpec`]).

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::spec::{DataSchema, TuningConfig};
use crate::time::{format_iso_millis, Interval, Period};

/// The `context` key holding the hash of the spec Tranquility last posted.
pub const SPEC_HASH_KEY: &str = "tranquility.specSha256";

/// Tuning fields that only realtime tasks read; Druid would ignore them elsewhere, so they
/// are dropped rather than carried as noise.
const REALTIME_ONLY_TUNING: &[&str] = &[
    "type",
    "windowPeriod",
    "rejectionPolicy",
    "rejectionPolicyFactory",
    "shardSpec",
    "versioningPolicy",
    "buildV9Directly",
    "basePersistDirectory",
    "persistThreadPriority",
    "mergeThreadPriority",
    "handoffConditionTimeout",
    "alertTimeout",
];

/// Why a spec cannot be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dataSource '{data_source}' cannot be ingested on Druid 31+: {reason}")]
pub struct TranslateError {
    /// The dataSource.
    pub data_source: String,
    /// What cannot be expressed.
    pub reason: String,
}

/// How the events Druid reads are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFormat {
    /// JSON objects, as Tranquility forwards every event: already flattened.
    Json,
    /// The format the parseSpec describes (`json` with its flattenSpec, `csv`, `tsv`): a
    /// user's own topic, read by Druid as the producers wrote it.
    AsParseSpec,
}

/// What a Kafka supervisor needs beyond the dataSource's spec.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorSettings {
    /// The topic Druid reads.
    pub topic: String,
    /// Consumer properties for Druid's reader; must hold `bootstrap.servers`.
    pub consumer_properties: Map<String, Value>,
    /// Reading task groups (`taskCount`), from `task.partitions`.
    pub task_count: u32,
    /// Replicas of each group, from `task.replicants`.
    pub replicas: u32,
    /// `taskDuration`; Druid's default (`PT1H`) when `None`.
    pub task_duration: Option<Period>,
    /// Whether a supervisor without stored offsets starts at the earliest ones (events may
    /// be produced before Druid's first read).
    pub use_earliest_offset: bool,
    /// How the messages on the topic are written.
    pub format: EventFormat,
}

/// Lock settings of a batch append, by what the Druid version offers (reference:
/// `modern-druid.md` 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchLocks {
    /// `useConcurrentLocks` (Druid 29+): appends coexist with each other, with a supervisor's
    /// tasks and with compaction.
    Concurrent,
    /// `useSharedLock` (0.23+): appends coexist with each other.
    Shared,
}

/// Whether a batch adds to an interval or replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchMode {
    /// `appendToExisting: true`: new segments beside the old ones.
    Append,
    /// `appendToExisting: false`: new segments overshadow the interval's old ones.
    Replace,
}

/// The dataSchema of a 31+ spec: parser fields lifted to the top, the rest unchanged.
pub fn modern_data_schema(schema: &DataSchema) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("dataSource".into(), json!(schema.data_source));
    out.insert("timestampSpec".into(), to_value(&schema.timestamp_spec()));
    out.insert("dimensionsSpec".into(), to_value(&schema.dimensions_spec()));
    out.insert("metricsSpec".into(), to_value(&schema.metrics_spec));
    let mut granularity = to_value(&schema.granularity_spec);
    if let Some(g) = granularity.as_object_mut() {
        // Realtime specs carry no intervals; a batch sets its own.
        g.remove("intervals");
    }
    out.insert("granularitySpec".into(), granularity);
    if let Some(t) = &schema.transform_spec {
        out.insert("transformSpec".into(), t.clone());
    }
    for (key, value) in &schema.extra {
        out.entry(key.clone()).or_insert_with(|| value.clone());
    }
    out
}

/// The `inputFormat` for events written as `format` says.
pub fn input_format(schema: &DataSchema, format: EventFormat) -> Result<Value, TranslateError> {
    let fail = |reason: String| TranslateError {
        data_source: schema.data_source.clone(),
        reason,
    };
    let parse_spec = schema.parser.as_ref().map(|p| &p.parse_spec);
    let flatten = parse_spec.and_then(|p| p.extra.get("flattenSpec")).cloned();
    let declared = parse_spec
        .and_then(|p| p.format.as_deref())
        .unwrap_or("json")
        .to_ascii_lowercase();
    let kind = match format {
        EventFormat::Json => "json".to_string(),
        EventFormat::AsParseSpec => declared,
    };
    let mut out = Map::new();
    match kind.as_str() {
        "json" => {
            out.insert("type".into(), json!("json"));
            // Events Tranquility forwards were flattened on their way in.
            if let (EventFormat::AsParseSpec, Some(f)) = (format, flatten) {
                out.insert("flattenSpec".into(), f);
            }
        }
        "csv" | "tsv" => {
            let spec =
                parse_spec.ok_or_else(|| fail(format!("a {kind} topic needs a parseSpec")))?;
            out.insert("type".into(), json!(kind));
            for key in ["columns", "listDelimiter", "delimiter", "skipHeaderRows"] {
                if let Some(v) = spec.extra.get(key) {
                    out.insert(key.into(), v.clone());
                }
            }
            if let Some(v) = spec.extra.get("hasHeaderRow") {
                out.insert("findColumnsFromHeader".into(), v.clone());
            }
        }
        other => {
            return Err(fail(format!(
                "parseSpec.format '{other}' has no inputFormat translation; post the events \
                 as JSON through Tranquility, or write the supervisor spec by hand"
            )))
        }
    }
    Ok(Value::Object(out))
}

/// The tuning fields that carry over from a realtime `tuningConfig`, under `kind`.
fn modern_tuning(tuning: &TuningConfig, kind: &str) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("type".into(), json!(kind));
    if let Value::Object(user) = to_value(tuning) {
        for (key, value) in user {
            if !REALTIME_ONLY_TUNING.contains(&key.as_str()) {
                out.insert(key, value);
            }
        }
    }
    out
}

/// The Kafka supervisor spec of a dataSource, with the hash of everything but that hash in
/// its `context` (a later run compares it instead of Druid's re-serialised spec).
pub fn supervisor_spec(
    schema: &DataSchema,
    tuning: &TuningConfig,
    settings: &SupervisorSettings,
) -> Result<Value, TranslateError> {
    if !settings
        .consumer_properties
        .contains_key("bootstrap.servers")
    {
        return Err(TranslateError {
            data_source: schema.data_source.clone(),
            reason: "the supervisor's consumer properties need bootstrap.servers".into(),
        });
    }
    let window = tuning.window_period().to_string();
    let mut io = Map::new();
    io.insert("topic".into(), json!(settings.topic));
    io.insert("inputFormat".into(), input_format(schema, settings.format)?);
    io.insert(
        "consumerProperties".into(),
        Value::Object(settings.consumer_properties.clone()),
    );
    io.insert("taskCount".into(), json!(settings.task_count.max(1)));
    io.insert("replicas".into(), json!(settings.replicas.max(1)));
    if let Some(d) = settings.task_duration {
        io.insert("taskDuration".into(), json!(d.to_string()));
    }
    io.insert(
        "useEarliestOffset".into(),
        json!(settings.use_earliest_offset),
    );
    io.insert("lateMessageRejectionPeriod".into(), json!(window));
    io.insert("earlyMessageRejectionPeriod".into(), json!(window));
    let mut spec = json!({
        "type": "kafka",
        "spec": {
            "dataSchema": modern_data_schema(schema),
            "ioConfig": io,
            "tuningConfig": modern_tuning(tuning, "kafka"),
        },
        "suspended": false,
    });
    let hash = spec_hash(&spec);
    spec["context"] = json!({ SPEC_HASH_KEY: hash });
    Ok(spec)
}

/// A micro-batch of `rows` (newline-delimited JSON objects) for `interval`, as an
/// `index_parallel` task with an inline input source. Rows outside `interval` are thrown
/// away by Druid and counted in the task's report.
pub fn batch_task(
    schema: &DataSchema,
    tuning: &TuningConfig,
    id: &str,
    interval: Interval,
    rows: &str,
    mode: BatchMode,
    locks: BatchLocks,
) -> Result<Value, TranslateError> {
    let context = match locks {
        BatchLocks::Concurrent => json!({"useConcurrentLocks": true}),
        BatchLocks::Shared => json!({"useSharedLock": true}),
    };
    index_task(
        schema,
        tuning,
        id,
        interval,
        json!({"type": "inline", "data": rows}),
        EventFormat::Json,
        mode,
        context,
    )
}

/// An `index_parallel` task reading `input_source` (any Druid input source: `inline`,
/// `local`, `http`, `s3`, ...) written as `format` says, into `interval`, with the task
/// `context` given (its lock settings). Rows outside `interval` are thrown away by Druid and
/// counted in the task's report; a bad row is a counted drop, never a failed task.
#[allow(clippy::too_many_arguments)]
pub fn index_task(
    schema: &DataSchema,
    tuning: &TuningConfig,
    id: &str,
    interval: Interval,
    input_source: Value,
    format: EventFormat,
    mode: BatchMode,
    context: Value,
) -> Result<Value, TranslateError> {
    let mut data_schema = modern_data_schema(schema);
    if let Some(Value::Object(g)) = data_schema.get_mut("granularitySpec") {
        g.insert(
            "intervals".into(),
            json!([format!(
                "{}/{}",
                format_iso_millis(interval.start),
                format_iso_millis(interval.end)
            )]),
        );
    }
    let mut tuning = modern_tuning(tuning, "index_parallel");
    // A realtime spec may carry maxRowsPerSegment; appends need dynamic partitions.
    let max_rows = tuning
        .remove("maxRowsPerSegment")
        .unwrap_or_else(|| json!(5_000_000));
    tuning.insert(
        "partitionsSpec".into(),
        json!({"type": "dynamic", "maxRowsPerSegment": max_rows}),
    );
    tuning.insert("maxParseExceptions".into(), json!(i32::MAX));
    tuning
        .entry("maxSavedParseExceptions")
        .or_insert_with(|| json!(100));
    tuning.insert("maxNumConcurrentSubTasks".into(), json!(1));
    Ok(json!({
        "type": "index_parallel",
        "id": id,
        "spec": {
            "dataSchema": data_schema,
            "ioConfig": {
                "type": "index_parallel",
                "inputSource": input_source,
                "inputFormat": input_format(schema, format)?,
                "appendToExisting": mode == BatchMode::Append,
                "dropExisting": false,
            },
            "tuningConfig": tuning,
        },
        "context": context,
    }))
}

/// The SHA-256 of `spec`'s canonical JSON (object keys sorted, `context` left out), in hex.
pub fn spec_hash(spec: &Value) -> String {
    let mut copy = spec.clone();
    if let Some(o) = copy.as_object_mut() {
        o.remove("context");
    }
    let mut text = String::new();
    canonical(&copy, &mut text);
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `value` as JSON with every object's keys in sorted order.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    // The spec types serialize infallibly (plain maps, strings and numbers).
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::IngestionSpec;

    fn spec(parse_spec: Value, tuning: Value) -> IngestionSpec {
        serde_json::from_value(json!({
            "dataSchema": {
                "dataSource": "wiki",
                "parser": {"type": "string", "parseSpec": parse_spec},
                "metricsSpec": [{"type": "count", "name": "count"},
                                {"type": "longSum", "name": "added", "fieldName": "added"}],
                "granularitySpec": {"type": "uniform", "segmentGranularity": "hour",
                                    "queryGranularity": "minute"},
                "transformSpec": {"transforms": [{"type": "expression", "name": "p2",
                                                  "expression": "concat(page, '!')"}]}
            },
            "tuningConfig": tuning
        }))
        .unwrap()
    }

    fn json_wiki() -> IngestionSpec {
        spec(
            json!({"format": "json",
                   "timestampSpec": {"column": "ts", "format": "iso"},
                   "dimensionsSpec": {"dimensions": ["page", {"type": "long", "name": "n"}],
                                      "spatialDimensions": [{"dimName": "geo", "dims": ["lat", "lon"]}]},
                   "flattenSpec": {"useFieldDiscovery": true,
                                   "fields": [{"type": "path", "name": "city", "expr": "$.where.city"}]}}),
            json!({"type": "realtime", "windowPeriod": "PT5M", "maxRowsInMemory": 5000,
                   "intermediatePersistPeriod": "PT1M", "rejectionPolicy": {"type": "none"},
                   "buildV9Directly": true, "maxRowsPerSegment": 1000}),
        )
    }

    fn settings() -> SupervisorSettings {
        let mut props = Map::new();
        props.insert("bootstrap.servers".into(), json!("k1:9092"));
        SupervisorSettings {
            topic: "tranquility-wiki".into(),
            consumer_properties: props,
            task_count: 2,
            replicas: 1,
            task_duration: None,
            use_earliest_offset: true,
            format: EventFormat::Json,
        }
    }

    #[test]
    fn supervisor_spec_lifts_the_parser_and_keeps_the_schema() {
        let s = json_wiki();
        let out = supervisor_spec(&s.data_schema, &s.tuning_config, &settings()).unwrap();
        let ds = &out["spec"]["dataSchema"];
        assert_eq!(
            ds["timestampSpec"],
            json!({"column": "ts", "format": "iso"})
        );
        assert_eq!(
            ds["dimensionsSpec"]["dimensions"][1],
            json!({"type": "long", "name": "n"})
        );
        assert_eq!(
            ds["dimensionsSpec"]["spatialDimensions"][0]["dimName"],
            "geo"
        );
        assert_eq!(ds["metricsSpec"][1]["fieldName"], "added");
        assert_eq!(ds["granularitySpec"]["queryGranularity"], "MINUTE");
        assert_eq!(ds["transformSpec"]["transforms"][0]["name"], "p2");
        assert!(ds.get("parser").is_none(), "{ds}");
        let io = &out["spec"]["ioConfig"];
        // Forwarded events are flat already: no second flattening.
        assert_eq!(io["inputFormat"], json!({"type": "json"}));
        assert_eq!(
            (io["taskCount"].as_u64(), io["replicas"].as_u64()),
            (Some(2), Some(1))
        );
        assert_eq!(io["lateMessageRejectionPeriod"], "PT5M");
        assert_eq!(io["earlyMessageRejectionPeriod"], "PT5M");
        assert_eq!(io["consumerProperties"]["bootstrap.servers"], "k1:9092");
        let tuning = &out["spec"]["tuningConfig"];
        assert_eq!(tuning["type"], "kafka");
        assert_eq!(tuning["maxRowsInMemory"], 5000);
        for gone in ["windowPeriod", "rejectionPolicy", "buildV9Directly"] {
            assert!(tuning.get(gone).is_none(), "{gone} in {tuning}");
        }
        assert_eq!(out["context"][SPEC_HASH_KEY], json!(spec_hash(&out)));
    }

    #[test]
    fn the_hash_follows_the_spec_not_key_order_or_context() {
        let s = json_wiki();
        let a = supervisor_spec(&s.data_schema, &s.tuning_config, &settings()).unwrap();
        let mut reordered: Map<String, Value> = Map::new();
        for (k, v) in a.as_object().unwrap().iter().rev() {
            reordered.insert(k.clone(), v.clone());
        }
        reordered.insert("context".into(), json!({"other": 1}));
        assert_eq!(spec_hash(&a), spec_hash(&Value::Object(reordered)));
        let mut more = settings();
        more.task_count = 3;
        let b = supervisor_spec(&s.data_schema, &s.tuning_config, &more).unwrap();
        assert_ne!(spec_hash(&a), spec_hash(&b));
    }

    #[test]
    fn a_supervisor_without_brokers_or_a_translatable_format_is_refused() {
        let s = json_wiki();
        let mut no_brokers = settings();
        no_brokers.consumer_properties.clear();
        let e = supervisor_spec(&s.data_schema, &s.tuning_config, &no_brokers).unwrap_err();
        assert!(e.to_string().contains("bootstrap.servers"), "{e}");

        let regex = spec(
            json!({"format": "regex", "pattern": "(.*)", "columns": ["a"]}),
            json!({"type": "realtime"}),
        );
        // Tranquility forwards JSON whatever was posted, so its own topic is fine...
        assert!(supervisor_spec(&regex.data_schema, &regex.tuning_config, &settings()).is_ok());
        // ...but a user's regex topic has no inputFormat to read it with.
        let mut own = settings();
        own.format = EventFormat::AsParseSpec;
        let e = supervisor_spec(&regex.data_schema, &regex.tuning_config, &own).unwrap_err();
        assert!(e.to_string().contains("'regex'"), "{e}");
    }

    /// Events forwarded by Tranquility are flattened once, by the pipeline, and read by Druid
    /// without a flattenSpec; a user's own topic is flattened by Druid.
    #[test]
    fn flattening_happens_once_whichever_side_reads_the_raw_events() {
        let s = json_wiki();
        let spec = &s.data_schema;
        let mut own = settings();
        own.format = EventFormat::AsParseSpec;
        let own = supervisor_spec(spec, &s.tuning_config, &own).unwrap();
        assert_eq!(
            own["spec"]["ioConfig"]["inputFormat"]["flattenSpec"]["fields"][0]["expr"],
            "$.where.city"
        );

        // What the pipeline writes for a nested event is what the forwarded inputFormat
        // (no flattenSpec) reads as is: the flattened field and the discovered ones.
        let reader = crate::event::EventReader::new(spec).unwrap();
        assert!(reader.flattens());
        let event = reader
            .read(crate::event::RawEvent::unchecked(
                r#"{"ts":"2025-12-01T10:00:00Z","page":"a","where":{"city":"Oslo"}}"#,
            ))
            .unwrap();
        let flat: Value = serde_json::from_slice(event.raw()).unwrap();
        assert_eq!(
            flat,
            json!({"city": "Oslo", "ts": "2025-12-01T10:00:00Z", "page": "a"})
        );
        let forwarded = input_format(spec, EventFormat::Json).unwrap();
        assert!(forwarded.get("flattenSpec").is_none(), "{forwarded}");
        let rows = flat.to_string();
        let batch = batch_task(
            spec,
            &s.tuning_config,
            "b",
            Interval::new(0, 1),
            &rows,
            BatchMode::Append,
            BatchLocks::Concurrent,
        )
        .unwrap();
        assert!(batch["spec"]["ioConfig"]["inputFormat"]
            .get("flattenSpec")
            .is_none());
    }

    #[test]
    fn a_csv_topic_reads_with_the_parse_specs_columns() {
        let csv = spec(
            json!({"format": "csv", "columns": ["ts", "page"], "hasHeaderRow": false,
                   "timestampSpec": {"column": "ts"}, "dimensionsSpec": {"dimensions": ["page"]}}),
            json!({"type": "realtime"}),
        );
        let f = input_format(&csv.data_schema, EventFormat::AsParseSpec).unwrap();
        assert_eq!(
            f,
            json!({"type": "csv", "columns": ["ts", "page"], "findColumnsFromHeader": false})
        );
    }

    #[test]
    fn batch_task_appends_inline_rows_for_one_interval() {
        let s = json_wiki();
        let interval = Interval::new(1_764_583_200_000, 1_764_586_800_000);
        let rows = "{\"ts\":\"2025-12-01T10:00:00Z\",\"page\":\"a\"}\n";
        let task = batch_task(
            &s.data_schema,
            &s.tuning_config,
            "tranquility_wiki_1",
            interval,
            rows,
            BatchMode::Append,
            BatchLocks::Concurrent,
        )
        .unwrap();
        assert_eq!(task["type"], "index_parallel");
        assert_eq!(task["id"], "tranquility_wiki_1");
        let spec = &task["spec"];
        assert_eq!(
            spec["dataSchema"]["granularitySpec"]["intervals"],
            json!(["2025-12-01T10:00:00.000Z/2025-12-01T11:00:00.000Z"])
        );
        let io = &spec["ioConfig"];
        assert_eq!(io["inputSource"], json!({"type": "inline", "data": rows}));
        assert_eq!(io["inputFormat"], json!({"type": "json"}));
        assert_eq!(
            (&io["appendToExisting"], &io["dropExisting"]),
            (&json!(true), &json!(false))
        );
        let tuning = &spec["tuningConfig"];
        assert_eq!(
            tuning["partitionsSpec"],
            json!({"type": "dynamic", "maxRowsPerSegment": 1000})
        );
        assert_eq!(tuning["type"], "index_parallel");
        assert!(tuning.get("windowPeriod").is_none());
        assert_eq!(task["context"], json!({"useConcurrentLocks": true}));

        let replace = batch_task(
            &s.data_schema,
            &s.tuning_config,
            "r",
            interval,
            rows,
            BatchMode::Replace,
            BatchLocks::Shared,
        )
        .unwrap();
        assert_eq!(replace["spec"]["ioConfig"]["appendToExisting"], false);
        assert_eq!(replace["context"], json!({"useSharedLock": true}));
    }
}
