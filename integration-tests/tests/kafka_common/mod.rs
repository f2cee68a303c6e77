//! Kafka test helpers: the harness's Kafka client, log output, and waiting for a condition.

#![allow(dead_code, unused_imports)] // each test file uses some of these

use std::time::{Duration, Instant};

pub use integration_tests::kafka::{committed, create_topic, kafka_py, produce, KafkaClient};

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

pub async fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what}: not reached after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
