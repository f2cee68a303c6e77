//! The Kafka supervisor spec: validation with the 400s Druid answers at submit (the first line
//! of Jackson's message, as Druid 33.0.0 gives them) and the spec as Druid writes it back
//! (defaults filled in, durations as `PT<seconds>S`, the three sections repeated at the top).

use crate::ingest::{jackson, DataSchema};
use crate::time::{self, Millis, Period};
use crate::version::DruidVersion;
use regex::Regex;
use serde_json::{json, Map, Value};

const SUPERVISOR_CLASS: &str = "org.apache.druid.indexing.overlord.supervisor.SupervisorSpec";
const SPEC_CLASS: &str = "org.apache.druid.indexing.kafka.supervisor.KafkaSupervisorSpec";
const INGESTION_CLASS: &str =
    "org.apache.druid.indexing.kafka.supervisor.KafkaSupervisorIngestionSpec";
const IO_CLASS: &str = "org.apache.druid.indexing.kafka.supervisor.KafkaSupervisorIOConfig";
const TUNING_CLASS: &str = "org.apache.druid.indexing.kafka.supervisor.KafkaSupervisorTuningConfig";

/// How input records are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// `inputFormat` json, or a legacy `string` parser with a json parseSpec.
    Json,
    /// Something a reading task cannot run: it fails with this message (Druid accepts the
    /// spec and fails its tasks too).
    Unusable(String),
}

/// A validated `ioConfig`.
#[derive(Debug, Clone)]
pub struct KafkaIo {
    /// `topic` (or the text of `topicPattern`): Druid's `stream`.
    pub stream: String,
    /// `topicPattern`, compiled to match whole topic names.
    pub pattern: Option<Regex>,
    /// How records are parsed (`None` only while the spec is being read).
    pub format: Option<Format>,
    /// Client properties (`bootstrap.servers` at least).
    pub consumer_properties: Map<String, Value>,
    /// Tasks reading the same partitions.
    pub replicas: u32,
    /// Task groups.
    pub task_count: u32,
    /// How long a task reads before it publishes, in millis.
    pub task_duration: Millis,
    /// Delay before the first run.
    pub start_delay: Millis,
    /// Period of the supervisor's runs.
    pub period: Millis,
    /// Start from the earliest offset when nothing is stored.
    pub use_earliest: bool,
    /// `pollTimeout` in millis.
    pub poll_timeout: u64,
    /// Rows older than group start minus this are thrown away.
    pub late_rejection: Option<Millis>,
    /// Rows newer than group start plus task duration plus this are thrown away.
    pub early_rejection: Option<Millis>,
    /// Rows older than this instant are thrown away.
    pub late_rejection_start: Option<Millis>,
}

/// A validated supervisor spec.
#[derive(Debug, Clone)]
pub struct KafkaSpec {
    /// Supervisor id: the dataSource, or from 34 the given `id`.
    pub id: String,
    /// The dataSchema.
    pub data_schema: DataSchema,
    /// The ioConfig.
    pub io: KafkaIo,
    /// `tuningConfig.maxParseExceptions`.
    pub max_parse_exceptions: u64,
    /// `tuningConfig.resetOffsetAutomatically`.
    pub reset_offset_automatically: bool,
    /// The `context` object (verbatim), or null.
    pub context: Value,
    /// Whether the supervisor is suspended.
    pub suspended: bool,
    /// The spec as Druid writes it back.
    pub written: Value,
}

impl KafkaSpec {
    /// Whether the task context asks for concurrent (APPEND) locks.
    pub fn concurrent_locks(&self) -> bool {
        let c = &self.context;
        c.get("useConcurrentLocks").and_then(Value::as_bool) == Some(true)
            || c.get("taskLockType").and_then(Value::as_str) == Some("APPEND")
    }

    /// The same spec with `suspended` flipped (what suspend and resume store).
    pub fn with_suspended(&self, suspended: bool) -> KafkaSpec {
        let mut s = self.clone();
        s.suspended = suspended;
        s.written["suspended"] = json!(suspended);
        s
    }

    /// Where stream offsets are stored: the dataSource (up to 33) or the supervisor id.
    pub fn offsets_key(&self) -> &str {
        &self.id
    }
}

/// Why a spec is refused, with the status Druid answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecError {
    /// 400 `{"error": msg}`.
    BadRequest(String),
}

impl From<String> for SpecError {
    fn from(s: String) -> SpecError {
        SpecError::BadRequest(s)
    }
}

fn bad(msg: impl Into<String>) -> SpecError {
    SpecError::BadRequest(msg.into())
}

/// Supervisor type ids the played release knows.
fn known_types(version: &DruidVersion) -> &'static str {
    if version.major() >= 33 {
        "[NoopSupervisorSpec, autocompact, kafka, scheduled_batch]"
    } else if version.major() >= 31 {
        "[NoopSupervisorSpec, autocompact, kafka]"
    } else {
        "[NoopSupervisorSpec, kafka]"
    }
}

/// Validates a POSTed supervisor spec.
pub fn parse(v: &Value, version: &DruidVersion, service: &str) -> Result<KafkaSpec, SpecError> {
    let o = v.as_object().ok_or_else(|| {
        bad(format!(
            "Cannot construct instance of `{SUPERVISOR_CLASS}`: expected a JSON object, got {v}"
        ))
    })?;
    match o.get("type") {
        Some(Value::String(t)) if t == "kafka" => {}
        Some(Value::String(t)) if ["NoopSupervisorSpec", "noop", "autocompact", "scheduled_batch"].contains(&t.as_str()) => {
            return Err(bad(format!("druid-local runs only kafka supervisors, not [{t}]")))
        }
        Some(Value::String(t)) => return Err(bad(format!(
            "Please make sure to load all the necessary extensions and jars with type '{t}' on '{service}' service. \
             Could not resolve type id '{t}' as a subtype of `{SUPERVISOR_CLASS}` known type ids = {}",
            known_types(version)
        ))),
        _ => return Err(bad(format!(
            "Could not resolve subtype of [simple type, class {SUPERVISOR_CLASS}]: missing type id property 'type'"
        ))),
    }
    // `spec` wins over the legacy top-level sections, as in Druid.
    let (sections, via_spec) = match o.get("spec") {
        Some(Value::Object(s)) => (s, true),
        Some(Value::Null) | None => (o, false),
        Some(other) => {
            return Err(bad(format!(
            "Cannot construct instance of `{INGESTION_CLASS}`: expected a JSON object, got {other}"
        )))
        }
    };
    let chain = |field: &str| {
        let mut c = format!("{SPEC_CLASS}[\"");
        if via_spec {
            c.push_str(&format!("spec\"]->{INGESTION_CLASS}[\""));
        }
        c.push_str(field);
        c.push_str("\"]");
        c
    };
    // Sections are read in document order, so the first bad one names the error.
    let mut data_schema = None;
    let mut io = None;
    let mut tuning = None;
    for (k, val) in sections {
        match k.as_str() {
            "dataSchema" if !val.is_null() => data_schema = Some(DataSchema::parse(val)?),
            "ioConfig" if !val.is_null() => io = Some(parse_io(val, &chain("ioConfig"))?),
            "tuningConfig" if !val.is_null() => tuning = Some(parse_tuning(val)?),
            _ => {}
        }
    }
    let data_schema = data_schema.ok_or_else(|| {
        bad(format!(
            "Cannot construct instance of `{SPEC_CLASS}`, problem: dataSchema"
        ))
    })?;
    let (io, io_written) = io.ok_or_else(|| {
        bad(format!(
            "Cannot construct instance of `{SPEC_CLASS}`, problem: ioConfig"
        ))
    })?;
    let (max_parse_exceptions, reset_offset_automatically, tuning_written) = match tuning {
        Some(t) => t,
        None => parse_tuning(&json!({"type": "kafka"}))?,
    };
    let mut io = io;
    if io.format.is_none() {
        io.format = Some(legacy_parser(data_schema.written().get("parser")));
    }
    let context = o.get("context").cloned().unwrap_or(Value::Null);
    let suspended = o.get("suspended").and_then(Value::as_bool).unwrap_or(false);
    let id = if version.supervisor_id_and_stream_lock() {
        match o.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => data_schema.data_source.clone(),
        }
    } else {
        data_schema.data_source.clone()
    };
    let ds_written = data_schema.written().clone();
    let mut written = Map::new();
    written.insert("type".into(), json!("kafka"));
    if version.supervisor_id_and_stream_lock() {
        written.insert("id".into(), json!(id));
    }
    written.insert(
        "spec".into(),
        json!({"dataSchema": ds_written, "ioConfig": io_written, "tuningConfig": tuning_written}),
    );
    written.insert("dataSchema".into(), ds_written);
    written.insert("tuningConfig".into(), tuning_written);
    written.insert("ioConfig".into(), io_written);
    written.insert("context".into(), context.clone());
    written.insert("suspended".into(), json!(suspended));
    Ok(KafkaSpec {
        id,
        data_schema,
        io,
        max_parse_exceptions,
        reset_offset_automatically,
        context,
        suspended,
        written: Value::Object(written),
    })
}

/// A legacy `parser` (used only when `inputFormat` is null).
fn legacy_parser(parser: Option<&Value>) -> Format {
    let Some(p) = parser.filter(|p| !p.is_null()) else {
        return Format::Unusable(
            "inputFormat is null and the dataSchema has no parser: nothing can read the records"
                .into(),
        );
    };
    let ty = p.get("type").and_then(Value::as_str).unwrap_or("string");
    let fmt = p
        .get("parseSpec")
        .and_then(|s| s.get("format"))
        .and_then(Value::as_str)
        .unwrap_or("json");
    if ty == "string" && fmt == "json" {
        Format::Json
    } else {
        Format::Unusable(format!(
            "druid-local reads streams with inputFormat json, or a `string` parser with a json parseSpec; got parser [{ty}] with parseSpec format [{fmt}]"
        ))
    }
}

fn period_at(v: &Value, field: &str, chain: &str) -> Result<Option<Period>, SpecError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Period::parse(s).map(Some).map_err(|e| {
            bad(format!(
                "Invalid format: \"{s}\" is malformed ({e}) (through reference chain: {chain}->{IO_CLASS}[\"{field}\"])"
            ))
        }),
        // Jackson reads a number as a period of that many millis.
        Value::Number(n) => {
            let ms = n.as_i64().unwrap_or(0).clamp(-(i32::MAX as i64) * 1000, i32::MAX as i64 * 1000);
            Ok(Some(Period {
                seconds: (ms / 1000) as i32,
                millis: (ms % 1000) as i32,
                ..Period::default()
            }))
        }
        other => Err(bad(format!("Cannot deserialize value of type `org.joda.time.Period` from {other} (through reference chain: {chain}->{IO_CLASS}[\"{field}\"])"))),
    }
}

fn millis_of(p: &Period, field: &str) -> Result<Millis, SpecError> {
    p.fixed_millis().ok_or_else(|| {
        bad(format!(
            "Cannot convert period [{p}] of [{field}] to a duration: it has years or months"
        ))
    })
}

/// Validates `ioConfig` as `KafkaSupervisorIOConfig`'s constructor does, and writes it back.
fn parse_io(v: &Value, chain: &str) -> Result<(KafkaIo, Value), SpecError> {
    let o = v.as_object().ok_or_else(|| {
        bad(format!(
            "Cannot construct instance of `{IO_CLASS}`: expected a JSON object, got {v}"
        ))
    })?;
    let problem = |msg: &str| {
        bad(format!(
            "Cannot construct instance of `{IO_CLASS}`, problem: {msg}"
        ))
    };
    let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
    let topic = text("topic");
    let topic_pattern = text("topicPattern");
    let stream = match (&topic, &topic_pattern) {
        (None, None) => return Err(problem("Either topic or topicPattern must be specified")),
        (Some(t), Some(p)) => {
            return Err(problem(&format!(
                "Only one of topic [{t}] or topicPattern [{p}] must be specified"
            )))
        }
        (Some(t), None) => t.clone(),
        (None, Some(p)) => p.clone(),
    };
    let pattern = match &topic_pattern {
        Some(p) => Some(
            Regex::new(&format!("^(?:{p})$"))
                .map_err(|e| problem(&format!("Invalid topicPattern [{p}]: {e}")))?,
        ),
        None => None,
    };
    let null = Value::Null;
    let get = |k: &str| o.get(k).unwrap_or(&null);
    let periods = [
        "taskDuration",
        "startDelay",
        "period",
        "completionTimeout",
        "lateMessageRejectionPeriod",
        "earlyMessageRejectionPeriod",
    ];
    let mut p = std::collections::HashMap::new();
    for f in periods {
        p.insert(f, period_at(get(f), f, chain)?);
    }
    let dur = |f: &str, default: Millis| -> Result<Millis, SpecError> {
        match &p[f] {
            Some(per) => millis_of(per, f),
            None => Ok(default),
        }
    };
    let task_duration = dur("taskDuration", 3_600_000)?;
    let start_delay = dur("startDelay", 5_000)?;
    let period = dur("period", 30_000)?;
    let completion_timeout = dur("completionTimeout", 1_800_000)?;
    let late = match &p["lateMessageRejectionPeriod"] {
        Some(per) => Some(millis_of(per, "lateMessageRejectionPeriod")?),
        None => None,
    };
    let early = match &p["earlyMessageRejectionPeriod"] {
        Some(per) => Some(millis_of(per, "earlyMessageRejectionPeriod")?),
        None => None,
    };
    let late_start = match get("lateMessageRejectionStartDateTime") {
        Value::Null => None,
        x => Some(time::parse_instant(x).ok_or_else(|| {
            bad(format!("Cannot deserialize value of type `org.joda.time.DateTime` from {x} (through reference chain: {chain}->{IO_CLASS}[\"lateMessageRejectionStartDateTime\"])"))
        })?),
    };
    if late.is_some() && late_start.is_some() {
        return Err(problem("SeekableStreamSupervisorIOConfig does not support both properties lateMessageRejectionStartDateTime and lateMessageRejectionPeriod."));
    }
    let consumer_properties = match get("consumerProperties") {
        Value::Object(m) => m.clone(),
        Value::Null => return Err(problem("consumerProperties")),
        other => return Err(bad(format!("Cannot deserialize value of type `java.util.Map` from {other} (through reference chain: {chain}->{IO_CLASS}[\"consumerProperties\"])"))),
    };
    if consumer_properties
        .get("bootstrap.servers")
        .is_none_or(Value::is_null)
    {
        return Err(problem(
            "consumerProperties must contain entry for [bootstrap.servers]",
        ));
    }
    let int = |k: &str, default: i64| -> Result<i64, SpecError> {
        match get(k) {
            Value::Null => Ok(default),
            Value::Number(n) => n.as_i64().ok_or_else(|| bad(format!("{k} must be an integer, got {n}"))),
            Value::String(s) => s.trim().parse().map_err(|_| bad(format!("Cannot deserialize value of type `java.lang.Integer` from String \"{s}\": not a valid `java.lang.Integer` value (through reference chain: {chain}->{IO_CLASS}[\"{k}\"])"))),
            other => Err(bad(format!("{k} must be an integer, got {other}"))),
        }
    };
    let replicas = int("replicas", 1)?;
    let task_count = int("taskCount", 1)?;
    let poll_timeout = int("pollTimeout", 100)?;
    let use_earliest = get("useEarliestOffset").as_bool().unwrap_or(false);
    let input_format = get("inputFormat");
    let format = match input_format {
        Value::Null => None,
        Value::Object(f) => match f.get("type").and_then(Value::as_str) {
            Some("json") => Some(Format::Json),
            Some(t) => return Err(bad(format!("druid-local reads streams with inputFormat json only, not [{t}]"))),
            None => return Err(bad("Could not resolve subtype of [simple type, class org.apache.druid.data.input.InputFormat]: missing type id property 'type' (for POJO property 'inputFormat')")),
        },
        other => return Err(bad(format!("inputFormat must be an object, got {other}"))),
    };
    let format_written = match input_format {
        Value::Object(f) => Value::Object(
            f.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => Value::Null,
    };
    let opt_dur = |m: Option<Millis>| m.map(jackson::duration);
    let written = json!({
        "topic": topic,
        "topicPattern": topic_pattern,
        "inputFormat": format_written,
        "replicas": replicas,
        "taskCount": task_count,
        "taskDuration": jackson::duration(task_duration),
        "consumerProperties": consumer_properties,
        "autoScalerConfig": get("autoScalerConfig"),
        "pollTimeout": poll_timeout,
        "startDelay": jackson::duration(start_delay),
        "period": jackson::duration(period),
        "useEarliestOffset": use_earliest,
        "completionTimeout": jackson::duration(completion_timeout),
        "lateMessageRejectionPeriod": opt_dur(late),
        "earlyMessageRejectionPeriod": opt_dur(early),
        "lateMessageRejectionStartDateTime": late_start.map(time::iso),
        "configOverrides": get("configOverrides"),
        "idleConfig": get("idleConfig"),
        "stopTaskCount": get("stopTaskCount"),
        "emitTimeLagMetrics": get("emitTimeLagMetrics").as_bool().unwrap_or(false),
        "stream": stream,
        "useEarliestSequenceNumber": use_earliest,
    });
    let io = KafkaIo {
        stream,
        pattern,
        format,
        consumer_properties,
        replicas: u32::try_from(replicas.max(0)).unwrap_or(0),
        task_count: u32::try_from(task_count.max(0)).unwrap_or(0),
        task_duration,
        start_delay,
        period,
        use_earliest,
        poll_timeout: u64::try_from(poll_timeout.max(1)).unwrap_or(100),
        late_rejection: late,
        early_rejection: early,
        late_rejection_start: late_start,
    };
    Ok((io, written))
}

/// Validates `tuningConfig` (its `type` must be `kafka`) and writes it back with Druid 33's
/// defaults; returns `maxParseExceptions` and `resetOffsetAutomatically`.
fn parse_tuning(v: &Value) -> Result<(u64, bool, Value), SpecError> {
    let o = v.as_object().ok_or_else(|| {
        bad(format!(
            "Cannot construct instance of `{TUNING_CLASS}`: expected a JSON object, got {v}"
        ))
    })?;
    match o.get("type").and_then(Value::as_str) {
        Some("kafka") => {}
        Some(t) => return Err(bad(format!("Could not resolve type id '{t}' as a subtype of `{TUNING_CLASS}`: known type ids = [kafka] (for POJO property 'tuningConfig')"))),
        None => return Err(bad(format!("Could not resolve subtype of [simple type, class {TUNING_CLASS}]: missing type id property 'type' (for POJO property 'tuningConfig')"))),
    }
    let index_spec = json!({"bitmap": {"type": "roaring"}, "dimensionCompression": "lz4",
        "stringDictionaryEncoding": {"type": "utf8"}, "metricCompression": "lz4", "longEncoding": "longs"});
    let defaults: [(&str, Value); 29] = [
        ("type", json!("kafka")),
        (
            "appendableIndexSpec",
            json!({"type": "onheap", "preserveExistingMetrics": false}),
        ),
        ("maxRowsInMemory", json!(150000)),
        ("maxBytesInMemory", json!(0)),
        ("skipBytesInMemoryOverheadCheck", json!(false)),
        ("maxRowsPerSegment", json!(5000000)),
        ("maxTotalRows", Value::Null),
        ("intermediatePersistPeriod", json!("PT10M")),
        ("maxPendingPersists", json!(0)),
        ("indexSpec", index_spec.clone()),
        ("indexSpecForIntermediatePersists", index_spec),
        ("reportParseExceptions", json!(false)),
        ("handoffConditionTimeout", json!(900000)),
        ("resetOffsetAutomatically", json!(false)),
        ("segmentWriteOutMediumFactory", Value::Null),
        ("workerThreads", Value::Null),
        ("chatRetries", json!(8)),
        ("httpTimeout", json!("PT10S")),
        ("shutdownTimeout", json!("PT80S")),
        ("offsetFetchPeriod", json!("PT30S")),
        ("intermediateHandoffPeriod", json!("P2147483647D")),
        ("logParseExceptions", json!(false)),
        ("maxParseExceptions", json!(2147483647)),
        ("maxSavedParseExceptions", json!(0)),
        ("numPersistThreads", json!(1)),
        ("maxColumnsToMerge", json!(-1)),
        ("skipSequenceNumberAvailabilityCheck", json!(false)),
        ("repartitionTransitionDuration", json!("PT120S")),
        ("", Value::Null),
    ];
    let periods = [
        "intermediatePersistPeriod",
        "httpTimeout",
        "shutdownTimeout",
        "offsetFetchPeriod",
        "intermediateHandoffPeriod",
        "repartitionTransitionDuration",
    ];
    let mut out = Map::new();
    for (k, default) in defaults.into_iter().filter(|(k, _)| !k.is_empty()) {
        let value = match o.get(k) {
            Some(Value::Null) | None => default,
            Some(Value::String(s)) if periods.contains(&k) => {
                json!(jackson::period(s).map_err(|e| bad(format!("Invalid format: \"{s}\" is malformed ({e}) (through reference chain: {TUNING_CLASS}[\"{k}\"])")))?)
            }
            Some(given) => given.clone(),
        };
        out.insert(k.to_owned(), value);
    }
    // Druid derives these when only one is given.
    if o.get("reportParseExceptions").and_then(Value::as_bool) == Some(true) {
        out.insert("maxParseExceptions".into(), json!(0));
        out.insert("maxSavedParseExceptions".into(), json!(0));
    }
    let max_parse = out["maxParseExceptions"].as_u64().unwrap_or(u64::MAX);
    let reset_auto = out["resetOffsetAutomatically"].as_bool().unwrap_or(false);
    Ok((max_parse, reset_auto, Value::Object(out)))
}

/// The tombstone Druid stores when a supervisor is terminated.
pub fn tombstone(data_source: &str) -> Value {
    json!({"type": "noop", "id": null, "dataSources": [data_source], "suspended": false, "source": "noop"})
}

/// 34+: a running supervisor's topic may not change (`validateSpecUpdateTo`).
pub fn check_update(old: &KafkaSpec, new: &KafkaSpec) -> Result<(), String> {
    if old.io.stream != new.io.stream || old.io.pattern.is_some() != new.io.pattern.is_some() {
        let kind = |s: &KafkaSpec| {
            if s.io.pattern.is_some() {
                "multi-topic"
            } else {
                "single-topic"
            }
        };
        let (from, to) = if old.io.pattern.is_some() != new.io.pattern.is_some() {
            (
                format!("({}) {}", kind(old), old.io.stream),
                format!("({}) {}", kind(new), new.io.stream),
            )
        } else {
            (old.io.stream.clone(), new.io.stream.clone())
        };
        return Err(format!(
            "Update of the input source stream from [{from}] to [{to}] is not supported for a running supervisor.\
             \nTo perform the update safely, follow these steps:\
             \n(1) Suspend this supervisor, reset its offsets and then terminate it. \
             \n(2) Create a new supervisor with the new input source stream.\
             \nNote that doing the reset can cause data duplication or loss if any topic used in the old supervisor is included in the new one too."
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v33() -> DruidVersion {
        "33.0.0".parse().unwrap()
    }

    fn spec() -> Value {
        json!({"type": "kafka", "spec": {
            "dataSchema": {"dataSource": "wiki", "timestampSpec": {"column": "timestamp"},
                "dimensionsSpec": {"dimensions": []}},
            "ioConfig": {"topic": "t", "consumerProperties": {"bootstrap.servers": "b:9092"},
                "inputFormat": {"type": "json"}, "taskDuration": "PT1H"}}})
    }

    fn err(v: &Value) -> String {
        match parse(v, &v33(), "druid/overlord") {
            Err(SpecError::BadRequest(m)) => m,
            Ok(_) => panic!("accepted {v}"),
        }
    }

    #[test]
    fn druid_33s_submit_errors() {
        let mut s = spec();
        s["spec"]["ioConfig"]
            .as_object_mut()
            .unwrap()
            .remove("topic");
        assert_eq!(err(&s), "Cannot construct instance of `org.apache.druid.indexing.kafka.supervisor.KafkaSupervisorIOConfig`, problem: Either topic or topicPattern must be specified");
        let mut s = spec();
        s["spec"]["ioConfig"]["topicPattern"] = json!("t.*");
        assert!(err(&s).ends_with("Only one of topic [t] or topicPattern [t.*] must be specified"));
        let mut s = spec();
        s["spec"]["ioConfig"]["consumerProperties"] = json!({});
        assert!(err(&s).ends_with("consumerProperties must contain entry for [bootstrap.servers]"));
        let mut s = spec();
        s["spec"]["ioConfig"]["lateMessageRejectionPeriod"] = json!("PT1H");
        s["spec"]["ioConfig"]["lateMessageRejectionStartDateTime"] = json!("2020-01-01T00:00:00Z");
        assert!(err(&s).ends_with("does not support both properties lateMessageRejectionStartDateTime and lateMessageRejectionPeriod."));
        let mut s = spec();
        s["spec"]["tuningConfig"] = json!({"maxRowsInMemory": 1});
        assert_eq!(err(&s), "Could not resolve subtype of [simple type, class org.apache.druid.indexing.kafka.supervisor.KafkaSupervisorTuningConfig]: missing type id property 'type' (for POJO property 'tuningConfig')");
        let mut s = spec();
        s["type"] = json!("kinesis2");
        assert!(err(&s).starts_with("Please make sure to load all the necessary extensions and jars with type 'kinesis2' on 'druid/overlord' service."));
        let mut s = spec();
        s.as_object_mut().unwrap().remove("type");
        assert!(err(&s).ends_with("missing type id property 'type'"));
        let mut s = spec();
        s["spec"].as_object_mut().unwrap().remove("dataSchema");
        assert!(err(&s).ends_with("KafkaSupervisorSpec`, problem: dataSchema"));
    }

    #[test]
    fn written_back_with_defaults_and_legacy_form() {
        let s = parse(&spec(), &v33(), "druid/overlord").unwrap();
        assert_eq!(s.id, "wiki");
        assert_eq!(s.written["spec"]["ioConfig"]["taskDuration"], "PT3600S");
        assert_eq!(s.written["ioConfig"]["stream"], "t");
        assert_eq!(s.written["tuningConfig"]["maxRowsInMemory"], 150000);
        assert_eq!(s.written["context"], Value::Null);
        assert!(s.written.get("id").is_none());
        let legacy = json!({"type": "kafka", "dataSchema": spec()["spec"]["dataSchema"],
            "ioConfig": spec()["spec"]["ioConfig"], "tuningConfig": {"type": "kafka"}});
        let l = parse(&legacy, &v33(), "druid/overlord").unwrap();
        assert_eq!(l.written, s.written);
        let v35: DruidVersion = "35.0.0".parse().unwrap();
        let s35 = parse(&spec(), &v35, "druid/overlord").unwrap();
        assert_eq!(s35.written["id"], "wiki");
    }
}
