//! How events reach Druid, by version. Druid 0.9.2 to 30 run realtime tasks that
//! Tranquility creates and pushes to (`beam`, `druid`); Druid 31 removed them, so there the
//! events go through a Kafka supervisor or as batch appends. This module holds what those
//! newer paths need; [`translate`] turns a dataSource's realtime spec into their specs.

pub mod translate;
