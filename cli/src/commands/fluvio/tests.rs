//! `tranquility fluvio` at the client seam, with a real SIGTERM: a topic that goes idle (its
//! `next()` waiting for good) must still drain, commit and stop cleanly. The source models the
//! Fluvio client: after a cancelled `next()`, a commit never returns.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tranquility::pipeline::Pipelines;
use tranquility::spec::TranquilityConfig;
use tranquility_fluvio::{DataSourceTopic, SourceError, SourceRecord};
use tranquility_fluvio::{FluvioConfig, PartitionId, Position, RecordSource};

#[derive(Debug, Default)]
struct Topic {
    records: Mutex<VecDeque<SourceRecord>>,
    /// The offset stored at each commit (the last processed record, as Fluvio stores it).
    stored: Mutex<Vec<i64>>,
    waiting: AtomicBool,
    cancelled: AtomicBool,
}

#[derive(Debug, Clone, Default)]
struct IdleTopic(Arc<Topic>);

/// Drops with a waiting `next()`: the read is cancelled.
struct Cancelled(Arc<Topic>);

impl Drop for Cancelled {
    fn drop(&mut self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl RecordSource for IdleTopic {
    async fn next(&self) -> Option<Result<SourceRecord, SourceError>> {
        if let Some(record) = self.0.records.lock().unwrap().pop_front() {
            return Some(Ok(record));
        }
        let _cancelled = Cancelled(self.0.clone());
        self.0.waiting.store(true, Ordering::SeqCst);
        std::future::pending().await
    }

    async fn commit(&self, positions: &[Position]) -> Result<(), SourceError> {
        if self.0.cancelled.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let mut stored = self.0.stored.lock().unwrap();
        stored.extend(positions.iter().map(|p| p.offset - 1));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_an_idle_topic_drains_commits_and_stops_cleanly() {
    // Listening before anything else, so the signal sent below cannot end the test process.
    let _listening =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    let text = include_str!("../../../../examples/configs/fluvio.json");
    let config = TranquilityConfig::from_str(text, "fluvio.json").unwrap();
    let fluvio = FluvioConfig::from_config(&config).unwrap();
    let pipelines = crate::setup::build_pipelines(&config, Pipelines::builder()).unwrap();
    // Dropped on the way (no timestamp; not JSON), so nothing needs Druid, and committed.
    let topic = IdleTopic::default();
    for (offset, value) in [(0, r#"{"host": "a"}"#), (1, "not json"), (2, r#"{"n": 2}"#)] {
        topic.0.records.lock().unwrap().push_back(SourceRecord {
            partition: PartitionId::new("metrics", 0),
            offset,
            payload: Some(Bytes::from_static(value.as_bytes())),
        });
    }
    let open = |_: &DataSourceTopic| {
        let topic = topic.clone();
        async move { Ok::<_, SourceError>(topic) }
    };
    let armed = AtomicBool::new(false);
    let shutdown = async {
        let mut signal = pin!(tranquility_server::shutdown_signal());
        // Polled once, it listens: only then may the signal be sent.
        poll_fn(|cx| {
            let polled = signal.as_mut().poll(cx);
            armed.store(true, Ordering::SeqCst);
            polled
        })
        .await
    };
    let consuming = super::consume(&fluvio, &pipelines, open, shutdown);
    let terminate = async {
        while !(armed.load(Ordering::SeqCst) && topic.0.waiting.load(Ordering::SeqCst)) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let pid = std::process::id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    };
    let (consumed, ()) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(consuming, terminate)
    })
    .await
    .expect("stopped within 30 s of SIGTERM");
    consumed.expect("a clean stop");
    assert_eq!(
        *topic.0.stored.lock().unwrap(),
        [2],
        "the final commit covers every record read"
    );
    let tally = pipelines.get("metrics").unwrap().metrics().snapshot();
    assert_eq!((tally.received, tally.dropped_total()), (3, 3));
}
