//! Native batch task specs (`index_parallel`, `index`) with an `inline`, `local` or `http` input
//! source: the 400s Druid 33.0.0 answers at submit, and the payload as `GET /task/{id}` shows it (dataSchema
//! and tuningConfig written back with defaults, `forceTimeChunkLock` and
//! `useLineageBasedSegmentAllocation` added to the context).

use crate::ingest::DataSchema;
use crate::spec::{string_list, validate_name, Firehose, Rejection, TaskKind, TaskSpec};
use crate::tasks::Refusal;
use crate::time::{self, Granularity};
use crate::Shared;
use serde_json::{json, Map, Value};

/// A validated batch task.
#[derive(Debug, Clone)]
pub struct BatchSpec {
    /// `index` or `index_parallel`.
    pub kind: TaskKind,
    /// Task id.
    pub id: String,
    /// Group id: the task id, or `index_append_<ds>` for appending `index` tasks.
    pub group_id: String,
    /// The dataSchema.
    pub data_schema: DataSchema,
    /// The `inputSource`: where the rows are read from when the task runs.
    pub input: Input,
    /// `appendToExisting`.
    pub append: bool,
    /// `dropExisting`.
    pub drop_existing: bool,
    /// `tuningConfig.maxParseExceptions`.
    pub max_parse_exceptions: u64,
    /// `tuningConfig.awaitSegmentAvailabilityTimeoutMillis`.
    pub await_availability_ms: i64,
    /// The task context (with Druid's additions).
    pub context: Map<String, Value>,
    /// Task priority (`context.priority`, default 50 for batch).
    pub priority: i64,
}

impl BatchSpec {
    /// The lock the context asks for (`taskLockType`, `useConcurrentLocks`, `useSharedLock`).
    pub fn lock_request(&self) -> crate::locks::LockType {
        use crate::locks::LockType;
        let c = &self.context;
        if let Some(t) = c.get("taskLockType").and_then(Value::as_str) {
            match t.to_ascii_uppercase().as_str() {
                "APPEND" => return LockType::Append,
                "REPLACE" => return LockType::Replace,
                "SHARED" => return LockType::Shared,
                "EXCLUSIVE" => return LockType::Exclusive,
                _ => {}
            }
        }
        let flag = |k: &str| {
            c.get(k)
                .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"))
        };
        if flag("useConcurrentLocks") {
            return if self.append {
                LockType::Append
            } else {
                LockType::Replace
            };
        }
        if flag("useSharedLock") && self.append {
            return LockType::Shared;
        }
        LockType::Exclusive
    }
}

fn classes(kind: TaskKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        TaskKind::Index => (
            "org.apache.druid.indexing.common.task.IndexTask$IndexIngestionSpec",
            "org.apache.druid.indexing.common.task.IndexTask",
            "org.apache.druid.indexing.common.task.IndexTask$IndexTuningConfig",
        ),
        _ => (
            "org.apache.druid.indexing.common.task.batch.parallel.ParallelIndexIngestionSpec",
            "org.apache.druid.indexing.common.task.batch.parallel.ParallelIndexSupervisorTask",
            "org.apache.druid.indexing.common.task.batch.parallel.ParallelIndexTuningConfig",
        ),
    }
}

/// Validates a submitted batch task (the played release's checks included).
pub fn parse(shared: &Shared, v: &Value) -> Result<TaskSpec, Refusal> {
    let (spec, payload) = validate(v, true)?;
    if shared.version.limits_task_payload() {
        if let Some(max) = shared.max_task_payload_size {
            let size = payload.to_string().len();
            if size > max {
                return Err(Refusal::druid(
                    "invalidInput",
                    format!(
                        "Task[{}] has payload of size[{size}] but max allowed size is [{max}]. \
                         Reduce the size of the task payload or increase 'druid.indexer.queue.maxTaskPayloadSize'.",
                        spec.id
                    ),
                ));
            }
        }
    }
    Ok(task_spec(&spec, payload))
}

/// Maps a stored batch task record.
pub fn parse_stored(v: &Value) -> Result<TaskSpec, String> {
    let (spec, _) = validate(v, false).map_err(|r| r.body.to_string())?;
    Ok(task_spec(&spec, v.clone()))
}

/// The batch spec of a task's stored payload (the runner reads it again).
pub fn of_payload(v: &Value) -> Result<BatchSpec, String> {
    validate(v, false)
        .map(|(s, _)| s)
        .map_err(|r| r.body.to_string())
}

fn task_spec(spec: &BatchSpec, payload: Value) -> TaskSpec {
    let ds = &spec.data_schema;
    TaskSpec {
        kind: spec.kind,
        id: spec.id.clone(),
        data_source: ds.data_source.clone(),
        group_id: spec.group_id.clone(),
        metrics: ds.metrics.clone(),
        segment_granularity: ds.segment_granularity.clone(),
        query_granularity: ds.query_granularity.clone(),
        rollup: ds.rollup,
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
        schema: Ok(ds.schema.clone()),
        payload,
    }
}

fn random_id() -> String {
    crate::supervisor::task::random_suffix()
}

/// Validates in Jackson's order; returns the spec and the payload as Druid stores it.
fn validate(v: &Value, fresh: bool) -> Result<(BatchSpec, Value), Refusal> {
    let bad = |m: String| Refusal::bad_request(m);
    let o = v
        .as_object()
        .ok_or_else(|| bad(format!("task must be an object, got {v}")))?;
    let kind = match o.get("type").and_then(Value::as_str) {
        Some("index") => TaskKind::Index,
        _ => TaskKind::IndexParallel,
    };
    let (ingestion_class, task_class, tuning_class) = classes(kind);
    let spec = match o.get("spec").or_else(|| o.get("ingestionSpec")) {
        Some(Value::Object(s)) => s,
        _ => {
            return Err(bad(format!(
                "Cannot construct instance of `{task_class}`, problem: ingestionSchema"
            )))
        }
    };
    let data_schema = match spec.get("dataSchema") {
        Some(d) if !d.is_null() => DataSchema::parse(d).map_err(bad)?,
        _ => {
            return Err(bad(format!(
                "Cannot construct instance of `{ingestion_class}`, problem: dataSchema"
            )))
        }
    };
    let io = match spec.get("ioConfig") {
        Some(Value::Object(io)) => io,
        _ => {
            return Err(bad(format!(
                "Cannot construct instance of `{ingestion_class}`, problem: ioConfig"
            )))
        }
    };
    let io_type = if kind == TaskKind::Index {
        "index"
    } else {
        "index_parallel"
    };
    if let Some(t) = io.get("type").and_then(Value::as_str) {
        if t != io_type {
            return Err(bad(format!("Could not resolve type id '{t}' as a subtype of `org.apache.druid.segment.indexing.IOConfig`: an {} task takes [{io_type}]", kind.name())));
        }
    }
    let source = io.get("inputSource").filter(|s| !s.is_null());
    let input = match source {
        None => return Err(bad("druid-local runs batch tasks with an `inline`, `local` or `http` inputSource; this one has none".into())),
        Some(s) => Input::parse(s).map_err(bad)?,
    };
    let append = io
        .get("appendToExisting")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let drop_existing = io
        .get("dropExisting")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let tuning = match spec.get("tuningConfig") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(t)) => t.clone(),
        Some(other) => return Err(bad(format!("tuningConfig must be an object, got {other}"))),
    };
    let partitions_type = tuning
        .get("partitionsSpec")
        .and_then(|p| p.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("dynamic");
    let perfect = tuning
        .get("forceGuaranteedRollup")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if partitions_type != "dynamic" && !perfect {
        return Err(bad(format!("Cannot construct instance of `{tuning_class}`, problem: DynamicPartitionsSpec must be used for best-effort rollup")));
    }
    // The ingestion spec's own checks.
    let parser = data_schema
        .written()
        .get("parser")
        .is_some_and(|p| !p.is_null());
    if parser {
        return Err(bad(format!("Cannot construct instance of `{ingestion_class}`, problem: Cannot use parser and inputSource together. Try using inputFormat instead of parser.")));
    }
    match io.get("inputFormat") {
        None | Some(Value::Null) => {
            return Err(bad(format!("Cannot construct instance of `{ingestion_class}`, problem: At least one of properties[[parser, inputFormat]] must be present")))
        }
        Some(f) => match f.get("type").and_then(Value::as_str) {
            Some("json") => {}
            Some(t) => return Err(bad(format!("druid-local reads batch input with inputFormat json only, not [{t}]"))),
            None => return Err(bad("Could not resolve subtype of [simple type, class org.apache.druid.data.input.InputFormat]: missing type id property 'type' (for POJO property 'inputFormat')".into())),
        },
    }
    // The task's checks.
    if append && drop_existing {
        return Err(bad(format!("Cannot construct instance of `{task_class}`, problem: Cannot simultaneously replace and append to existing segments. Either dropExisting or appendToExisting should be set to false")));
    }
    if append && perfect {
        return Err(bad(format!("Cannot construct instance of `{task_class}`, problem: Perfect rollup cannot be guaranteed when appending to existing dataSources")));
    }
    let ds = data_schema.data_source.clone();
    let id = match o.get("id") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => format!(
            "{}_{ds}_{}_{}",
            kind.name(),
            random_id(),
            time::iso(time::now_millis())
        ),
        Some(other) => return Err(bad(format!("Task id must be a string, got {other}"))),
    };
    validate_name("id", &id).map_err(bad)?;
    let group_id = match o.get("groupId").and_then(Value::as_str) {
        Some(g) => g.to_owned(),
        None if kind == TaskKind::Index && append => format!("index_append_{ds}"),
        None => id.clone(),
    };
    let mut context = o
        .get("context")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if fresh {
        context.entry("forceTimeChunkLock").or_insert(json!(true));
        context
            .entry("useLineageBasedSegmentAllocation")
            .or_insert(json!(true));
    }
    let max_parse_exceptions = match tuning.get("reportParseExceptions").and_then(Value::as_bool) {
        Some(true) => 0,
        _ => tuning
            .get("maxParseExceptions")
            .and_then(Value::as_u64)
            .unwrap_or(i32::MAX as u64),
    };
    let await_availability_ms = tuning
        .get("awaitSegmentAvailabilityTimeoutMillis")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let priority = context
        .get("priority")
        .and_then(Value::as_i64)
        .unwrap_or(50);
    let payload = if fresh {
        written(
            kind,
            &id,
            &group_id,
            &data_schema,
            io,
            &tuning,
            &context,
            o.get("resource"),
        )
    } else {
        v.clone()
    };
    Ok((
        BatchSpec {
            kind,
            id,
            group_id,
            data_schema,
            input,
            append,
            drop_existing,
            max_parse_exceptions,
            await_availability_ms,
            context,
            priority,
        },
        payload,
    ))
}

/// The task as Druid stores and shows it.
#[allow(clippy::too_many_arguments)]
fn written(
    kind: TaskKind,
    id: &str,
    group_id: &str,
    schema: &DataSchema,
    io: &Map<String, Value>,
    tuning: &Map<String, Value>,
    context: &Map<String, Value>,
    resource: Option<&Value>,
) -> Value {
    let mut io_out = Map::new();
    io_out.insert(
        "type".into(),
        json!(if kind == TaskKind::Index {
            "index"
        } else {
            "index_parallel"
        }),
    );
    for k in ["inputSource", "inputFormat"] {
        io_out.insert(k.into(), io.get(k).cloned().unwrap_or(Value::Null));
    }
    io_out.insert(
        "appendToExisting".into(),
        json!(io
            .get("appendToExisting")
            .and_then(Value::as_bool)
            .unwrap_or(false)),
    );
    io_out.insert(
        "dropExisting".into(),
        json!(io
            .get("dropExisting")
            .and_then(Value::as_bool)
            .unwrap_or(false)),
    );
    let index_spec = json!({"bitmap": {"type": "roaring"}, "dimensionCompression": "lz4",
        "stringDictionaryEncoding": {"type": "utf8"}, "metricCompression": "lz4", "longEncoding": "longs"});
    let mut t = Map::new();
    t.insert("type".into(), json!(kind.name()));
    let defaults: Vec<(&str, Value)> = vec![
        (
            "maxRowsPerSegment",
            if kind == TaskKind::Index {
                Value::Null
            } else {
                json!(5000000)
            },
        ),
        (
            "appendableIndexSpec",
            json!({"type": "onheap", "preserveExistingMetrics": false}),
        ),
        ("maxRowsInMemory", json!(1000000)),
        ("maxBytesInMemory", json!(0)),
        ("skipBytesInMemoryOverheadCheck", json!(false)),
        ("maxTotalRows", Value::Null),
        ("numShards", Value::Null),
        (
            "partitionsSpec",
            if kind == TaskKind::Index {
                Value::Null
            } else {
                json!({"type": "dynamic", "maxRowsPerSegment": 5000000, "maxTotalRows": null})
            },
        ),
        ("indexSpec", index_spec.clone()),
        ("indexSpecForIntermediatePersists", index_spec),
        ("maxPendingPersists", json!(0)),
        ("forceGuaranteedRollup", json!(false)),
        ("reportParseExceptions", json!(false)),
        ("pushTimeout", json!(0)),
        ("segmentWriteOutMediumFactory", Value::Null),
        ("logParseExceptions", json!(false)),
        ("maxParseExceptions", json!(2147483647)),
        ("maxSavedParseExceptions", json!(0)),
        ("maxColumnsToMerge", json!(-1)),
        ("awaitSegmentAvailabilityTimeoutMillis", json!(0)),
        ("numPersistThreads", json!(1)),
    ];
    for (k, d) in defaults {
        t.insert(
            k.into(),
            tuning.get(k).filter(|v| !v.is_null()).cloned().unwrap_or(d),
        );
    }
    let resource = resource
        .filter(|r| !r.is_null())
        .cloned()
        .unwrap_or_else(|| json!({"availabilityGroup": id, "requiredCapacity": 1}));
    let spec = json!({"dataSchema": schema.written(), "ioConfig": io_out, "tuningConfig": t});
    let mut out = Map::new();
    out.insert("type".into(), json!(kind.name()));
    out.insert("id".into(), json!(id));
    if kind == TaskKind::IndexParallel {
        out.insert("groupId".into(), json!(group_id));
    }
    out.insert("resource".into(), resource);
    out.insert("spec".into(), spec);
    out.insert("context".into(), Value::Object(context.clone()));
    if kind == TaskKind::Index {
        out.insert("groupId".into(), json!(group_id));
    }
    out.insert("dataSource".into(), json!(schema.data_source));
    Value::Object(out)
}

/// Whether a row time lies in the spec's `intervals` (all rows pass without intervals).
pub fn in_intervals(schema: &DataSchema, t: time::Millis) -> bool {
    schema.intervals.is_empty() || schema.intervals.iter().any(|i| i.contains(t))
}

/// The chunks (segment-granularity buckets) the `intervals` cover.
pub fn chunks_of_intervals(schema: &DataSchema) -> Vec<time::Interval> {
    let mut out = Vec::new();
    let g: &Granularity = &schema.segment_granularity;
    for iv in &schema.intervals {
        let mut t = g.bucket_start(iv.start);
        while t < iv.end && out.len() < 100_000 {
            let b = g.bucket(t);
            out.push(b);
            t = g.next(b.start);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A batch task's `inputSource`, as Druid's `InlineInputSource`, `LocalInputSource` and
/// `HttpInputSource` accept them. Local and HTTP sources are read when the task runs, so a
/// missing file fails the task rather than the submit, as in Druid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// `{"type":"inline","data":...}`.
    Inline(String),
    /// `{"type":"local","baseDir":..,"filter":..}` and/or `"files":[..]`.
    Local {
        /// `baseDir`, searched recursively for names matching `filter`.
        base_dir: Option<String>,
        /// `filter`: a wildcard (`*`, `?`) on file names; required with `baseDir`.
        filter: Option<String>,
        /// `files`: paths read as they are.
        files: Vec<String>,
    },
    /// `{"type":"http","uris":[..]}`.
    Http(Vec<String>),
}

impl Input {
    fn parse(s: &Value) -> Result<Self, String> {
        let strings = |key: &str| string_list(s, key);
        let text = |key: &str| s.get(key).and_then(Value::as_str).map(str::to_owned);
        match s.get("type").and_then(Value::as_str) {
            Some("inline") => Ok(Input::Inline(text("data").unwrap_or_default())),
            Some("local") => {
                let (base_dir, filter, files) = (text("baseDir"), text("filter"), strings("files"));
                if base_dir.is_some() && filter.is_none() {
                    return Err("Cannot construct instance of `org.apache.druid.data.input.impl.LocalInputSource`, problem: filter".into());
                }
                if base_dir.is_none() && files.is_empty() {
                    return Err("Cannot construct instance of `org.apache.druid.data.input.impl.LocalInputSource`, problem: At least one of baseDir or files should be specified".into());
                }
                Ok(Input::Local { base_dir, filter, files })
            }
            Some("http") => {
                let uris = strings("uris");
                if uris.is_empty() {
                    return Err("Cannot construct instance of `org.apache.druid.data.input.impl.HttpInputSource`, problem: Empty URIs".into());
                }
                if let Some(bad) = uris.iter().find(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
                    return Err(format!("Cannot construct instance of `org.apache.druid.data.input.impl.HttpInputSource`, problem: Only [http, https] protocols are allowed, got [{bad}]"));
                }
                Ok(Input::Http(uris))
            }
            Some(t) => Err(format!("druid-local runs batch tasks with an `inline`, `local` or `http` inputSource, not [{t}]")),
            None => Err("Could not resolve subtype of [simple type, class org.apache.druid.data.input.InputSource]: missing type id property 'type' (for POJO property 'inputSource')".into()),
        }
    }

    /// The input's text: the inline data, the local files' contents, or the HTTP bodies,
    /// each ending with a newline.
    pub async fn read(&self, http: &reqwest::Client) -> Result<String, String> {
        let mut out = String::new();
        let mut add = |text: &str| {
            out.push_str(text);
            if !text.ends_with('\n') {
                out.push('\n');
            }
        };
        match self {
            Input::Inline(data) => add(data),
            Input::Local {
                base_dir,
                filter,
                files,
            } => {
                let mut paths: Vec<std::path::PathBuf> = files.iter().map(Into::into).collect();
                if let (Some(dir), Some(filter)) = (base_dir, filter) {
                    let mut found = Vec::new();
                    walk(std::path::Path::new(dir), filter, &mut found)
                        .map_err(|e| format!("reading baseDir [{dir}]: {e}"))?;
                    found.sort();
                    paths.extend(found);
                }
                for path in paths {
                    let text = tokio::fs::read_to_string(&path).await.map_err(|e| {
                        format!("java.io.FileNotFoundException: {} ({e})", path.display())
                    })?;
                    add(&text);
                }
            }
            Input::Http(uris) => {
                for uri in uris {
                    let answer = http
                        .get(uri)
                        .send()
                        .await
                        .and_then(reqwest::Response::error_for_status)
                        .map_err(|e| format!("java.io.IOException: fetching [{uri}]: {e}"))?;
                    let text = answer
                        .text()
                        .await
                        .map_err(|e| format!("java.io.IOException: reading [{uri}]: {e}"))?;
                    add(&text);
                }
            }
        }
        Ok(out)
    }
}

/// Files under `dir`, recursively, whose names match the wildcard `filter`.
fn walk(
    dir: &std::path::Path,
    filter: &str,
    out: &mut Vec<std::path::PathBuf>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, filter, out)?;
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| wildcard(filter.as_bytes(), n.as_bytes()))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Commons-IO's wildcard match: `*` any run, `?` one character, the rest literally.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard(&pattern[1..], name) || (!name.is_empty() && wildcard(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => wildcard(&pattern[1..], &name[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod input_tests {
    use super::*;

    #[test]
    fn wildcards_match_as_commons_io_does() {
        assert!(wildcard(b"*.json", b"a.json"));
        assert!(wildcard(b"wiki-??.json", b"wiki-01.json"));
        assert!(!wildcard(b"*.json", b"a.json.gz"));
        assert!(wildcard(b"*", b""));
    }

    #[test]
    fn sources_are_checked_as_druid_checks_them() {
        let err = |v: Value| Input::parse(&v).unwrap_err();
        assert!(err(json!({"type": "local"})).contains("At least one of baseDir or files"));
        assert!(err(json!({"type": "local", "baseDir": "/x"})).contains("problem: filter"));
        assert!(err(json!({"type": "http", "uris": []})).contains("Empty URIs"));
        assert!(err(json!({"type": "http", "uris": ["file:///etc/passwd"]}))
            .contains("Only [http, https]"));
        assert!(err(json!({"type": "s3", "uris": ["s3://b/k"]})).contains("not [s3]"));
        assert_eq!(
            Input::parse(&json!({"type": "local", "files": ["/a"]})).unwrap(),
            Input::Local {
                base_dir: None,
                filter: None,
                files: vec!["/a".into()]
            }
        );
    }

    #[tokio::test]
    async fn local_files_are_read_from_a_base_dir_and_a_list() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a.json"), "{\"n\":1}").unwrap();
        std::fs::write(dir.path().join("sub/b.json"), "{\"n\":2}\n").unwrap();
        std::fs::write(dir.path().join("c.txt"), "no").unwrap();
        let input = Input::Local {
            base_dir: Some(dir.path().display().to_string()),
            filter: Some("*.json".into()),
            files: vec![dir.path().join("c.txt").display().to_string()],
        };
        let text = input.read(&reqwest::Client::new()).await.unwrap();
        assert_eq!(text, "no\n{\"n\":1}\n{\"n\":2}\n");
        let missing = Input::Local {
            base_dir: None,
            filter: None,
            files: vec!["/nonexistent/x".into()],
        };
        assert!(missing
            .read(&reqwest::Client::new())
            .await
            .unwrap_err()
            .contains("FileNotFoundException"));
    }
}
