//! Every original config file gives server options, and a text parser for each dataSource.

use std::path::PathBuf;

use tranquility::event::StringParser;
use tranquility::spec::TranquilityConfig;
use tranquility_server::ServerConfig;

/// The shared peer-data folder beside the repository (it must exist: no silent pass).
fn peer_configs() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|a| a.join("shared/peer-data/tranquility-configs"))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| panic!("shared/peer-data/tranquility-configs not found"))
}

#[test]
fn every_peer_config_loads_into_server_options() {
    let mut count = 0;
    for entry in std::fs::read_dir(peer_configs()).unwrap() {
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
    assert!(count >= 15, "only {count} config files found");
}
