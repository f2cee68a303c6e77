//! The original Tranquility took single-dash long flags (`-configFile server.json`).
//! We accept them by rewriting them to their clap spelling before parsing.

use std::ffi::OsString;

/// Single-dash flags of the original, and the long flag each one means here.
const LEGACY_FLAGS: &[(&str, &str)] = &[
    ("-configFile", "--config-file"),
    ("-f", "--config-file"),
    ("-dataSource", "--data-source"),
];

/// Rewrites legacy single-dash flags (also in `-flag=value` form) to their long spelling.
pub fn normalize_args<I>(args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = OsString>,
{
    args.into_iter()
        .map(|arg| {
            let Some(text) = arg.to_str() else {
                return arg;
            };
            for (legacy, long) in LEGACY_FLAGS {
                if text == *legacy {
                    return OsString::from(*long);
                }
                if let Some(value) = text.strip_prefix(legacy).and_then(|r| r.strip_prefix('=')) {
                    return OsString::from(format!("{long}={value}"));
                }
            }
            arg
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_args(args.iter().map(OsString::from))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn rewrites_legacy_flags() {
        assert_eq!(
            norm(&["tranquility", "server", "-configFile", "server.json"]),
            ["tranquility", "server", "--config-file", "server.json"]
        );
        assert_eq!(
            norm(&["tranquility", "kafka", "-f", "k.json"]),
            ["tranquility", "kafka", "--config-file", "k.json"]
        );
        assert_eq!(
            norm(&["tranquility", "server", "-configFile=a.yaml"]),
            ["tranquility", "server", "--config-file=a.yaml"]
        );
    }

    #[test]
    fn leaves_other_args_alone() {
        assert_eq!(
            norm(&["tranquility", "-configFileX", "--port", "-h"]),
            ["tranquility", "-configFileX", "--port", "-h"]
        );
    }
}
