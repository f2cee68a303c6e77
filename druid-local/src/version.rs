//! The Druid release druid-local plays (`--druid-version`), and every behaviour that depends on
//! it, named here in one place so the rest of the code asks a question ("does this release
//! still run `index_realtime`?") instead of comparing numbers.
//!
//! Where a behaviour was seen on a real release it says so; where it comes from reading
//! Druid's history (pom bumps and merge dates) it says that instead. The full table is in
//! `docs/druid-versions.md`.

use serde_json::{json, Value};
use std::fmt;
use std::str::FromStr;

/// A Druid release number such as `30.0.0`, `33.0.0` or `0.9.2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DruidVersion {
    parts: [u32; 3],
    text: String,
}

/// The release played when none is given: the newest one with `index_realtime`, which the
/// client's realtime backend needs.
pub const DEFAULT_VERSION: &str = "30.0.0";

impl Default for DruidVersion {
    fn default() -> Self {
        DEFAULT_VERSION
            .parse()
            .unwrap_or_else(|_| DruidVersion::new(30, 0, 0))
    }
}

impl DruidVersion {
    /// `major.minor.patch`.
    pub fn new(major: u32, minor: u32, patch: u32) -> DruidVersion {
        DruidVersion {
            parts: [major, minor, patch],
            text: format!("{major}.{minor}.{patch}"),
        }
    }

    /// The release as given (`33.0.0`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The major number (`0` for `0.x` releases).
    pub fn major(&self) -> u32 {
        self.parts[0]
    }

    fn at_least(&self, major: u32) -> bool {
        self.parts[0] >= major
    }

    /// `index_realtime`, `index_realtime_appenderator` and the receiver firehose exist up to
    /// 30; 31 removed them (apache/druid #16602).
    pub fn has_realtime_tasks(&self) -> bool {
        !self.at_least(31)
    }

    /// The receiver firehose honours `X-Firehose-Producer-Id` / `X-Firehose-Producer-Seq`
    /// (skips a push whose sequence is not above the producer's last) from 0.12.0 (#4903);
    /// 0.9.2 to 0.11 ignore the headers and ingest every push.
    pub fn dedups_producer_pushes(&self) -> bool {
        self.parts >= [0, 12, 0]
    }

    /// `druid.indexer.queue.maxTaskPayloadSize` exists from 31 (#16512).
    pub fn limits_task_payload(&self) -> bool {
        self.at_least(31)
    }

    /// `POST /supervisor?skipRestartIfUnmodified=true` is honoured from 33 (#17707); older
    /// releases ignore the parameter. Seen on 33.0.0.
    pub fn honours_skip_restart(&self) -> bool {
        self.at_least(33)
    }

    /// From 34 a supervisor update may not change `topic`/`topicPattern` (#17955), and specs
    /// carry an `id` (#18082). Not seen on a real release (34 is not served here).
    pub fn supervisor_id_and_stream_lock(&self) -> bool {
        self.at_least(34)
    }

    /// `GET /supervisor/{id}/history?count=n` limits the list from 35 (#18416, a count of 0 or
    /// less is a 400 there); before, the parameter is ignored (seen on 33.0.0).
    pub fn limits_history(&self) -> bool {
        self.at_least(35)
    }

    /// 32 and 33 fail every Kafka task whose `taskDuration` is under a minute: the rejection
    /// period updater is scheduled with a period of zero minutes (#17442, fixed by #18147 in
    /// 34). Seen on 33.0.0 with Druid's own `PT30S` IT template.
    pub fn fails_sub_minute_kafka_tasks(&self) -> bool {
        self.at_least(32) && !self.at_least(34)
    }

    /// Extension and core modules `GET /status` lists on an Overlord with the Kafka indexing
    /// service loaded (the list Druid 33.0.0 answers).
    pub fn modules(&self) -> Value {
        let v = self.as_str();
        json!([
            {"name": "org.apache.druid.common.gcp.GcpModule", "artifact": "druid-gcp-common", "version": v},
            {"name": "org.apache.druid.common.aws.AWSModule", "artifact": "druid-aws-common", "version": v},
            {"name": "org.apache.druid.indexing.kafka.KafkaIndexTaskModule", "artifact": "druid-kafka-indexing-service", "version": v},
        ])
    }

    /// The body of `GET /status`: the release, its modules and the process memory (Druid
    /// reports the JVM's; druid-local reports its resident set and the machine's memory).
    pub fn status_body(&self) -> Value {
        let (rss, total) = memory();
        json!({
            "version": self.as_str(),
            "modules": self.modules(),
            "memory": {
                "maxMemory": total,
                "totalMemory": rss,
                "freeMemory": 0,
                "usedMemory": rss,
                "directMemory": 0,
            },
        })
    }
}

/// Resident set of this process and the machine's memory, in bytes (0 where `/proc` is absent).
fn memory() -> (u64, u64) {
    let kib = |file: &str, key: &str| -> u64 {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (
        kib("/proc/self/status", "VmRSS:"),
        kib("/proc/meminfo", "MemTotal:"),
    )
}

/// Why a release number does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Druid version [{0}]: expected MAJOR.MINOR.PATCH such as 30.0.0, 33.0.0 or 0.9.2")]
pub struct VersionError(String);

impl FromStr for DruidVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        // A qualifier (`-SNAPSHOT`, `-rc1`) does not change the behaviour played.
        let numbers = t.split(['-', '+']).next().unwrap_or("");
        let mut parts = [0u32; 3];
        let mut n = 0;
        for p in numbers.split('.') {
            if n == 3 || p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(VersionError(s.to_owned()));
            }
            parts[n] = p.parse().map_err(|_| VersionError(s.to_owned()))?;
            n += 1;
        }
        if n == 0 {
            return Err(VersionError(s.to_owned()));
        }
        Ok(DruidVersion {
            parts,
            text: t.to_owned(),
        })
    }
}

impl fmt::Display for DruidVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> DruidVersion {
        s.parse().unwrap()
    }

    #[test]
    fn parses_releases_and_refuses_nonsense() {
        assert_eq!(v("33.0.0").major(), 33);
        assert_eq!(v("0.9.2").major(), 0);
        assert_eq!(v("36.0.0-SNAPSHOT").as_str(), "36.0.0-SNAPSHOT");
        assert_eq!(v("31").major(), 31);
        for bad in ["", "x", "30.a", "1.2.3.4", "30..1", "-1"] {
            assert!(bad.parse::<DruidVersion>().is_err(), "{bad}");
        }
        assert_eq!(DruidVersion::default().as_str(), "30.0.0");
    }

    #[test]
    fn behaviours_follow_the_release() {
        assert!(v("0.9.2").has_realtime_tasks());
        assert!(!v("0.11.0").dedups_producer_pushes());
        assert!(v("0.12.0").dedups_producer_pushes());
        assert!(v("30.0.0").dedups_producer_pushes());
        assert!(v("30.0.1").has_realtime_tasks());
        assert!(!v("31.0.0").has_realtime_tasks());
        assert!(!v("32.0.0").honours_skip_restart());
        assert!(v("33.0.0").honours_skip_restart());
        assert!(v("33.0.0").fails_sub_minute_kafka_tasks());
        assert!(!v("34.0.0").fails_sub_minute_kafka_tasks());
        assert!(!v("31.0.1").fails_sub_minute_kafka_tasks());
        assert!(v("35.0.0").supervisor_id_and_stream_lock());
        assert!(!v("33.0.0").supervisor_id_and_stream_lock());
    }

    #[test]
    fn status_names_the_kafka_module() {
        let body = v("33.0.0").status_body();
        assert_eq!(body["version"], "33.0.0");
        assert!(body["modules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["artifact"] == "druid-kafka-indexing-service" && m["version"] == "33.0.0"));
    }
}
