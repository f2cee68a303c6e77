//! Configuration errors that name the file, the JSON path, the bad value and what was expected.

/// Error loading or reading a Tranquility configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read the file: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid JSON or YAML.
    #[error("{file}: not valid {format}: {message}")]
    Syntax {
        /// The file (or source name).
        file: String,
        /// `JSON` or `YAML`.
        format: &'static str,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is missing or wrong.
    #[error("{file}: {path}: {problem} (found {value})")]
    Invalid {
        /// The file (or source name).
        file: String,
        /// JSON path, e.g. `dataSources[0].spec.tuningConfig.windowPeriod`.
        path: String,
        /// The offending value as JSON, or `nothing` when missing.
        value: String,
        /// What is wrong and what was expected.
        problem: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(
        file: impl Into<String>,
        path: impl Into<String>,
        value: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            file: file.into(),
            path: path.into(),
            value: value.into(),
            problem: problem.into(),
        }
    }

    /// The JSON path of an `Invalid` error.
    pub fn path(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { path, .. } => Some(path),
            _ => None,
        }
    }
}
