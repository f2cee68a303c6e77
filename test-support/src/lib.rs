//! Helpers shared by the workspace's tests.
//!
//! [`peer_data`] finds the public files we must stay compatible with (the original
//! Tranquility's configs, Druid's own integration-test resources). They are not part of this
//! repository: a test that replays them skips visibly when they are absent, and a plain clone
//! covers the same ground with the files under `examples/configs/`.
//!
//! [`harness`] (cargo feature `harness`) starts the services the end-to-end tests and the
//! benchmark run against; [`certs`] makes TLS certificates.

pub mod certs;
#[cfg(feature = "harness")]
pub mod harness;

use std::io::Write;
use std::path::{Path, PathBuf};

/// The environment variable naming the peer-data folder (a copy of `shared/peer-data`).
pub const PEER_DATA_ENV: &str = "TRANQUILITY_PEER_DATA";

/// The environment variable naming a file that collects one line per skipped test, so the
/// test script can list them at the end of a run.
pub const SKIPPED_LOG_ENV: &str = "TRANQUILITY_SKIPPED_LOG";

/// Where each peer-data folder comes from (its `SOURCES.txt` has the details).
const ORIGINS: &[(&str, &str)] = &[
    (
        "tranquility-configs",
        "github.com/druid-io/tranquility at c0a42da: distribution/src/universal/conf and the test resources of core and server",
    ),
    (
        "druid-it",
        "github.com/apache/druid at druid-0.21.1: integration-tests/src/test/resources/indexer (realtime index test)",
    ),
    (
        "druid-kafka-it",
        "github.com/apache/druid: integration-tests/src/test/resources/stream/data (supervisor spec templates)",
    ),
];

/// The peer-data root: `$TRANQUILITY_PEER_DATA`, else the first `shared/peer-data` folder in
/// `start` or one of its parents.
pub fn peer_data_root(start: &Path) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(PEER_DATA_ENV) {
        let dir = PathBuf::from(dir);
        return dir.is_dir().then_some(dir);
    }
    start
        .ancestors()
        .map(|a| a.join("shared/peer-data"))
        .find(|p| p.is_dir())
}

/// The peer-data file or folder `rel` (such as `tranquility-configs/server.json.example`),
/// searched from `manifest_dir`; `None` after reporting the skip when it is absent.
///
/// Use it through [`peer_data_or_skip!`], which returns from the test.
pub fn peer_data(manifest_dir: &str, rel: &str) -> Option<PathBuf> {
    let found = peer_data_root(Path::new(manifest_dir))
        .map(|root| root.join(rel))
        .filter(|p| p.exists());
    if found.is_none() {
        report_skip(rel);
    }
    found
}

/// Tells the reader and the skip log that the running test skipped for want of `rel`.
fn report_skip(rel: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("(unnamed test)");
    let folder = rel.split('/').next().unwrap_or(rel);
    let origin = ORIGINS
        .iter()
        .find(|(name, _)| *name == folder)
        .map_or("see shared/peer-data/README.md", |(_, origin)| origin);
    record_skip(
        test,
        &format!("peer-data/{rel}"),
        &format!("set {PEER_DATA_ENV} to a copy of shared/peer-data; the files come from {origin}"),
    );
}

/// Reports that `test` skipped because `needs` is missing, and how to get it (`remedy`): on
/// stderr, and as a line of the skip log when `$TRANQUILITY_SKIPPED_LOG` names one, so the
/// test script lists every skip at the end of a run.
pub fn record_skip(test: &str, needs: &str, remedy: &str) {
    // Cargo and nextest name the package being tested; the thread names only the test.
    let test = match std::env::var("CARGO_PKG_NAME") {
        Ok(package) if !test.starts_with(&package) => format!("{package}::{test}"),
        _ => test.to_string(),
    };
    eprintln!("SKIPPED {test}: {needs} not found ({remedy})");
    if let Some(log) = std::env::var_os(SKIPPED_LOG_ENV) {
        // Appends of one short line are atomic enough for tests running in parallel.
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(file, "{test}\t{needs}\t{remedy}");
        }
    }
}

/// The path of a peer-data file or folder, or a visible skip: the calling test returns.
///
/// ```ignore
/// let dir = test_support::peer_data_or_skip!("tranquility-configs");
/// ```
#[macro_export]
macro_rules! peer_data_or_skip {
    ($rel:expr) => {
        match $crate::peer_data(env!("CARGO_MANIFEST_DIR"), $rel) {
            Some(path) => path,
            None => return,
        }
    };
}

/// The repository's own `examples/configs` folder, the configs a plain clone tests with.
pub fn example_configs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("test-support sits in the workspace root")
        .join("examples/configs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_folder_is_none_and_logged() {
        let dir = std::env::temp_dir().join(format!("peer-skip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("skipped.log");
        // The variables are read by this process only; no other test here touches them.
        std::env::set_var(SKIPPED_LOG_ENV, &log);
        std::env::set_var(PEER_DATA_ENV, &dir);
        assert_eq!(peer_data("/nonexistent", "druid-it/x.json"), None);
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(logged.contains("druid-it/x.json"), "{logged}");
        assert!(logged.contains("druid-0.21.1"), "{logged}");

        std::fs::create_dir_all(dir.join("druid-it")).unwrap();
        std::fs::write(dir.join("druid-it/x.json"), "{}").unwrap();
        assert_eq!(
            peer_data("/nonexistent", "druid-it/x.json"),
            Some(dir.join("druid-it/x.json"))
        );
        std::env::remove_var(SKIPPED_LOG_ENV);
        std::env::remove_var(PEER_DATA_ENV);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn example_configs_are_in_the_repository() {
        assert!(example_configs().join("server.json").is_file());
    }
}
