//! The `index_realtime` and `index_realtime_appenderator` task specs: mapping and validation at
//! submit time (Druid's 400s), and the parser part that Druid materialises only when the task
//! runs.

use crate::time::{self, Granularity, Interval, Millis, Period};
use serde_json::{Map, Value};

/// Jackson-style class names used in error messages, so they read like Druid's.
const TASK_CLASS: &str = "org.apache.druid.indexing.common.task.Task";
const FIREHOSE_CLASS: &str = "org.apache.druid.data.input.FirehoseFactory";

/// Which realtime task a spec describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// `index_realtime`: plumber with a window period and a rejection policy; the partition
    /// comes from the spec's `shardSpec`, so tasks with the same one are replicas.
    Realtime,
    /// `index_realtime_appenderator`: every row is kept (no window), and each task is
    /// allocated its own partition of each segment interval.
    Appenderator,
    /// `index`: the simple native batch task (see `crate::batch`).
    Index,
    /// `index_parallel`: native batch; an inline input runs sequentially, as in Druid.
    IndexParallel,
    /// `index_kafka`: a Kafka supervisor's reading task (see `crate::supervisor`).
    IndexKafka,
}

impl TaskKind {
    /// Druid's type name.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Realtime => "index_realtime",
            TaskKind::Appenderator => "index_realtime_appenderator",
            TaskKind::Index => "index",
            TaskKind::IndexParallel => "index_parallel",
            TaskKind::IndexKafka => "index_kafka",
        }
    }
}

/// A validated realtime task.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// Task type.
    pub kind: TaskKind,
    /// Task id (given or generated).
    pub id: String,
    /// Target data source.
    pub data_source: String,
    /// `<type>_<dataSource>`.
    pub group_id: String,
    /// Metric columns in spec order.
    pub metrics: Vec<MetricSpec>,
    /// Segment interval granularity.
    pub segment_granularity: Granularity,
    /// Rollup truncation granularity.
    pub query_granularity: Granularity,
    /// Whether equal rows are merged.
    pub rollup: bool,
    /// The firehose chain.
    pub firehose: Firehose,
    /// `tuningConfig.windowPeriod` in milliseconds.
    pub window_period: i64,
    /// `tuningConfig.rejectionPolicy`.
    pub rejection: Rejection,
    /// `tuningConfig.shardSpec.partitionNum`.
    pub partition_num: u32,
    /// The parser, or why it cannot be built (a run-time failure, as in Druid).
    pub schema: Result<Schema, String>,
    /// The task JSON as submitted, with the id filled in.
    pub payload: Value,
}

/// Rejection policy of a realtime task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Accept rows within windowPeriod of the server clock.
    ServerTime,
    /// Accept rows no older than the newest message time minus windowPeriod.
    MessageTime,
    /// Accept everything.
    None,
}

/// The `clipped` / `timed` / `receiver` chain, flattened.
#[derive(Debug, Clone)]
pub struct Firehose {
    /// `clipped` intervals (a row must lie in every one).
    pub clip: Option<Interval>,
    /// `timed` shutoff time.
    pub shutoff: Option<Millis>,
    /// Receiver chat handler name.
    pub service_name: String,
    /// Receiver buffer capacity in rows.
    pub buffer_size: usize,
    /// Receiver `maxIdleTime` in milliseconds.
    pub max_idle: Option<i64>,
}

/// Aggregator kinds druid-local can ingest and query with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKind {
    /// Row count.
    Count,
    /// Sum as long.
    LongSum,
    /// Sum as double.
    DoubleSum,
    /// Sum as float.
    FloatSum,
    /// Min as long.
    LongMin,
    /// Max as long.
    LongMax,
    /// Min as double.
    DoubleMin,
    /// Max as double.
    DoubleMax,
    /// Min as float.
    FloatMin,
    /// Max as float.
    FloatMax,
}

/// Storage type of a numeric column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumType {
    /// 64-bit integer.
    Long,
    /// 64-bit float.
    Double,
    /// 32-bit float (computed as f64, printed as f32).
    Float,
}

impl AggKind {
    /// Parses an aggregator type name.
    pub fn parse(ty: &str) -> Option<AggKind> {
        Some(match ty {
            "count" => AggKind::Count,
            "longSum" => AggKind::LongSum,
            "doubleSum" => AggKind::DoubleSum,
            "floatSum" => AggKind::FloatSum,
            "longMin" => AggKind::LongMin,
            "longMax" => AggKind::LongMax,
            "doubleMin" => AggKind::DoubleMin,
            "doubleMax" => AggKind::DoubleMax,
            "floatMin" => AggKind::FloatMin,
            "floatMax" => AggKind::FloatMax,
            _ => return None,
        })
    }
    /// Druid's name for the kind.
    pub fn name(self) -> &'static str {
        match self {
            AggKind::Count => "count",
            AggKind::LongSum => "longSum",
            AggKind::DoubleSum => "doubleSum",
            AggKind::FloatSum => "floatSum",
            AggKind::LongMin => "longMin",
            AggKind::LongMax => "longMax",
            AggKind::DoubleMin => "doubleMin",
            AggKind::DoubleMax => "doubleMax",
            AggKind::FloatMin => "floatMin",
            AggKind::FloatMax => "floatMax",
        }
    }
    /// Output type.
    pub fn num_type(self) -> NumType {
        match self {
            AggKind::Count | AggKind::LongSum | AggKind::LongMin | AggKind::LongMax => {
                NumType::Long
            }
            AggKind::DoubleSum | AggKind::DoubleMin | AggKind::DoubleMax => NumType::Double,
            AggKind::FloatSum | AggKind::FloatMin | AggKind::FloatMax => NumType::Float,
        }
    }
    /// How stored values combine.
    pub fn op(self) -> AggOp {
        match self {
            AggKind::Count | AggKind::LongSum | AggKind::DoubleSum | AggKind::FloatSum => {
                AggOp::Sum
            }
            AggKind::LongMin | AggKind::DoubleMin | AggKind::FloatMin => AggOp::Min,
            AggKind::LongMax | AggKind::DoubleMax | AggKind::FloatMax => AggOp::Max,
        }
    }
}

/// Combining operation of an aggregator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOp {
    /// Addition.
    Sum,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
}

/// One `metricsSpec` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    /// Aggregator kind.
    pub kind: AggKind,
    /// Output column name.
    pub name: String,
    /// Input field (none for count).
    pub field: Option<String>,
}

impl MetricSpec {
    /// Parses an aggregator object; `what` names the place for messages.
    pub fn from_json(v: &Value, what: &str) -> Result<MetricSpec, String> {
        let o = v
            .as_object()
            .ok_or_else(|| format!("{what}: an aggregator must be an object, got {v}"))?;
        let ty = o
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{what}: aggregator {v} has no `type`"))?;
        let kind = AggKind::parse(ty).ok_or_else(|| {
            format!("{what}: druid-local does not support aggregator type [{ty}]; supported: count, longSum, doubleSum, floatSum, longMin, longMax, doubleMin, doubleMax, floatMin, floatMax")
        })?;
        let name = o
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("{what}: aggregator {v} must have a non-empty `name`"))?;
        let field = o
            .get("fieldName")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if kind != AggKind::Count && field.is_none() {
            if o.get("expression").is_some_and(|e| !e.is_null()) {
                return Err(format!("{what}: aggregator [{name}]: druid-local does not support `expression`; use `fieldName`"));
            }
            return Err(format!(
                "{what}: Must have a valid, non-null fieldName or expression (aggregator [{name}])"
            ));
        }
        Ok(MetricSpec {
            kind,
            name: name.to_owned(),
            field,
        })
    }
}

/// Timestamp column format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TsFormat {
    /// Numbers are millis; strings ISO or digits.
    Auto,
    /// ISO strings only.
    Iso,
    /// Epoch milliseconds.
    Millis,
    /// Epoch seconds.
    Posix,
    /// Epoch microseconds.
    Micro,
    /// Epoch nanoseconds.
    Nano,
    /// Seconds with a fraction.
    Ruby,
}

/// The materialised parser: timestamp and dimension extraction.
#[derive(Debug, Clone)]
pub struct Schema {
    /// Timestamp column.
    pub ts_column: String,
    /// Timestamp format.
    pub ts_format: TsFormat,
    /// Value used when the timestamp is missing.
    pub ts_missing: Option<Millis>,
    /// Explicit dimensions (spatial ones last), or `None` for schemaless.
    pub dimensions: Option<Vec<String>>,
    /// Columns never used as schemaless dimensions.
    pub exclusions: Vec<String>,
    /// `spatialDimensions`: each one's name and the columns whose values it joins.
    pub spatial: Vec<(String, Vec<String>)>,
    /// The parseSpec's flattenSpec, when its parser applies one (a `string` parser reading
    /// `json`; Druid's `map` parser ignores it).
    pub flatten: Option<std::sync::Arc<crate::flatten::Flattener>>,
}

/// Why a submit was refused (each becomes a 400 `{"error": ...}`).
pub type SpecError = String;

fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, SpecError> {
    v.as_object().ok_or_else(|| {
        format!("Cannot construct instance of `{what}`: expected a JSON object, got {v}")
    })
}

/// Checks a task id or dataSource name the way newer Druid does.
pub fn validate_name(kind: &str, s: &str) -> Result<(), SpecError> {
    if s.is_empty() {
        return Err(format!(
            "Invalid value for field [{kind}]: must not be null or empty"
        ));
    }
    if s.starts_with('.') {
        return Err(format!(
            "Invalid value for field [{kind}]: Value [{s}] cannot start with '.'."
        ));
    }
    if s.contains('/') {
        return Err(format!(
            "Invalid value for field [{kind}]: Value [{s}] cannot contain '/'."
        ));
    }
    for c in s.chars() {
        if c.is_whitespace() && c != ' ' {
            return Err(format!("Invalid value for field [{kind}]: Value [{s}] contains illegal whitespace characters.  Only space is allowed."));
        }
        if c.is_control() {
            return Err(format!("Invalid value for field [{kind}]: Value [{s}] contains illegal control characters."));
        }
        if (c as u32) > 0xFFFF {
            return Err(format!("Invalid value for field [{kind}]: Value [{s}] contains illegal UTF8 character [{c}]."));
        }
    }
    Ok(())
}

fn granularity(v: Option<&Value>, default: &str, what: &str) -> Result<Granularity, SpecError> {
    match v {
        None | Some(Value::Null) => Granularity::named(default),
        Some(g) => Granularity::from_json(g).map_err(|e| format!("{what}: {e}")),
    }
}

fn firehose(v: &Value, out: &mut Firehose) -> Result<(), SpecError> {
    let o = obj(v, FIREHOSE_CLASS)?;
    let ty = o.get("type").and_then(Value::as_str).ok_or_else(|| format!("Could not resolve subtype of [simple type, class {FIREHOSE_CLASS}]: missing type id property 'type'"))?;
    let delegate = |o: &Map<String, Value>| {
        o.get("delegate")
            .cloned()
            .ok_or_else(|| format!("firehose [{ty}]: `delegate` is required"))
    };
    match ty {
        "receiver" => {
            let name = o.get("serviceName").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or("receiver firehose: serviceName is required")?;
            out.service_name = name.to_owned();
            let size = o.get("bufferSize").and_then(Value::as_i64).unwrap_or(0);
            out.buffer_size = if size <= 0 { 100_000 } else { size as usize };
            out.max_idle = o.get("maxIdleTime").and_then(Value::as_i64).filter(|m| *m > 0);
            Ok(())
        }
        "timed" => {
            let s = o.get("shutoffTime").ok_or("timed firehose: shutoffTime is required")?;
            let t = time::parse_instant(s).ok_or_else(|| format!("timed firehose: Invalid format: {s} is not an ISO-8601 date-time"))?;
            out.shutoff = Some(out.shutoff.map_or(t, |x| x.min(t)));
            firehose(&delegate(o)?, out)
        }
        "clipped" => {
            let s = o.get("interval").and_then(Value::as_str).ok_or("clipped firehose: interval is required")?;
            let iv = Interval::parse(s)?;
            out.clip = Some(match out.clip {
                None => iv,
                Some(c) => Interval { start: c.start.max(iv.start), end: c.end.min(iv.end).max(c.start.max(iv.start)) },
            });
            firehose(&delegate(o)?, out)
        }
        other => Err(format!(
            "Could not resolve type id '{other}' as a subtype of `{FIREHOSE_CLASS}`: druid-local supports only the firehose types [receiver, timed, clipped]"
        )),
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    let mut r = rand::rng();
    (0..8)
        .map(|_| (b'a' + r.random_range(0..16u8)) as char)
        .collect()
}

/// Maps and validates a submitted task JSON, as the Overlord does before answering 200.
pub fn parse_task(v: &Value) -> Result<TaskSpec, SpecError> {
    let o = obj(v, TASK_CLASS)?;
    let ty = match o.get("type") {
        Some(Value::String(t)) => t.as_str(),
        None | Some(Value::Null) => return Err(format!("Could not resolve subtype of [simple type, class {TASK_CLASS}]: missing type id property 'type'")),
        Some(other) => return Err(format!("Could not resolve subtype of [simple type, class {TASK_CLASS}]: type id property 'type' must be a string, got {other}")),
    };
    let (kind, tuning_type) = match ty {
        "index_realtime" => (TaskKind::Realtime, "realtime"),
        "index_realtime_appenderator" => (TaskKind::Appenderator, "realtime_appenderator"),
        _ => return Err(format!("Could not resolve type id '{ty}' as a subtype of `{TASK_CLASS}`: druid-local supports only [index_realtime, index_realtime_appenderator]")),
    };
    let spec = match o.get("spec") {
        Some(s @ Value::Object(_)) => s,
        _ => return Err("Cannot construct instance of `org.apache.druid.indexing.common.task.RealtimeIndexTask`, problem: spec is required".into()),
    };
    let spec = obj(spec, "FireDepartment")?;
    let ds_schema = match spec.get("dataSchema") {
        Some(d @ Value::Object(_)) => obj(d, "DataSchema")?,
        _ => return Err("Cannot construct instance of `org.apache.druid.segment.realtime.FireDepartment`, problem: dataSchema".into()),
    };
    let io = match spec.get("ioConfig") {
        Some(d @ Value::Object(_)) => obj(d, "RealtimeIOConfig")?,
        _ => return Err("Cannot construct instance of `org.apache.druid.segment.realtime.FireDepartment`, problem: ioConfig".into()),
    };
    let data_source = ds_schema.get("dataSource").and_then(Value::as_str).ok_or("Cannot construct instance of `org.apache.druid.segment.indexing.DataSchema`, problem: dataSource cannot be null or empty. Please provide a dataSource.")?;
    validate_name("dataSource", data_source)?;

    let mut metrics = Vec::new();
    if let Some(ms) = ds_schema.get("metricsSpec").filter(|m| !m.is_null()) {
        let arr = ms
            .as_array()
            .ok_or("metricsSpec must be a list of aggregators")?;
        for m in arr {
            metrics.push(MetricSpec::from_json(m, "metricsSpec")?);
        }
    }
    let gs = match ds_schema.get("granularitySpec") {
        None | Some(Value::Null) => Map::new(),
        Some(g) => obj(g, "GranularitySpec")?.clone(),
    };
    match gs.get("type").and_then(Value::as_str) {
        None | Some("uniform") => {}
        Some(t) => return Err(format!("Could not resolve type id '{t}' as a subtype of `org.apache.druid.segment.indexing.granularity.GranularitySpec`: druid-local supports only [uniform]")),
    }
    let segment_granularity =
        granularity(gs.get("segmentGranularity"), "DAY", "segmentGranularity")?;
    if matches!(segment_granularity, Granularity::All | Granularity::None) {
        return Err("segmentGranularity must be a time granularity, not ALL or NONE".into());
    }
    let query_granularity = granularity(gs.get("queryGranularity"), "NONE", "queryGranularity")?;
    let rollup = gs.get("rollup").and_then(Value::as_bool).unwrap_or(true);

    if let Some(t) = io.get("type").and_then(Value::as_str) {
        if t != "realtime" {
            return Err(format!("Could not resolve type id '{t}' as a subtype of `org.apache.druid.segment.indexing.IOConfig`: known type ids = [realtime]"));
        }
    }
    let fh = io
        .get("firehose")
        .filter(|f| !f.is_null())
        .ok_or("ioConfig.firehose is required")?;
    let mut firehose_spec = Firehose {
        clip: None,
        shutoff: None,
        service_name: String::new(),
        buffer_size: 100_000,
        max_idle: None,
    };
    firehose(fh, &mut firehose_spec)?;

    let tuning = match spec.get("tuningConfig") {
        None | Some(Value::Null) => Map::new(),
        Some(t) => obj(t, "RealtimeTuningConfig")?.clone(),
    };
    if let Some(t) = tuning.get("type").and_then(Value::as_str) {
        if t != tuning_type {
            return Err(format!("Could not resolve type id '{t}' as a subtype of `org.apache.druid.segment.indexing.TuningConfig`: a {} task takes [{tuning_type}]", kind.name()));
        }
    }
    let window_period = match tuning.get("windowPeriod") {
        _ if kind == TaskKind::Appenderator => 0,
        None | Some(Value::Null) => 600_000,
        Some(Value::String(p)) => Period::parse(p)?
            .fixed_millis()
            .ok_or_else(|| format!("windowPeriod [{p}] must have a fixed length"))?,
        Some(other) => {
            return Err(format!(
                "windowPeriod must be an ISO-8601 period string, got {other}"
            ))
        }
    };
    let rejection = match tuning.get("rejectionPolicy") {
        // The appenderator task has no rejection policy (the field is ignored, as Jackson does).
        _ if kind == TaskKind::Appenderator => Rejection::None,
        None | Some(Value::Null) => Rejection::ServerTime,
        Some(r) => match r.get("type").and_then(Value::as_str) {
            Some("serverTime") => Rejection::ServerTime,
            Some("messageTime") => Rejection::MessageTime,
            Some("none") => Rejection::None,
            other => return Err(format!("Could not resolve type id '{}' as a subtype of `org.apache.druid.segment.realtime.plumber.RejectionPolicyFactory`: known type ids = [serverTime, messageTime, none, test]", other.unwrap_or("null"))),
        },
    };
    let partition_num = match tuning.get("shardSpec") {
        None | Some(Value::Null) => 0,
        Some(s) => match s.get("type").and_then(Value::as_str) {
            Some("none") => 0,
            Some("linear") | Some("numbered") => {
                let p = s.get("partitionNum").and_then(Value::as_i64).unwrap_or(0);
                u32::try_from(p)
                    .map_err(|_| format!("shardSpec.partitionNum must be >= 0, got {p}"))?
            }
            other => {
                return Err(format!(
                    "druid-local supports shardSpec types [none, linear, numbered], got [{}]",
                    other.unwrap_or("null")
                ))
            }
        },
    };

    if let Some(r) = o.get("resource").filter(|r| !r.is_null()) {
        let r = obj(r, "TaskResource")?;
        if r.get("availabilityGroup").and_then(Value::as_str).is_none() {
            return Err("Cannot construct instance of `org.apache.druid.indexing.common.task.TaskResource`, problem: availabilityGroup".into());
        }
        let cap = r
            .get("requiredCapacity")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if cap <= 0 {
            return Err(format!("Cannot construct instance of `org.apache.druid.indexing.common.task.TaskResource`, problem: requiredCapacity must be positive, got {cap}"));
        }
    }

    let id = match o.get("id") {
        None | Some(Value::Null) => format!(
            "index_realtime_{data_source}_{partition_num}_{}_{}",
            time::iso(time::now_millis()),
            random_suffix()
        ),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(format!("Task id must be a string, got {other}")),
    };
    validate_name("id", &id)?;
    let group_id = format!("{}_{data_source}", kind.name());
    let mut payload = v.clone();
    if let Some(p) = payload.as_object_mut() {
        p.insert("id".into(), Value::String(id.clone()));
        p.insert("groupId".into(), Value::String(group_id.clone()));
        p.insert("dataSource".into(), Value::String(data_source.to_owned()));
        // The Overlord adds its default lock settings to the task's context.
        let mut context = match p.remove("context") {
            Some(Value::Object(c)) => c,
            _ => Map::new(),
        };
        for key in ["forceTimeChunkLock", "useLineageBasedSegmentAllocation"] {
            context.entry(key).or_insert(Value::Bool(true));
        }
        p.insert("context".into(), Value::Object(context));
    }
    let schema = parse_schema(ds_schema, &metrics);
    Ok(TaskSpec {
        group_id,
        kind,
        id,
        data_source: data_source.to_owned(),
        metrics,
        segment_granularity,
        query_granularity,
        rollup,
        firehose: firehose_spec,
        window_period,
        rejection,
        partition_num,
        schema,
        payload,
    })
}

/// Materialises the parser (legacy `parser.parseSpec` or top-level specs). Errors here fail the
/// task at run time, like Druid's lazy parser conversion.
pub fn parse_schema(ds: &Map<String, Value>, metrics: &[MetricSpec]) -> Result<Schema, String> {
    let parse_spec = ds.get("parser").and_then(|p| p.get("parseSpec"));
    let mut flatten = None;
    if let Some(p) = ds.get("parser").filter(|p| !p.is_null()) {
        match p.get("type").and_then(Value::as_str) {
            Some("map") => {}
            // Druid's default parser type is `string`: its json parseSpec flattens first.
            None | Some("string") => {
                let json = parse_spec
                    .and_then(|s| s.get("format"))
                    .and_then(Value::as_str)
                    .is_none_or(|f| f.eq_ignore_ascii_case("json"));
                let spec = parse_spec
                    .and_then(|s| s.get("flattenSpec"))
                    .filter(|f| !f.is_null());
                if let (true, Some(spec)) = (json, spec) {
                    let keep_nulls = parse_spec
                        .and_then(|s| s.get("keepNullColumns"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    flatten = Some(std::sync::Arc::new(crate::flatten::Flattener::new(
                        spec, keep_nulls,
                    )?));
                }
            }
            Some(t) => {
                return Err(format!(
                "druid-local supports only the `map` parser for the receiver firehose, got [{t}]"
            ))
            }
        }
    }
    let pick = |key: &str| {
        ds.get(key)
            .filter(|v| !v.is_null())
            .or_else(|| parse_spec.and_then(|p| p.get(key)).filter(|v| !v.is_null()))
    };
    let (ts_column, ts_format, ts_missing) = match pick("timestampSpec") {
        None => return Err("timestampSpec is required (in dataSchema or parser.parseSpec)".into()),
        Some(t) => {
            let col = t
                .get("column")
                .and_then(Value::as_str)
                .unwrap_or("timestamp")
                .to_owned();
            let fmt = match t.get("format").and_then(Value::as_str).unwrap_or("auto").to_ascii_lowercase().as_str() {
                "auto" => TsFormat::Auto,
                "iso" => TsFormat::Iso,
                "millis" => TsFormat::Millis,
                "posix" => TsFormat::Posix,
                "micro" => TsFormat::Micro,
                "nano" => TsFormat::Nano,
                "ruby" => TsFormat::Ruby,
                other => return Err(format!("druid-local does not support timestamp format [{other}] (Joda patterns are not supported)")),
            };
            let missing = match t.get("missingValue") {
                None | Some(Value::Null) => None,
                Some(m) => Some(
                    time::parse_instant(m)
                        .ok_or_else(|| format!("Invalid timestampSpec.missingValue {m}"))?,
                ),
            };
            (col, fmt, missing)
        }
    };
    let mut dimensions = None;
    let mut exclusions = Vec::new();
    let mut spatial = Vec::new();
    if let Some(d) = pick("dimensionsSpec") {
        if let Some(list) = d.get("dimensions").and_then(Value::as_array) {
            let mut names = Vec::new();
            for x in list {
                let name = match x {
                    Value::String(s) => s.clone(),
                    Value::Object(o) => match o.get("name").and_then(Value::as_str) {
                        Some(n) => n.to_owned(),
                        None => return Err(format!("dimension {x} has no name")),
                    },
                    _ => return Err(format!("invalid dimension {x}")),
                };
                if name.is_empty() {
                    return Err("dimension names must not be empty".into());
                }
                names.push(name);
            }
            if !names.is_empty() {
                dimensions = Some(names);
            }
        }
        if let Some(ex) = d.get("dimensionExclusions").and_then(Value::as_array) {
            exclusions.extend(ex.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        // Druid appends spatial dimensions to the dimension list (so a spec listing only
        // spatial ones has explicit dimensions).
        for sd in d
            .get("spatialDimensions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = sd
                .get("dimName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| format!("spatial dimension {sd} has no dimName"))?;
            let dims = string_list(sd, "dims");
            dimensions
                .get_or_insert_with(Vec::new)
                .push(name.to_owned());
            spatial.push((name.to_owned(), dims));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for name in dimensions
        .iter()
        .flatten()
        .chain(metrics.iter().map(|m| &m.name))
    {
        if name == "__time" {
            return Err("Cannot use [__time] as a dimension or metric name".into());
        }
        if !seen.insert(name.as_str()) {
            return Err(format!("Cannot specify a column more than once: [{name}] seen in dimensions list and metrics list"));
        }
    }
    exclusions.push(ts_column.clone());
    for m in metrics {
        exclusions.push(m.name.clone());
        if let Some(f) = &m.field {
            exclusions.push(f.clone());
        }
    }
    Ok(Schema {
        ts_column,
        ts_format,
        ts_missing,
        dimensions,
        exclusions,
        spatial,
        flatten,
    })
}

/// The strings of the array at `key` (other elements skipped); empty when absent, as Jackson
/// reads a missing list.
pub(crate) fn string_list(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task() -> Value {
        json!({"type":"index_realtime","id":"t1","resource":{"availabilityGroup":"g","requiredCapacity":1},
          "spec":{"dataSchema":{"dataSource":"wiki","parser":{"type":"map","parseSpec":{"format":"json",
            "timestampSpec":{"column":"ts","format":"iso"},"dimensionsSpec":{"dimensions":["page"]}}},
            "metricsSpec":[{"type":"count","name":"count"}],"granularitySpec":{"segmentGranularity":"HOUR","queryGranularity":"minute"}},
           "ioConfig":{"type":"realtime","firehose":{"type":"clipped","interval":"2024-01-01T10:00Z/2024-01-01T11:00Z",
             "delegate":{"type":"timed","shutoffTime":"2024-01-01T11:15:00Z","delegate":{"type":"receiver","serviceName":"firehose:druid:overlord:wiki-010-0000-0000","bufferSize":5}}}},
           "tuningConfig":{"type":"realtime","windowPeriod":"PT10M","rejectionPolicy":{"type":"none"},"shardSpec":{"type":"linear","partitionNum":2}}}})
    }

    #[test]
    fn maps_the_reference_task() {
        let t = parse_task(&task()).unwrap();
        assert_eq!(t.partition_num, 2);
        assert_eq!(t.firehose.buffer_size, 5);
        assert_eq!(
            t.firehose.service_name,
            "firehose:druid:overlord:wiki-010-0000-0000"
        );
        assert_eq!(t.rejection, Rejection::None);
        assert!(t.schema.is_ok());
    }

    #[test]
    fn refuses_what_druid_refuses() {
        let mut t = task();
        t["resource"]["requiredCapacity"] = json!(0);
        assert!(parse_task(&t).unwrap_err().contains("requiredCapacity"));
        let mut t = task();
        t["spec"]["ioConfig"]["firehose"]["delegate"]["delegate"]["type"] = json!("kafka");
        assert!(parse_task(&t).unwrap_err().contains("'kafka'"));
        let mut t = task();
        t["spec"]["dataSchema"]["metricsSpec"] =
            json!([{"type":"hyperUnique","name":"u","fieldName":"user"}]);
        assert!(parse_task(&t).unwrap_err().contains("hyperUnique"));
        let mut t = task();
        t["type"] = json!("index");
        assert!(parse_task(&t).unwrap_err().contains("'index'"));
        let mut t = task();
        t["id"] = json!("a/b");
        assert!(parse_task(&t).is_err());
    }
}
