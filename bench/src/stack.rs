//! The Tranquility Server in this process, on a free loopback port, over production pipelines.

use tokio::sync::oneshot;
use tranquility::metrics::Tally;
use tranquility::pipeline::DataSourcePipeline;
use tranquility::spec::TranquilityConfig;
use tranquility_server::{AppState, DataSourceReport, Server, ServerConfig};

use crate::workload;

/// A running server; stop it with [`ServerStack::stop`] to drain and get the final counts.
#[derive(Debug)]
pub struct ServerStack {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pipelines: Vec<DataSourcePipeline>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<Vec<DataSourceReport>>>,
}

impl ServerStack {
    /// Builds the pipelines of `config` against the Overlord at `overlord_url` and serves them.
    pub async fn start(config: &TranquilityConfig, overlord_url: &str) -> anyhow::Result<Self> {
        let pipelines = workload::pipelines(config, overlord_url)?;
        let list: Vec<DataSourcePipeline> = pipelines.iter().cloned().collect();
        let state =
            AppState::from_pipelines(ServerConfig::from_config(config)?, config, &pipelines);
        // Loopback only, on a free port, whatever the config says.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let server = Server::from_listener(listener, state);
        let url = format!("http://{}", server.local_addr()?);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            url,
            pipelines: list,
            stop,
            task,
        })
    }

    /// The counts of `data_source` so far, and its events still pending.
    pub fn tally(&self, data_source: &str) -> Option<(Tally, i64)> {
        self.pipelines
            .iter()
            .find(|p| p.name() == data_source)
            .map(|p| (p.metrics().snapshot(), p.metrics().pending()))
    }

    /// Stops gracefully (flushing everything pending) and returns the final counts.
    pub async fn stop(self) -> anyhow::Result<Vec<DataSourceReport>> {
        let _ = self.stop.send(());
        Ok(self.task.await??)
    }
}
