//! Every config file gives server options, and a text parser for each dataSource: the
//! original's files (peer data, skipped visibly when absent) and the repository's examples.

use std::path::Path;

use test_support::{example_configs, peer_data_or_skip};
use tranquility::event::StringParser;
use tranquility::spec::TranquilityConfig;
use tranquility_server::ServerConfig;

/// Loads every config file in `dir` into server options; returns how many there were.
fn every_config_in(dir: &Path) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name == "SOURCES.txt" {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("@ZKPLACEHOLDER@", "localhost:2181");
        let config =
            TranquilityConfig::from_str(&text, &name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let server = ServerConfig::from_config(&config).unwrap_or_else(|e| panic!("{name}: {e}"));
        let port = config
            .global_properties()
            .get("http.port")
            .map_or(8200, |p| p.parse::<u16>().unwrap());
        assert_eq!(server.listen.port(), port, "{name}");
        for ds in config.data_sources() {
            if let Some(parser) = &ds.spec.data_schema.parser {
                StringParser::new(&parser.parse_spec)
                    .unwrap_or_else(|e| panic!("{name} {}: {e}", ds.name));
            }
        }
        count += 1;
    }
    count
}

#[test]
fn every_peer_config_loads_into_server_options() {
    let dir = peer_data_or_skip!("tranquility-configs");
    let count = every_config_in(&dir);
    assert!(count >= 15, "only {count} config files found");
}

#[test]
fn every_example_config_loads_into_server_options() {
    let count = every_config_in(&example_configs());
    assert!(count >= 5, "only {count} config files found");
}
