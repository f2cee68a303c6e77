//! The standalone `druid-local` binary stops on SIGTERM as on CTRL-C: it shuts down (tasks
//! ended, segments kept in its data dir) and exits 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sigterm_shuts_down_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_druid-local"))
        .args(["--port", "0", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The address line goes to stdout (the logs to stderr).
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = stdout
            .next()
            .expect("druid-local printed its address")
            .unwrap();
        if let Some(url) = line.strip_prefix("druid-local listening on ") {
            break url.trim().to_string();
        }
    };
    // Serving: the Overlord answers.
    let status = reqwest::blocking_get(&format!("{url}/status"));
    assert_eq!(status, 200);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "druid-local ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
    assert_eq!(exit.code(), Some(0), "{logs}");
    assert!(logs.contains("stop signal received"), "{logs}");
    assert!(logs.contains("druid-local stopped"), "{logs}");
}

mod reqwest {
    /// The status of a GET, from a small runtime (the test itself is synchronous).
    pub fn blocking_get(url: &str) -> u16 {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async { ::reqwest::get(url).await.map(|r| r.status().as_u16()) })
            .unwrap_or(0)
    }
}
