//! Runnable topologies for Tranquility, and the pieces they share.
//!
//! | example | shows | run |
//! | --- | --- | --- |
//! | `clicks` | a tokio job aggregating a click stream per minute, sunk through `tranquility-generic` | `cargo run -p tranquility-examples --example clicks` |
//! | `kafka_to_druid` | Kafka topics into Druid through `tranquility-kafka`, offsets committed after outcomes | `cargo run -p tranquility-examples --example kafka_to_druid -- examples/configs/kafka.json` |
//! | `fluvio_to_druid` | a Fluvio topic into Druid, offsets committed after outcomes | `cargo run -p tranquility-examples --features fluvio --example fluvio_to_druid -- examples/configs/fluvio.json` |
//!
//! `configs/` holds sample `server.json`, `kafka.json` and `fluvio.json` files.

pub mod clicks;
pub mod local;
