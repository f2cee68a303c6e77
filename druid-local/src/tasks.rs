//! Which task types the played release runs: `POST /druid/indexer/v1/task` maps a payload to
//! the realtime task (`index_realtime*`, up to 30) or a native batch task (`index`,
//! `index_parallel`), refuses the rest as Druid refuses an unknown type, and starts the task's
//! runner.

use crate::http::json;
use crate::spec::{self, TaskKind, TaskSpec};
use crate::task::Task;
use crate::{batch, task, Shared};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use std::sync::Arc;

/// The task class Jackson names in type errors.
const TASK_CLASS: &str = "org.apache.druid.indexing.common.task.Task";

/// Task type ids an Overlord with the Kafka indexing service knows (Druid 33.0.0's list; up
/// to 30 it also knows the two realtime types).
const KNOWN_TYPES: [&str; 17] = [
    "archive",
    "compact",
    "index",
    "index_hadoop",
    "index_kafka",
    "index_parallel",
    "index_sub",
    "kill",
    "move",
    "noop",
    "partial_dimension_cardinality",
    "partial_dimension_distribution",
    "partial_index_generate",
    "partial_index_generic_merge",
    "partial_range_index_generate",
    "restore",
    "single_phase_sub_task",
];

/// Why a submit is refused: Druid's `{"error": ...}` or a DruidException body, with a status.
#[derive(Debug)]
pub struct Refusal {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body.
    pub body: Value,
}

impl Refusal {
    /// A 400 with Druid's classic `{"error": msg}` body.
    pub fn bad_request(msg: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            body: json!({ "error": msg.into() }),
        }
    }

    /// A 400 in the DruidException shape (`invalidInput`, `entryAlreadyExists`, ...).
    pub fn druid(code: &str, msg: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            body: json!({"error": "druidException", "errorCode": code, "persona": "USER",
                "category": "INVALID_INPUT", "errorMessage": msg.into(), "context": {}}),
        }
    }

    /// The HTTP answer.
    pub fn into_response(self) -> Response {
        json(self.status, self.body)
    }
}

impl From<spec::SpecError> for Refusal {
    fn from(e: spec::SpecError) -> Refusal {
        Refusal::bad_request(e)
    }
}

/// Druid's answer to a type id it does not know, naming the types it does.
pub fn unknown_type(shared: &Shared, ty: &str) -> String {
    let mut known: Vec<&str> = KNOWN_TYPES.to_vec();
    if shared.version.has_realtime_tasks() {
        known.extend(["index_realtime", "index_realtime_appenderator"]);
        known.sort_unstable();
    }
    format!(
        "Please make sure to load all the necessary extensions and jars with type '{ty}' on '{}' service. \
         Could not resolve type id '{ty}' as a subtype of `{TASK_CLASS}` known type ids = [{}]",
        shared.service_name,
        known.join(", ")
    )
}

/// Maps a submitted task as the played release does.
pub fn parse(shared: &Shared, v: &Value) -> Result<TaskSpec, Refusal> {
    let ty = v.get("type").and_then(Value::as_str);
    match ty {
        Some("index_realtime" | "index_realtime_appenderator") => {
            if !shared.version.has_realtime_tasks() {
                return Err(Refusal::bad_request(unknown_type(shared, ty.unwrap_or(""))));
            }
            Ok(spec::parse_task(v)?)
        }
        Some("index" | "index_parallel") => batch::spec::parse(shared, v),
        Some(t) if KNOWN_TYPES.contains(&t) => Err(Refusal::bad_request(format!(
            "druid-local does not run task type [{t}]; it runs [index, index_parallel{}] and creates index_kafka tasks from supervisors",
            if shared.version.has_realtime_tasks() {
                ", index_realtime, index_realtime_appenderator"
            } else {
                ""
            }
        ))),
        Some(t) => Err(Refusal::bad_request(unknown_type(shared, t))),
        // A missing or non-string type keeps the realtime mapper's Jackson-like message.
        None => Ok(spec::parse_task(v)?),
    }
}

/// Maps a task record stored in the data dir (any release's types, no submit checks).
pub fn parse_stored(v: &Value) -> Result<TaskSpec, String> {
    match v.get("type").and_then(Value::as_str) {
        Some("index_kafka") => crate::supervisor::task::parse_stored(v),
        Some("index" | "index_parallel") => batch::spec::parse_stored(v),
        _ => spec::parse_task(v),
    }
}

/// Runs a submitted task to its end.
pub async fn run(shared: Arc<Shared>, t: Arc<Task>) {
    match t.spec.kind {
        TaskKind::Realtime | TaskKind::Appenderator => task::run(shared, t).await,
        TaskKind::Index | TaskKind::IndexParallel => batch::run(shared, t).await,
        // Supervisors run their own tasks; none is submitted through the task API.
        TaskKind::IndexKafka => {}
    }
}
