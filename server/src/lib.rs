//! Tranquility Server: send events to Druid over HTTP.
//!
//! The original's API, unchanged: `POST /v1/post` (each object routed by its `dataSource` or
//! `feed` field) and `POST /v1/post/{dataSource}`, with JSON, Smile or text bodies.

pub mod decode;
pub mod error;
