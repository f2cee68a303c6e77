//! What the commands share: loading a configuration file, building pipelines, and telling
//! configuration errors (exit code 2) from runtime failures (exit code 1).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::Context;
use serde_json::Value;
use tranquility::pipeline::{PipelineOptions, Pipelines};
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

/// A configuration file's JSON tree (YAML read as the same tree) and its name in messages,
/// once it loads as a valid configuration.
pub fn load_config_root(path: &Path) -> anyhow::Result<(Value, String)> {
    // Loading it plainly first gives the usual precise errors for a bad file.
    let checked = load_config(path)?;
    let name = checked.source().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {name}"))?;
    let lower = name.to_ascii_lowercase();
    let root: Value = if lower.ends_with(".json") || text.trim_start().starts_with('{') {
        serde_json::from_str(&text).map_err(|e| ConfigProblem(format!("{name}: {e}")))?
    } else {
        serde_yaml_ng::from_str(&text).map_err(|e| ConfigProblem(format!("{name}: {e}")))?
    };
    Ok((root, name))
}

/// Sets `key` in the global `properties` and in every dataSource's own `properties`.
pub fn set_property(root: &mut Value, key: &str, value: &str) {
    fn set(props: Option<&mut Value>, key: &str, value: &str) {
        if let Some(Value::Object(map)) = props {
            map.insert(key.to_string(), Value::from(value));
        }
    }
    if let Value::Object(map) = root {
        map.entry("properties")
            .or_insert_with(|| Value::Object(Default::default()));
        set(map.get_mut("properties"), key, value);
        // dataSources is a list in some files and a map by name in others.
        let data_sources: Vec<&mut Value> = match map.get_mut("dataSources") {
            Some(Value::Array(list)) => list.iter_mut().collect(),
            Some(Value::Object(by_name)) => by_name.values_mut().collect(),
            _ => Vec::new(),
        };
        for ds in data_sources {
            set(ds.get_mut("properties"), key, value);
        }
    }
}

/// Builds every dataSource's pipeline; a bad property or spec is a configuration error.
pub fn build_pipelines(
    config: &TranquilityConfig,
    options: PipelineOptions,
) -> anyhow::Result<Pipelines> {
    Pipelines::from_config(config, options)
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
    use serde_json::json;

    #[test]
    fn overrides_reach_lists_and_maps_of_data_sources() {
        let mut list = json!({"dataSources": [{"spec": {}, "properties": {"a": "1"}}]});
        set_property(&mut list, "a", "2");
        assert_eq!(list["properties"]["a"], "2");
        assert_eq!(list["dataSources"][0]["properties"]["a"], "2");
        let mut map = json!({"dataSources": {"x": {"spec": {}, "properties": {}}},
                             "properties": {"b": "0"}});
        set_property(&mut map, "a", "3");
        assert_eq!(map["properties"], json!({"b": "0", "a": "3"}));
        assert_eq!(map["dataSources"]["x"]["properties"]["a"], "3");
    }

    #[test]
    fn config_errors_are_told_apart() {
        let e: anyhow::Error = ConfigProblem("f: bad".into()).into();
        assert!(is_config_error(&e.context("loading")));
        assert!(!is_config_error(&anyhow::anyhow!("connection refused")));
    }
}
