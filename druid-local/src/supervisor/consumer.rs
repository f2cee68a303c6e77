//! Kafka clients configured the way Druid configures its consumers (`KafkaConsumerConfigs`):
//! no consumer group membership (partitions are `assign()`ed), auto commit off, no automatic
//! offset reset, `read_committed` unless the spec says otherwise, and a random `group.id`
//! that is never committed to. Offsets live in druid-local's metadata, not in Kafka.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::TopicPartitionList;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Properties Druid reads itself and never hands to the Kafka client.
const DRUID_ONLY: [&str; 1] = ["druid.dynamic.config.provider"];

/// The client configuration of a spec's `consumerProperties`, and the properties the Kafka
/// library here does not know (Java client settings such as `key.deserializer`), skipped.
pub fn client_config(props: &Map<String, Value>) -> (ClientConfig, Vec<String>) {
    let mut c = ClientConfig::new();
    c.set(
        "group.id",
        format!("kafka-supervisor-{}", super::task::random_suffix()),
    )
    .set("enable.auto.commit", "false")
    .set("enable.auto.offset.store", "false")
    // Java's `none`: an offset out of range is an error, never a silent jump.
    .set("auto.offset.reset", "error")
    .set("isolation.level", "read_committed")
    .set("topic.metadata.refresh.interval.ms", "10000")
    .set("log_level", "3");
    let mut skipped = Vec::new();
    for (k, v) in props {
        if DRUID_ONLY.contains(&k.as_str()) {
            continue;
        }
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Null => continue,
            other => other.to_string(),
        };
        let value = if k == "auto.offset.reset" && text == "none" {
            "error".to_owned()
        } else {
            text
        };
        let mut probe = ClientConfig::new();
        probe.set(k, &value);
        if probe.create_native_config().is_ok() {
            c.set(k, value);
        } else {
            skipped.push(k.clone());
        }
    }
    (c, skipped)
}

/// A client for metadata and watermarks (the supervisor's own, as Druid's record supplier).
pub fn metadata_client(config: &ClientConfig) -> Result<BaseConsumer, String> {
    config.create::<BaseConsumer>().map_err(|e| e.to_string())
}

/// Partitions of `topic` (blocking: run it off the async threads).
pub fn partitions(
    client: &BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>, String> {
    let md = client
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| format!("org.apache.kafka.common.errors.TimeoutException: Timeout expired while fetching topic metadata ({e})"))?;
    // A topic that does not exist has no partitions (Kafka's `partitionsFor`), not an error.
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(Vec::new());
    };
    if let Some(e) = t.error() {
        let code = RDKafkaErrorCode::from(e);
        if code == RDKafkaErrorCode::UnknownTopicOrPartition {
            return Ok(Vec::new());
        }
        return Err(format!(
            "Could not fetch partitions for topic [{topic}]: {code}"
        ));
    }
    let mut ps: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ps.sort_unstable();
    Ok(ps)
}

/// Earliest and latest offsets of each partition (blocking).
pub fn watermarks(
    client: &BaseConsumer,
    topic: &str,
    parts: &[i32],
    timeout: Duration,
) -> Result<BTreeMap<i32, (i64, i64)>, String> {
    let mut out = BTreeMap::new();
    for p in parts {
        let w = client
            .fetch_watermarks(topic, *p, timeout)
            .map_err(|e| format!("Failed to get offsets of partition [{p}] of [{topic}]: {e}"))?;
        out.insert(*p, w);
    }
    Ok(out)
}

/// A partition list positioned at `offsets`.
pub fn assignment(topic: &str, offsets: &BTreeMap<i32, i64>) -> Result<TopicPartitionList, String> {
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets {
        tpl.add_partition_offset(topic, *p, rdkafka::Offset::Offset(*o))
            .map_err(|e| e.to_string())?;
    }
    Ok(tpl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn druid_defaults_and_unknown_java_properties() {
        let props = json!({"bootstrap.servers": "127.0.0.1:9", "key.deserializer": "x",
            "isolation.level": "read_uncommitted", "auto.offset.reset": "none"});
        let (c, skipped) = client_config(props.as_object().unwrap());
        assert_eq!(skipped, ["key.deserializer"]);
        assert_eq!(c.get("isolation.level"), Some("read_uncommitted"));
        assert_eq!(c.get("auto.offset.reset"), Some("error"));
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert!(c.get("group.id").unwrap().starts_with("kafka-supervisor-"));
    }
}
