//! Services that the end-to-end tests and the benchmark start on free loopback ports: a
//! [`DruidProxy`] that slows, loses or refuses what goes to a Druid, and a [`Tansu`]
//! Kafka-protocol broker. Each stops when its handle drops; starting one returns an error
//! that names what is missing rather than panicking, so the benchmark can report a figure
//! as not measured and tests can `expect` with the cause.

mod druid_proxy;
mod tansu;

use std::net::TcpListener;
use std::path::Path;
use std::process::Child;

pub use druid_proxy::DruidProxy;
pub use tansu::{tansu_bin, Tansu, TansuOptions, TANSU_BIN_ENV};

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
}

/// Kills and reaps a service's process, if it runs.
pub fn kill(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The end of a service's log file (its last 2000 bytes, or all of it when they do not start
/// at a character boundary; empty when it cannot be read).
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(2000);
    text.get(start..).unwrap_or(&text).to_string()
}
