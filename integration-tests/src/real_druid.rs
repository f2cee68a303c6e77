//! A real Apache Druid cluster for conformance tests, installed from Maven Central and started
//! by `scripts/real-druid.sh` (the same script a developer runs by hand).
//!
//! The harness starts a [`ZooKeeper`] of its own and hands it to the script, which adds a
//! Coordinator acting as Overlord (Derby metadata store, local deep storage), a MiddleManager
//! (up to 30) or an Indexer (31+), a Broker and a Historical, each on a free loopback port.
//! The cluster stops when the handle drops; after a failed test its folder (logs, configs) is
//! kept and its path printed.
//!
//! Druid is not installed by the tests: [`RealDruid::start_or_skip`] prints why a test is
//! skipped and which command installs the release, unless `TRANQUILITY_REAL_DRUID=require`
//! (set by `scripts/test.sh` after it installed Druid), where a missing install fails.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{free_port, ZooKeeper};

/// The newest release served whole by Maven Central that still has `index_realtime` tasks and
/// the `receiver` firehose (30.0.1, the last one, is not served).
pub const REALTIME_RELEASE: &str = "28.0.0";

/// The release (31+) whose Kafka indexing extension Maven Central serves.
pub const MODERN_RELEASE: &str = "33.0.0";

/// Why a real Druid could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RealDruidError {
    /// The release is not in the cache.
    #[error(
        "Druid {version} is not installed (no {marker}); install it with \
         `scripts/real-druid.sh install {version}`"
    )]
    NotInstalled {
        /// The release asked for.
        version: String,
        /// The file whose absence says so.
        marker: PathBuf,
    },
    /// The start script failed.
    #[error("starting Druid {version} failed ({status}); logs in {dir}:\n{stderr}")]
    Start {
        /// The release.
        version: String,
        /// The script's exit status.
        status: String,
        /// The cluster folder (kept).
        dir: PathBuf,
        /// The script's error output.
        stderr: String,
    },
    /// The script could not be run or answered something unexpected.
    #[error("running {script}: {reason}")]
    Script {
        /// The script's path.
        script: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// A running real Druid cluster; stopped on drop.
#[derive(Debug)]
pub struct RealDruid {
    version: String,
    dir: Option<tempfile::TempDir>,
    overlord_url: String,
    broker_url: String,
    started_in: Duration,
    zookeeper: ZooKeeper,
}

impl RealDruid {
    /// The cache folder of installed releases: `${TRANQUILITY_CACHE:-$HOME/.cache/tranquility-rs}/druid`.
    pub fn cache_dir() -> PathBuf {
        let base = std::env::var_os("TRANQUILITY_CACHE")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/tranquility-rs"))
            })
            .unwrap_or_else(|| PathBuf::from(".cache/tranquility-rs"));
        base.join("druid")
    }

    /// Whether `version` is installed in the cache.
    pub fn installed(version: &str) -> bool {
        Self::cache_dir().join(version).join("INSTALLED").is_file()
    }

    /// Starts a cluster of `version` and waits until the Overlord, its worker, the Broker and
    /// the Historical serve.
    pub fn start(version: &str) -> Result<RealDruid, RealDruidError> {
        if !Self::installed(version) {
            return Err(RealDruidError::NotInstalled {
                version: version.to_string(),
                marker: Self::cache_dir().join(version).join("INSTALLED"),
            });
        }
        let began = Instant::now();
        let zookeeper = ZooKeeper::start();
        let dir = tempfile::Builder::new()
            .prefix(&format!("real-druid-{version}-"))
            .tempdir()
            .map_err(|e| script_error(format!("temp dir: {e}")))?;
        let mut command = Command::new("bash");
        command
            .arg(script())
            .args(["start", version])
            .arg(dir.path())
            .env("DRUID_ZOOKEEPER", zookeeper.connect_string());
        for name in [
            "DERBY",
            "COORDINATOR",
            "INDEXER",
            "BROKER",
            "HISTORICAL",
            "PEON1",
            "PEON2",
        ] {
            command.env(format!("DRUID_PORT_{name}"), free_port().to_string());
        }
        let output = command
            .output()
            .map_err(|e| script_error(format!("cannot run it: {e}")))?;
        if !output.status.success() {
            return Err(RealDruidError::Start {
                version: version.to_string(),
                status: output.status.to_string(),
                dir: dir.keep(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        let env = parse_env(&String::from_utf8_lossy(&output.stdout));
        let field = |key: &str| {
            env.get(key)
                .cloned()
                .ok_or_else(|| script_error(format!("its output lacks {key}")))
        };
        let druid = RealDruid {
            version: version.to_string(),
            overlord_url: field("OVERLORD_URL")?,
            broker_url: field("BROKER_URL")?,
            started_in: began.elapsed(),
            dir: Some(dir),
            zookeeper,
        };
        eprintln!(
            "real Druid {version}: Overlord {} Broker {} ZooKeeper {}, started in {:.1} s",
            druid.overlord_url,
            druid.broker_url,
            druid.zookeeper_connect(),
            druid.started_in.as_secs_f64()
        );
        Ok(druid)
    }

    /// Starts `version`, or, when it is not installed, prints that `test` is skipped and how
    /// to install it and returns `None`. With `TRANQUILITY_REAL_DRUID=require` a missing
    /// install panics instead. A failed start always panics.
    pub fn start_or_skip(version: &str, test: &str) -> Option<RealDruid> {
        match Self::start(version) {
            Ok(druid) => Some(druid),
            Err(e @ RealDruidError::NotInstalled { .. }) if !required() => {
                test_support::record_skip(
                    test,
                    &format!("Druid {version}"),
                    &format!("{e}; install it with scripts/real-druid.sh install {version}"),
                );
                None
            }
            Err(e) => panic!("{test}: {e}"),
        }
    }

    /// The release running.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// `http://127.0.0.1:<port>` of the Overlord (the Coordinator acting as Overlord).
    pub fn overlord_url(&self) -> &str {
        &self.overlord_url
    }

    /// `http://127.0.0.1:<port>` of the Broker.
    pub fn broker_url(&self) -> &str {
        &self.broker_url
    }

    /// The ZooKeeper connect string the cluster uses.
    pub fn zookeeper_connect(&self) -> String {
        self.zookeeper.connect_string()
    }

    /// Wall time from the start call until every process served.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The resident memory of the cluster's processes (ZooKeeper, Druid and peons), in KiB,
    /// read from `/proc`.
    pub fn rss_kib(&self) -> u64 {
        let Some(dir) = &self.dir else { return 0 };
        let mut pids: Vec<u32> = std::fs::read_dir(dir.path().join("pids"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        pids.extend(self.zookeeper.pid());
        let children: Vec<u32> = pids.iter().flat_map(|p| children_of(*p)).collect();
        pids.extend(children);
        pids.iter().map(|p| rss_of(*p)).sum()
    }
}

impl Drop for RealDruid {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(dir.path())
            .output();
        if std::thread::panicking() {
            eprintln!(
                "real Druid {}: logs kept in {}",
                self.version,
                dir.keep().join("logs").display()
            );
        }
    }
}

fn required() -> bool {
    std::env::var("TRANQUILITY_REAL_DRUID").is_ok_and(|v| v == "require")
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/real-druid.sh")
}

fn script_error(reason: String) -> RealDruidError {
    RealDruidError::Script {
        script: script(),
        reason,
    }
}

/// `KEY=value` lines.
fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
