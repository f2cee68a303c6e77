//! Druid ingestion spec types and the Tranquility configuration file.
