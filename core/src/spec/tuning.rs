//! The realtime `tuningConfig`: windowPeriod and the task tuning Tranquility passes to Druid.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::lenient;
use crate::time::Period;

/// Druid's default `windowPeriod` (`PT10M`).
pub const DEFAULT_WINDOW_PERIOD: Period = Period::minutes(10);

/// `tuningConfig` of a realtime spec. Fields not set stay unset (Druid or the task builder
/// supplies defaults); fields not known here are kept in `extra` and written back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TuningConfig {
    /// Must be `realtime` for realtime tasks.
    #[serde(rename = "type", default = "default_type")]
    pub kind: String,
    /// How far from now events are accepted (Druid default `PT10M`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_period: Option<Period>,
    /// How often the task persists in-memory rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediate_persist_period: Option<Period>,
    /// Rows kept in memory before a persist.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub max_rows_in_memory: Option<i64>,
    /// Persists allowed to queue.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub max_pending_persists: Option<i64>,
    /// Whether segments are built in the v9 format directly (Druid 0.9.x).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_bool"
    )]
    pub build_v9_directly: Option<bool>,
    /// Rejection policy object (Tranquility sends `{"type":"none"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_policy: Option<Value>,
    /// Shard spec object (set per task by Tranquility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_spec: Option<Value>,
    /// Fields not known here (`basePersistDirectory`, `maxBytesInMemory`, ...), kept for Druid.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_type() -> String {
    "realtime".to_string()
}

impl Default for TuningConfig {
    fn default() -> Self {
        Self {
            kind: default_type(),
            window_period: None,
            intermediate_persist_period: None,
            max_rows_in_memory: None,
            max_pending_persists: None,
            build_v9_directly: None,
            rejection_policy: None,
            shard_spec: None,
            extra: Map::new(),
        }
    }
}

impl TuningConfig {
    /// The windowPeriod in force: the configured one or Druid's default `PT10M`.
    pub fn window_period(&self) -> Period {
        self.window_period.unwrap_or(DEFAULT_WINDOW_PERIOD)
    }

    /// The tuning Tranquility sends to tasks: these values laid over its defaults
    /// (`maxRowsInMemory` 75000, `intermediatePersistPeriod` PT10M, `maxPendingPersists` 0,
    /// `buildV9Directly` false, `type` realtime), as a JSON object.
    pub fn with_task_defaults(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("type".into(), Value::from("realtime"));
        out.insert("maxRowsInMemory".into(), Value::from(75_000));
        out.insert("intermediatePersistPeriod".into(), Value::from("PT10M"));
        out.insert("maxPendingPersists".into(), Value::from(0));
        out.insert("buildV9Directly".into(), Value::from(false));
        if let Ok(Value::Object(user)) = serde_json::to_value(self) {
            out.extend(user);
        }
        out
    }
}
