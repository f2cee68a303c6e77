//! The seam: one beam per dataSource that stands for whichever backend was chosen.
//!
//! An explicit `druid.ingestion` builds its backend at once, so a bad setting is a startup
//! error. `auto` reads the Overlord's `GET /status` in the background as soon as it is built
//! (one attempt); if the Overlord was not reachable then, the first send reads it (with the
//! Overlord's retries), and until a read succeeds those events fail with the reason, to be
//! retried by their producer. The choice is logged once and shown by [`BackendHandle`].

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::OnceCell;
use tracing::{info, warn};

use super::{choose, probe, unused_properties, Backend, Choice, DruidStatus};
use crate::beam::{Beam, CloseError, DropReason, Outcome, SendError};
use crate::druid::overlord::OverlordClient;
use crate::event::Event;
use crate::retry::RetryPolicy;
use crate::spec::properties::Ingestion;
use crate::spec::Properties;

/// Builds a dataSource's beam for a backend; `status` is Druid's when it was read. The error
/// names what is wrong (a missing setting, a spec that cannot be translated).
pub type BackendFactory =
    Box<dyn Fn(Backend, Option<&DruidStatus>) -> Result<Arc<dyn Beam>, String> + Send + Sync>;

/// A dataSource's beam on the backend `druid.ingestion` names, or the one `auto` picks.
#[derive(Debug, Clone)]
pub struct BackendBeam {
    shared: Arc<Shared>,
}

/// A view of which backend a [`BackendBeam`] runs, for logs and health pages.
#[derive(Debug, Clone)]
pub struct BackendHandle {
    shared: Arc<Shared>,
}

struct Shared {
    data_source: String,
    ingestion: Ingestion,
    kafka_configured: bool,
    overlord: OverlordClient,
    factory: BackendFactory,
    properties: Properties,
    chosen: OnceCell<Chosen>,
    closed: AtomicBool,
}

struct Chosen {
    backend: Backend,
    beam: Arc<dyn Beam>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendBeam")
            .field("data_source", &self.data_source)
            .field("ingestion", &self.ingestion)
            .field("backend", &self.chosen.get().map(|c| c.backend))
            .finish_non_exhaustive()
    }
}

impl BackendBeam {
    /// The beam of `data_source` for `druid.ingestion=ingestion`. `overlord` answers
    /// `GET /status` for `auto`; `properties` are the dataSource's (those without meaning on
    /// the chosen backend are named in one warning); `kafka_configured` says whether
    /// `druid.ingestion.kafka.bootstrap.servers` is set. An explicit backend is built now;
    /// its error is returned.
    pub fn new(
        data_source: &str,
        ingestion: Ingestion,
        kafka_configured: bool,
        overlord: OverlordClient,
        properties: Properties,
        factory: BackendFactory,
    ) -> Result<Self, String> {
        let shared = Arc::new(Shared {
            data_source: data_source.to_string(),
            ingestion,
            kafka_configured,
            overlord,
            factory,
            properties,
            chosen: OnceCell::new(),
            closed: AtomicBool::new(false),
        });
        if ingestion != Ingestion::Auto {
            let chosen = shared.build(choose(ingestion, None, kafka_configured), None)?;
            // A fresh cell takes the value.
            let _ = shared.chosen.set(chosen);
        } else if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let early = shared.clone();
            runtime.spawn(async move {
                let once = early.overlord.with_retry(RetryPolicy::overlord().once());
                if let Err(e) = early.decide(&once).await {
                    info!(
                        dataSource = %early.data_source,
                        error = %e,
                        "druid.ingestion=auto: the backend is chosen at the first send"
                    );
                }
            });
        }
        Ok(Self { shared })
    }

    /// Which backend this beam runs, for logs and health pages.
    pub fn handle(&self) -> BackendHandle {
        BackendHandle {
            shared: self.shared.clone(),
        }
    }
}

impl BackendHandle {
    /// The backend, once chosen (`auto` chooses at start or at the first send).
    pub fn backend(&self) -> Option<Backend> {
        self.shared.chosen.get().map(|c| c.backend)
    }

    /// The backend's name, or `undecided` while `auto` has not read Druid's version.
    pub fn describe(&self) -> &'static str {
        self.backend().map_or("undecided", Backend::as_str)
    }
}

impl Shared {
    fn build(&self, choice: Choice, status: Option<&DruidStatus>) -> Result<Chosen, String> {
        let beam = (self.factory)(choice.backend, status)?;
        info!(
            dataSource = %self.data_source,
            backend = choice.backend.as_str(),
            "backend chosen: {}",
            choice.reason
        );
        let unused = unused_properties(&self.properties, choice.backend);
        if !unused.is_empty() {
            warn!(
                dataSource = %self.data_source,
                backend = choice.backend.as_str(),
                "these properties have no meaning on the {} backend and are ignored: {}",
                choice.backend,
                unused.join(", ")
            );
        }
        Ok(Chosen {
            backend: choice.backend,
            beam,
        })
    }

    /// The chosen backend, reading Druid's version through `overlord` if not done yet.
    async fn decide(&self, overlord: &OverlordClient) -> Result<&Chosen, SendError> {
        self.chosen
            .get_or_try_init(|| async {
                let ds = &self.data_source;
                let status = probe(overlord).await.map_err(|e| {
                    let message = format!("druid.ingestion=auto cannot choose a backend: {e}");
                    SendError::backend(ds, message, e.is_retriable())
                })?;
                let choice = choose(self.ingestion, Some(&status), self.kafka_configured);
                (self.build(choice, Some(&status)))
                    .map_err(|message| SendError::backend(ds, message, false))
            })
            .await
    }
}

#[async_trait]
impl Beam for BackendBeam {
    async fn send_batch(&self, events: Vec<Event>) -> Vec<Outcome> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) && shared.chosen.get().is_none() {
            return vec![Outcome::Dropped(DropReason::BeamClosed); events.len()];
        }
        match shared.decide(&shared.overlord).await {
            Ok(chosen) => chosen.beam.send_batch(events).await,
            Err(e) => {
                let e = Arc::new(e);
                vec![Outcome::Failed(e); events.len()]
            }
        }
    }

    async fn close(&self) -> Result<(), CloseError> {
        self.shared.closed.store(true, Ordering::Release);
        match self.shared.chosen.get() {
            Some(chosen) => chosen.beam.close().await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beam::testing::MemoryBeam;
    use crate::druid::overlord::{OverlordConfig, OverlordEndpoint};
    use axum::routing::get;
    use parking_lot::Mutex;
    use serde_json::json;

    fn overlord(url: String) -> OverlordClient {
        OverlordClient::new(
            OverlordEndpoint::Url(url),
            OverlordConfig {
                retry: RetryPolicy::overlord().once(),
                ..OverlordConfig::default()
            },
        )
    }

    /// A factory that hands out memory beams and remembers what it was asked for.
    fn factory(asked: Arc<Mutex<Vec<Backend>>>, memory: MemoryBeam) -> BackendFactory {
        Box::new(move |backend, _| {
            asked.lock().push(backend);
            if backend == Backend::Supervisor {
                return Err("no brokers".into());
            }
            Ok(Arc::new(memory.clone()))
        })
    }

    async fn status_server(version: &'static str) -> String {
        let app = axum::Router::new().route(
            "/status",
            get(move || async move { axum::Json(json!({"version": version, "modules": []})) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test]
    async fn an_explicit_backend_is_built_at_once_and_its_error_returned() {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let memory = MemoryBeam::new();
        let beam = BackendBeam::new(
            "wiki",
            Ingestion::Batch,
            false,
            overlord("http://127.0.0.1:1".into()),
            Properties::new(),
            factory(asked.clone(), memory.clone()),
        )
        .unwrap();
        assert_eq!(beam.handle().backend(), Some(Backend::Batch));
        assert!(beam.send_batch(vec![Event::new(0, &b"{}"[..])]).await[0].is_sent());
        let err = BackendBeam::new(
            "wiki",
            Ingestion::Supervisor,
            false,
            overlord("http://127.0.0.1:1".into()),
            Properties::new(),
            factory(asked.clone(), memory),
        )
        .unwrap_err();
        assert_eq!(err, "no brokers");
        assert_eq!(*asked.lock(), [Backend::Batch, Backend::Supervisor]);
    }

    #[tokio::test]
    async fn auto_reads_the_version_and_fails_events_until_it_can() {
        // Nothing listens at first: the events fail, naming why, and nothing is chosen.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let memory = MemoryBeam::new();
        let beam = BackendBeam::new(
            "wiki",
            Ingestion::Auto,
            false,
            overlord(format!("http://127.0.0.1:{port}")),
            Properties::new(),
            factory(asked.clone(), memory.clone()),
        )
        .unwrap();
        let outcomes = beam.send_batch(vec![Event::new(0, &b"{}"[..])]).await;
        match &outcomes[0] {
            Outcome::Failed(e) => {
                assert!(e.to_string().contains("GET /status"), "{e}");
                assert!(e.is_retriable(), "{e}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        assert_eq!(beam.handle().describe(), "undecided");

        // Druid 33 without Kafka settings: batch, chosen once.
        let url = status_server("33.0.0").await;
        let beam = BackendBeam::new(
            "wiki",
            Ingestion::Auto,
            false,
            overlord(url),
            Properties::new(),
            factory(asked.clone(), memory.clone()),
        )
        .unwrap();
        for _ in 0..3 {
            assert!(beam.send_batch(vec![Event::new(0, &b"{}"[..])]).await[0].is_sent());
        }
        assert_eq!(beam.handle().describe(), "batch");
        assert_eq!(*asked.lock(), [Backend::Batch]);
        beam.close().await.unwrap();
        assert!(memory.is_closed());
    }
}
