//! A test stand-in for a dataSource pipeline: extracts timestamps, holds events until a
//! flush (like `lingerMillis = -1`), then answers Sent, or Failed for events containing
//! `"FAIL"`, or Dropped(OutsideWindow) for events containing `"OLD"`.
#![allow(dead_code)]

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tranquility::beam::{DropReason, Outcome, SendError};
use tranquility::event::TimestampExtractor;
use tranquility::metrics::events::{record_outcomes, EventsReceived};
use tranquility::metrics::{DataSourceMetrics, Metrics};
use tranquility::spec::{ParseSpec, TimestampSpec};
use tranquility_server::{AppState, DataSourceEntry, Ingest, OutcomesFuture, ServerConfig};

#[derive(Debug)]
pub struct StandIn {
    metrics: DataSourceMetrics,
    extractor: TimestampExtractor,
    buffer: Mutex<Vec<(Bytes, oneshot::Sender<Outcome>)>>,
    pub sent: Mutex<Vec<Bytes>>,
}

impl StandIn {
    pub fn new(name: &str, metrics: &Metrics) -> Arc<Self> {
        Arc::new(Self {
            metrics: metrics.data_source(name),
            extractor: TimestampExtractor::new(&TimestampSpec::new("timestamp", "auto")).unwrap(),
            buffer: Mutex::new(Vec::new()),
            sent: Mutex::new(Vec::new()),
        })
    }

    pub fn sent_texts(&self) -> Vec<String> {
        self.sent
            .lock()
            .iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    }

    pub fn buffered(&self) -> usize {
        self.buffer.lock().len()
    }
}

#[async_trait]
impl Ingest for StandIn {
    async fn hand_in(&self, raws: Vec<Bytes>) -> OutcomesFuture {
        EventsReceived {
            count: raws.len() as u64,
        }
        .emit(&self.metrics);
        let mut answers = Vec::new();
        for raw in raws {
            let (tx, rx) = oneshot::channel();
            if self.extractor.extract(&raw).is_err() {
                let outcome = Outcome::Dropped(DropReason::Unparseable);
                record_outcomes(&self.metrics, std::slice::from_ref(&outcome));
                let _ = tx.send(outcome);
            } else {
                self.buffer.lock().push((raw, tx));
            }
            answers.push(rx);
        }
        Box::pin(async move {
            let mut out = Vec::new();
            for rx in answers {
                out.push(rx.await.unwrap_or(Outcome::Dropped(DropReason::BeamClosed)));
            }
            out
        })
    }

    fn drop_unparseable(&self, count: u64) {
        EventsReceived { count }.emit(&self.metrics);
        record_outcomes(
            &self.metrics,
            &vec![Outcome::Dropped(DropReason::Unparseable); count as usize],
        );
    }

    async fn flush(&self) {
        let batch = std::mem::take(&mut *self.buffer.lock());
        for (raw, tx) in batch {
            let text = String::from_utf8_lossy(&raw);
            let outcome = if text.contains("FAIL") {
                Outcome::failed(SendError::Push {
                    target: "task".into(),
                    message: "refused".into(),
                })
            } else if text.contains("OLD") {
                Outcome::Dropped(DropReason::OutsideWindow)
            } else {
                self.sent.lock().push(raw.clone());
                Outcome::Sent
            };
            record_outcomes(&self.metrics, std::slice::from_ref(&outcome));
            let _ = tx.send(outcome);
        }
    }

    async fn close(&self) {
        self.flush().await;
    }

    fn metrics(&self) -> &DataSourceMetrics {
        &self.metrics
    }
}

/// State with dataSources `wiki` (json lines) and `csvds` (csv columns ts,page,n).
pub fn state(config: ServerConfig) -> (AppState, Arc<StandIn>, Arc<StandIn>) {
    let metrics = Metrics::new();
    let wiki = StandIn::new("wiki", &metrics);
    let csv = StandIn::new("csvds", &metrics);
    let csv_spec: ParseSpec = serde_json::from_str(
        r#"{"format":"csv","columns":["timestamp","page","n"],"timestampSpec":{"column":"timestamp"}}"#,
    )
    .unwrap();
    let state = AppState::new(
        config,
        metrics,
        [
            ("wiki".to_string(), DataSourceEntry::new(wiki.clone(), None)),
            (
                "csvds".to_string(),
                DataSourceEntry::new(csv.clone(), Some(&csv_spec)),
            ),
        ],
    );
    (state, wiki, csv)
}
