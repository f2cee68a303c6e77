//! Task records in the data dir, so finished tasks keep answering status after a restart and
//! tasks that were running are failed clearly instead of vanishing.

use super::{StatusCode, Task};
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// Error message given to tasks that were running when the process stopped.
pub const RESTART_FAILURE: &str = "druid-local stopped while this task was running; its in-memory rows were lost (nothing was handed off)";

#[derive(Serialize, Deserialize)]
struct Record {
    payload: serde_json::Value,
    created: Millis,
    status: StatusCode,
    duration: Option<i64>,
    #[serde(rename = "errorMsg")]
    error: Option<String>,
    /// Where the task ran (older records have none).
    #[serde(default)]
    location: Option<(String, u16)>,
}

fn file_name(id: &str) -> String {
    let mut out = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{out}.json")
}

/// Writes a task's record.
pub fn save(dir: &Path, task: &Task) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let st = task.state.lock().clone();
    let rec = Record {
        payload: task.spec.payload.clone(),
        created: task.created,
        status: st.status,
        duration: st.duration,
        error: st.error,
        location: st.location,
    };
    let bytes = serde_json::to_vec(&rec).map_err(std::io::Error::other)?;
    let path = dir.join(file_name(&task.spec.id));
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

/// Loads all task records, oldest first; running ones come back FAILED.
pub fn load_all(dir: &Path) -> std::io::Result<Vec<Arc<Task>>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let rec: Record = match std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            Some(r) => r,
            None => {
                tracing::warn!(file = %path.display(), "skipping unreadable task record");
                continue;
            }
        };
        let spec = match crate::tasks::parse_stored(&rec.payload) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "skipping task record whose spec no longer maps");
                continue;
            }
        };
        let task = if rec.status == StatusCode::Running {
            Task::finished(
                spec,
                rec.created,
                StatusCode::Failed,
                Some(crate::time::now_millis() - rec.created),
                Some(RESTART_FAILURE.to_owned()),
            )
        } else {
            Task::finished(spec, rec.created, rec.status, rec.duration, rec.error)
        };
        task.state.lock().location = rec.location;
        out.push(task);
    }
    out.sort_by_key(|t| t.created);
    Ok(out)
}
