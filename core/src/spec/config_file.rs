//! The Tranquility configuration file (`server.json`, `kafka.json`, their YAML forms):
//! `dataSources` (a map keyed by name, or a list) with a spec and properties each, and the
//! global `properties`.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::properties::{self, property, property_path, Properties, Scope};
use super::{ConfigError, IngestionSpec};

/// One dataSource of a configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSourceConfig {
    /// The dataSource name (`spec.dataSchema.dataSource`).
    pub name: String,
    /// Its ingestion spec.
    pub spec: IngestionSpec,
    /// The global properties overlaid with its own.
    pub properties: Properties,
    /// Only the properties set on this dataSource.
    pub own_properties: Properties,
}

/// A loaded configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct TranquilityConfig {
    source: String,
    data_sources: Vec<DataSourceConfig>,
    global: Properties,
    warnings: Vec<String>,
}

impl TranquilityConfig {
    /// Loads a file: JSON for `.json`, YAML for `.yaml`/`.yml`, else by content.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: name.clone(),
            source,
        })?;
        Self::from_str(&text, &name)
    }

    /// Parses configuration text; `source_name` (a file name) decides JSON or YAML by its
    /// extension and names the source in errors. Unknown extensions are sniffed: text starting
    /// with `{` is JSON, anything else YAML (which also reads most JSON, as the original did).
    pub fn from_str(text: &str, source_name: &str) -> Result<Self, ConfigError> {
        let lower = source_name.to_ascii_lowercase();
        let json = if lower.ends_with(".json") {
            true
        } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            false
        } else {
            text.trim_start().starts_with('{')
        };
        let root = if json {
            serde_json::from_str::<Value>(text).map_err(|e| ConfigError::Syntax {
                file: source_name.to_string(),
                format: "JSON",
                message: e.to_string(),
            })?
        } else {
            parse_yaml(text, source_name)?
        };
        Self::from_value(root, source_name)
    }

    /// Builds the configuration from an already parsed JSON value.
    pub fn from_value(root: Value, source_name: &str) -> Result<Self, ConfigError> {
        Loader {
            file: Arc::from(source_name),
            warnings: Vec::new(),
        }
        .load(root)
    }

    /// The file (or source name) this came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The dataSources in file order.
    pub fn data_sources(&self) -> &[DataSourceConfig] {
        &self.data_sources
    }

    /// The dataSource called `name`.
    pub fn data_source(&self, name: &str) -> Option<&DataSourceConfig> {
        self.data_sources.iter().find(|d| d.name == name)
    }

    /// The global `properties`.
    pub fn global_properties(&self) -> &Properties {
        &self.global
    }

    /// Warnings found while loading (unknown properties, ignored per-dataSource keys); each
    /// was also logged.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Sets `key` to `value` as an override from `origin` (a flag, a command): in the global
    /// properties and on every dataSource, over what the file says. The value is checked
    /// against the property's kind; a key the table does not know is refused.
    pub fn set_property(
        &mut self,
        key: &str,
        value: &str,
        origin: &str,
    ) -> Result<(), ConfigError> {
        let problem = match properties::property(key) {
            Some(def) => properties::check_kind(def.kind, value).err(),
            None if properties::is_known(key) => None,
            None => Some("not a Tranquility property".to_string()),
        };
        if let Some(problem) = problem {
            return Err(ConfigError::invalid(
                origin,
                property_path("properties", key),
                Value::from(value).to_string(),
                problem,
            ));
        }
        let origin: Arc<str> = Arc::from(origin);
        let set = |props: &mut Properties| {
            props.insert_from(
                key.to_string(),
                value.to_string(),
                origin.clone(),
                property_path("properties", key),
            )
        };
        set(&mut self.global);
        for ds in &mut self.data_sources {
            if ds.own_properties.contains_key(key) {
                set(&mut ds.own_properties);
            }
            set(&mut ds.properties);
        }
        Ok(())
    }

    /// Removes every property whose key starts with `prefix`, globally and from every
    /// dataSource, so their defaults apply.
    pub fn unset_properties(&mut self, prefix: &str) {
        self.global.remove_prefixed(prefix);
        for ds in &mut self.data_sources {
            ds.own_properties.remove_prefixed(prefix);
            ds.properties.remove_prefixed(prefix);
        }
    }
}

impl DataSourceConfig {
    /// This dataSource under another name (`spec.dataSchema.dataSource` too), with the same
    /// spec and properties: a topic that names its dataSource (`useTopicAsDataSource`).
    pub fn renamed(&self, name: &str) -> Self {
        let mut renamed = self.clone();
        renamed.name = name.to_string();
        renamed.spec.data_schema.data_source = name.to_string();
        renamed
    }
}

/// Parses a YAML config file into the JSON value the loader reads.
#[cfg(feature = "yaml")]
fn parse_yaml(text: &str, source_name: &str) -> Result<Value, ConfigError> {
    let y: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Syntax {
            file: source_name.to_string(),
            format: "YAML",
            message: e.to_string(),
        })?;
    yaml_to_json(y, "").map_err(|(path, problem)| {
        ConfigError::invalid(
            source_name,
            if path.is_empty() {
                "(root)".into()
            } else {
                path
            },
            "a YAML value",
            problem,
        )
    })
}

/// Without the `yaml` feature a YAML file is refused, saying how to get it read.
#[cfg(not(feature = "yaml"))]
fn parse_yaml(_text: &str, source_name: &str) -> Result<Value, ConfigError> {
    Err(ConfigError::Syntax {
        file: source_name.to_string(),
        format: "YAML",
        message: "this build reads JSON config files only (tranquility-core was built without \
                  its `yaml` feature); convert the file to JSON or enable the feature"
            .into(),
    })
}

#[cfg(feature = "yaml")]
/// Converts YAML to JSON; non-string keys are stringified (SnakeYAML's maps allow them).
fn yaml_to_json(y: serde_yaml_ng::Value, path: &str) -> Result<Value, (String, String)> {
    use serde_yaml_ng::Value as Y;
    Ok(match y {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| {
                        (
                            path.to_string(),
                            format!("the number {n} cannot be represented in JSON"),
                        )
                    })?
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| yaml_to_json(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    Y::Null => "null".to_string(),
                    other => {
                        return Err((
                            path.to_string(),
                            format!("map keys must be scalars, found {other:?}"),
                        ));
                    }
                };
                let child = join(path, &key);
                out.insert(key, yaml_to_json(v, &child)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value, path)?,
    })
}

/// `base.key`, or `base["a.b"]` when the key needs quoting.
fn join(base: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (base.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{base}.{key}"),
        (_, false) => property_path(base, key),
    }
}

/// A short JSON rendering of a value for error messages.
fn show(v: Option<&Value>) -> String {
    match v {
        None => "nothing".to_string(),
        Some(v) => {
            let s = v.to_string();
            if s.chars().count() > 120 {
                let cut: String = s.chars().take(117).collect();
                format!("{cut}...")
            } else {
                s
            }
        }
    }
}

struct Loader {
    file: Arc<str>,
    warnings: Vec<String>,
}

impl Loader {
    fn invalid(
        &self,
        path: impl Into<String>,
        value: Option<&Value>,
        problem: impl Into<String>,
    ) -> ConfigError {
        ConfigError::invalid(self.file.as_ref(), path, show(value), problem)
    }

    fn warn(&mut self, message: String) {
        tracing::warn!(file = %self.file, "{message}");
        self.warnings.push(message);
    }

    fn load(mut self, root: Value) -> Result<TranquilityConfig, ConfigError> {
        let mut root = match root {
            Value::Null => serde_json::Map::new(),
            Value::Object(m) => m,
            other => {
                return Err(self.invalid(
                    "(root)",
                    Some(&other),
                    "expected an object with \"dataSources\" and \"properties\"",
                ))
            }
        };
        let unknown: Vec<String> = root
            .keys()
            .filter(|k| *k != "dataSources" && *k != "properties")
            .cloned()
            .collect();
        for key in unknown {
            self.warn(format!(
                "unknown top-level key {key:?} ignored (expected dataSources and properties)"
            ));
        }
        let global = self.properties(root.remove("properties"), "properties", None)?;
        let mut data_sources: Vec<DataSourceConfig> = Vec::new();
        match root.remove("dataSources") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (key, entry) in map {
                    let path = join("dataSources", &key);
                    let ds = self.data_source(entry, &path, Some(&key), &global)?;
                    data_sources.push(ds);
                }
            }
            Some(Value::Array(list)) => {
                for (i, entry) in list.into_iter().enumerate() {
                    let path = format!("dataSources[{i}]");
                    let ds = self.data_source(entry, &path, None, &global)?;
                    if data_sources.iter().any(|d| d.name == ds.name) {
                        return Err(self.invalid(
                            format!("{path}.spec.dataSchema.dataSource"),
                            Some(&Value::from(ds.name.clone())),
                            "this dataSource is defined twice; expected each name once",
                        ));
                    }
                    data_sources.push(ds);
                }
            }
            Some(other) => {
                return Err(self.invalid(
                    "dataSources",
                    Some(&other),
                    "dataSources must be a list or map",
                ));
            }
        }
        Ok(TranquilityConfig {
            source: self.file.to_string(),
            data_sources,
            global,
            warnings: self.warnings,
        })
    }

    fn data_source(
        &mut self,
        entry: Value,
        path: &str,
        key: Option<&str>,
        global: &Properties,
    ) -> Result<DataSourceConfig, ConfigError> {
        let mut obj = match entry {
            Value::Object(m) => m,
            other => {
                return Err(self.invalid(
                    path,
                    Some(&other),
                    "expected an object with \"spec\" and \"properties\"",
                ));
            }
        };
        let spec_path = format!("{path}.spec");
        let spec_value = obj.remove("spec").ok_or_else(|| {
            self.invalid(
                spec_path.clone(),
                None,
                "every dataSource needs a \"spec\" (a Druid ingestion spec)",
            )
        })?;
        let spec: IngestionSpec = match serde_path_to_error::deserialize(&spec_value) {
            Ok(s) => s,
            Err(e) => {
                let inner = e.path().clone();
                let (found, at) = lookup(&spec_value, &inner);
                let full = if at.is_empty() {
                    spec_path.clone()
                } else {
                    format!("{spec_path}.{at}")
                };
                return Err(self.invalid(full, found, e.into_inner().to_string()));
            }
        };
        let name = spec.data_source().to_string();
        if let Some(key) = key {
            if key != name {
                return Err(self.invalid(
                    format!("{spec_path}.dataSchema.dataSource"),
                    Some(&Value::from(name.clone())),
                    format!("dataSource[{key}] did not match spec[{name}]: expected the map key and spec.dataSchema.dataSource to be equal"),
                ));
            }
        }
        spec.validate().map_err(|e| {
            ConfigError::invalid(
                self.file.as_ref(),
                format!("{spec_path}.{}", e.path),
                e.value,
                e.problem,
            )
        })?;
        let own = self.properties(
            obj.remove("properties"),
            &format!("{path}.properties"),
            Some(&name),
        )?;
        let unknown: Vec<String> = obj.keys().cloned().collect();
        for k in unknown {
            self.warn(format!(
                "{path}: unknown key {k:?} ignored (expected spec and properties)"
            ));
        }
        Ok(DataSourceConfig {
            name,
            spec,
            properties: global.overlay(&own),
            own_properties: own,
        })
    }

    /// Reads a properties object: values stringified (nulls skipped), kinds checked, scope
    /// rules applied for a dataSource's section.
    fn properties(
        &mut self,
        v: Option<Value>,
        base: &str,
        data_source: Option<&str>,
    ) -> Result<Properties, ConfigError> {
        let map = match v {
            None | Some(Value::Null) => return Ok(Properties::new()),
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(self.invalid(
                    base,
                    Some(&other),
                    "expected an object of property names to values",
                ))
            }
        };
        let mut out = Properties::new();
        for (key, value) in map {
            let path = property_path(base, &key);
            let text = match &value {
                Value::Null => continue,
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Array(items) if items.iter().all(|i| !i.is_array() && !i.is_object()) => {
                    items
                        .iter()
                        .map(|i| match i {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                }
                _ => {
                    return Err(self.invalid(
                        path,
                        Some(&value),
                        "expected a text, number or boolean value",
                    ))
                }
            };
            match property(&key) {
                Some(def) => {
                    if let Some(ds) = data_source {
                        match def.scope {
                            Scope::GlobalOnly => {
                                return Err(self.invalid(
                                    path,
                                    Some(&value),
                                    format!("Property '{key}' cannot be per-dataSource (found in[{ds}]); expected it in the global properties"),
                                ));
                            }
                            Scope::GlobalRead => {
                                self.warn(format!("{path}: '{key}' is read from the global properties only; ignored here"));
                                continue;
                            }
                            Scope::Either => {}
                        }
                    }
                    if let Err(problem) = properties::check_kind(def.kind, &text) {
                        return Err(self.invalid(path, Some(&value), problem));
                    }
                }
                None => match properties::passthrough(&key) {
                    Some(prefix) if data_source.is_some() && prefix.scope != Scope::Either => {
                        self.warn(format!(
                            "{path}: '{}' keys ({}) are read from the global properties only; ignored here",
                            prefix.prefix, prefix.doc
                        ));
                        continue;
                    }
                    Some(_) => {}
                    None => self.warn(format!(
                        "{path}: unknown property '{key}' (kept, but Tranquility does not read it)"
                    )),
                },
            }
            out.insert_from(key, text, self.file.clone(), path);
        }
        Ok(out)
    }
}

/// Follows a serde_path_to_error path in `root`; returns the value there (if any) and the
/// path in our notation.
fn lookup<'a>(root: &'a Value, path: &serde_path_to_error::Path) -> (Option<&'a Value>, String) {
    use serde_path_to_error::Segment;
    let mut cur = Some(root);
    let mut text = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => {
                text.push_str(&format!("[{index}]"));
                cur = cur.and_then(|v| v.get(*index));
            }
            Segment::Map { key } => {
                text = join(&text, key);
                cur = cur.and_then(|v| v.get(key.as_str()));
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    (cur, text)
}
