//! What the commands share: loading a configuration file, building pipelines, and telling
//! configuration errors (exit code 2) from runtime failures (exit code 1).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use tranquility::pipeline::{PipelineBuilder, Pipelines};
use tranquility::spec::{ConfigError, DataSourceConfig, TranquilityConfig};

/// A configuration problem that is not a [`ConfigError`] (e.g. a pipeline that cannot be
/// built from a dataSource's properties). The message names the file.
#[derive(Debug)]
pub struct ConfigProblem(pub String);

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigProblem {}

/// Whether `err` (or anything it wraps) is a configuration error.
pub fn is_config_error(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| e.is::<ConfigError>() || e.is::<ConfigProblem>())
}

/// The dataSource called `name`, or a problem naming the ones the file has.
pub fn named_data_source<'a>(
    config: &'a TranquilityConfig,
    name: &str,
) -> Result<&'a DataSourceConfig, ConfigProblem> {
    config.data_source(name).ok_or_else(|| {
        ConfigProblem(format!(
            "{}: no dataSource '{name}' (it has: {})",
            config.source(),
            data_source_names(config)
        ))
    })
}

/// The file's dataSource names, comma-separated, in file order.
pub fn data_source_names(config: &TranquilityConfig) -> String {
    config
        .data_sources()
        .iter()
        .map(|d| d.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Loads a Tranquility configuration file (JSON or YAML).
pub fn load_config(path: &Path) -> anyhow::Result<TranquilityConfig> {
    let config = TranquilityConfig::load(path)?;
    if config.data_sources().is_empty() {
        return Err(ConfigProblem(format!(
            "{}: dataSources: no dataSource is defined (found an empty list)",
            config.source()
        ))
        .into());
    }
    Ok(config)
}

/// Builds every dataSource's pipeline; a bad property or spec is a configuration error.
pub fn build_pipelines(
    config: &TranquilityConfig,
    options: PipelineBuilder,
) -> anyhow::Result<Pipelines> {
    options
        .build(config)
        .map_err(|e| ConfigProblem(format!("{}: {e}", config.source())).into())
}

/// The address clients on this machine use to reach a listener bound to `addr`.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_are_told_apart() {
        let e: anyhow::Error = ConfigProblem("f: bad".into()).into();
        assert!(is_config_error(&e.context("loading")));
        assert!(!is_config_error(&anyhow::anyhow!("connection refused")));
    }
}
