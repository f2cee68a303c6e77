//! `tranquility kafka -configFile kafka.json`: Tranquility Kafka over the dataSources of a
//! configuration file, until SIGTERM or CTRL-C; then a graceful stop (wait for outcomes,
//! commit, leave the group) and the final counts.
//!
//! On Druid 31+ (`druid.ingestion=supervisor`, or `auto` there), Druid's own Kafka
//! supervisors read the topics the mappings name, and only mappings a supervisor cannot
//! express are consumed here (`supervisors`).
//!
//! With `kafka.http.port` set in the file's global properties (or `--http-port`), it also
//! serves `GET /metrics` (Prometheus text) and `GET /health` on `http.bindAddress` (default
//! `0.0.0.0`). Without, there is no HTTP listener, as in the original Kafka process.
//! `http.port` is the Server's port: in a kafka file it is ignored with a warning, so a Kafka
//! process and a Server sharing properties on one host do not fight over the port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tranquility::metrics::Metrics;
use tranquility::pipeline::Pipelines;
use tranquility::spec::TranquilityConfig;
use tranquility_kafka::KafkaProperties;
use tranquility_kafka::{KafkaConfig, KafkaConnector, KafkaHealth, PipelineSinks};
use tranquility_server::ServerProperties;

mod supervisors;

/// Options of `tranquility kafka`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The configuration file is the original Tranquility Kafka's `kafka.json` \
    (JSON or YAML): `dataSources` with their specs and properties (topicPattern, \
    useTopicAsDataSource, ...), and global properties such as kafka.bootstrap.servers, \
    kafka.group.id, consumer.numThreads and commit.periodMillis. Set kafka.http.port to \
    serve /metrics and /health."
)]
pub struct Args {
    /// Configuration file (JSON or YAML); also `-configFile FILE`.
    #[arg(long = "config-file", value_name = "FILE")]
    pub config_file: PathBuf,
    /// Serve /metrics and /health on this port (over the file's `kafka.http.port`).
    #[arg(long = "http-port", value_name = "PORT")]
    pub http_port: Option<u16>,
    /// Druid 31+: Druid's supervisors read the topics (see `supervisors`).
    #[command(flatten)]
    pub supervisors: supervisors::SupervisorArgs,
}

/// Consumes until a stop signal or a fatal error, then stops gracefully.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = TranquilityConfig::load(&args.config_file)
        .with_context(|| format!("loading {}", args.config_file.display()))?;
    // On Druid 31+ supervisors may take some or all mappings; the rest is consumed here.
    let taken = supervisors::take_over(config, &args.config_file, &args.supervisors, stop_signal());
    let Some(config) = taken.await? else {
        return Ok(());
    };
    let kafka = KafkaConfig::from_config(&config)?;
    let metrics = Metrics::new();
    let sinks = Arc::new(PipelineSinks::new(
        Pipelines::builder().metrics(metrics.clone()),
    ));
    let listener = match http_address(&config, args.http_port)? {
        Some(addr) => Some((
            addr,
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?,
        )),
        None => None,
    };
    let connector = KafkaConnector::start(kafka, sinks.clone(), &metrics)?;
    let listener = listener.map(|(addr, l)| {
        tracing::info!(address = %addr, "serving /metrics and /health");
        tokio::spawn(serve(l, metrics.clone(), connector.health()))
    });
    let result = connector.run_until(stop_signal()).await;
    sinks.close().await;
    for pipeline in sinks.pipelines() {
        let t = pipeline.metrics().snapshot();
        tracing::info!(
            dataSource = pipeline.name(),
            received = t.received,
            sent = t.sent,
            failed = t.failed,
            "final counts: {t:?}"
        );
    }
    if let Some(task) = listener {
        task.abort();
    }
    result.context("the Kafka connector stopped on an error")
}

/// The listener's address: `--http-port`, else the file's `kafka.http.port`; none when
/// neither. A `http.port` in the file is the Server's and is ignored with a warning.
fn http_address(
    config: &TranquilityConfig,
    flag: Option<u16>,
) -> anyhow::Result<Option<SocketAddr>> {
    let props = config.global_properties();
    let own = KafkaProperties::from_properties(props)?.http_port;
    if let Some(server_port) = props.get("http.port") {
        tracing::warn!(
            "{}: http.port ({server_port}) is the Tranquility Server's port and is not used by \
             the kafka command (the original Kafka process served no HTTP); set \
             kafka.http.port to serve /metrics and /health",
            config.source()
        );
    }
    let Some(port) = flag.or(own) else {
        return Ok(None);
    };
    // Where the Server would listen: the same `http.bindAddress`, read through its view.
    let host = ServerProperties::from_properties(props)?.http_bind_address;
    Ok(Some(SocketAddr::new(host, port)))
}

/// `GET /health`: 200 `{"status":"ok"}`, or 503 `{"status":"stalled","stalled":[...]}` naming
/// each owned partition that has lag but has neither consumed nor committed for
/// `consumer.stallTimeoutMillis`, so a supervisor notices a consumer that stopped moving.
async fn health(health: KafkaHealth) -> axum::response::Response {
    use axum::response::IntoResponse;
    let stalled = health.stalled();
    if stalled.is_empty() {
        axum::Json(serde_json::json!({"status": "ok"})).into_response()
    } else {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "stalled", "stalled": stalled})),
        )
            .into_response()
    }
}

async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>, kafka: KafkaHealth) {
    let app: axum::Router =
        tranquility_server::metrics::admin_routes(metrics, move || health(kafka.clone()));
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!(error = %e, "the /metrics listener stopped");
    }
}

/// Completes on CTRL-C or SIGTERM (the helper every command shares), saying so.
async fn stop_signal() {
    tranquility_server::shutdown_signal().await;
    tracing::info!("stop signal received: stopping gracefully");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(properties: &str) -> TranquilityConfig {
        TranquilityConfig::from_str(&format!(r#"{{"properties": {{{properties}}}}}"#), "k.json")
            .unwrap()
    }

    #[test]
    fn the_kafka_command_listens_on_its_own_port_not_the_servers() {
        let addr = |props: &str, flag| http_address(&file(props), flag).unwrap();
        assert_eq!(addr("", None), None);
        // The Server's key alone opens nothing (it is only warned about).
        assert_eq!(addr(r#""http.port": "8200""#, None), None);
        assert_eq!(
            addr(r#""http.port": "8200", "kafka.http.port": "9100""#, None),
            Some("0.0.0.0:9100".parse().unwrap())
        );
        assert_eq!(
            addr(
                r#""kafka.http.port": "9100", "http.bindAddress": "127.0.0.1""#,
                Some(9200)
            ),
            Some("127.0.0.1:9200".parse().unwrap())
        );
    }

    #[test]
    fn a_bad_kafka_http_port_names_the_key() {
        let err =
            TranquilityConfig::from_str(r#"{"properties": {"kafka.http.port": "nine"}}"#, "k.json")
                .unwrap_err()
                .to_string();
        assert!(err.contains("kafka.http.port"), "{err}");
        let err = http_address(&file(r#""kafka.http.port": "70000""#), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("kafka.http.port"), "{err}");
    }
}
