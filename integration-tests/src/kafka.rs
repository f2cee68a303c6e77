//! Kafka through an independent client (Python confluent-kafka, from [`crate::python`]):
//! creating topics, producing and reading a group's committed offsets, in plaintext or with
//! any extra client settings (TLS, SASL, compression) through
//! [`KafkaClient`](crate::kafka::KafkaClient).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::{python, Tansu};

const KAFKA_PY: &str = r#"
import json, os, sys
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
cmd, bootstrap = sys.argv[1], sys.argv[2]
extra = json.loads(os.environ.get("TRANQUILITY_KAFKA_CONF") or "{}")
def conf(**more):
    return {"bootstrap.servers": bootstrap, **more, **extra}
if cmd == "create":
    topic, parts = sys.argv[3], int(sys.argv[4])
    admin = AdminClient(conf())
    for f in admin.create_topics([NewTopic(topic, num_partitions=parts, replication_factor=1)]).values():
        f.result(30)
elif cmd == "produce":
    topic, parts = sys.argv[3], int(sys.argv[4])
    # One message per batch: tansu 0.6's memory storage answers a fetch from an offset inside
    # a batch with the NEXT batch, skipping the rest of the one holding that offset.
    p = Producer(conf(**{"linger.ms": 5, "batch.num.messages": 1}))
    for i, line in enumerate(sys.stdin.buffer.read().split(b"\n")):
        if line:
            p.produce(topic, line, partition=i % parts)
            p.poll(0)
    assert p.flush(60) == 0, "messages left undelivered"
elif cmd == "read":
    # Every message of the topic, from the start to the current end, without a group.
    topic, parts = sys.argv[3], int(sys.argv[4])
    c = Consumer(conf(**{"group.id": "reader", "enable.auto.commit": False}))
    out = []
    for p in range(parts):
        low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        if high <= low:
            continue
        c.assign([TopicPartition(topic, p, low)])
        got = 0
        while got < high - low:
            m = c.poll(10)
            assert m is not None, "timed out reading partition %d" % p
            if m.error():
                continue
            got += 1
            out.append({"partition": p, "key": (m.key() or b"").hex(), "value": m.value().decode()})
    print(json.dumps(out))
    c.close()
elif cmd == "committed":
    group, topic, parts = sys.argv[3], sys.argv[4], int(sys.argv[5])
    c = Consumer(conf(**{"group.id": group, "enable.auto.commit": False}))
    tps = c.committed([TopicPartition(topic, i) for i in range(parts)], timeout=30)
    print(json.dumps([max(tp.offset, 0) for tp in tps]))
    c.close()
"#;

/// Runs one command of the Python helper and returns its stdout; panics on failure.
pub fn kafka_py(args: &[&str], stdin: &[u8]) -> String {
    kafka_py_with(&serde_json::Value::Null, args, stdin)
}

/// [`kafka_py`] with `extra` librdkafka settings (a JSON object) for every client it makes.
pub fn kafka_py_with(extra: &serde_json::Value, args: &[&str], stdin: &[u8]) -> String {
    let extra = if extra.is_null() {
        String::new()
    } else {
        extra.to_string()
    };
    let mut child = Command::new(python())
        .arg("-c")
        .arg(KAFKA_PY)
        .args(args)
        .env("TRANQUILITY_KAFKA_CONF", extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    let out = child.wait_with_output().expect("python output");
    assert!(
        out.status.success(),
        "python {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Creates `topic` with `partitions` partitions.
pub fn create_topic(broker: &Tansu, topic: &str, partitions: usize) {
    kafka_py(
        &[
            "create",
            &broker.bootstrap_servers(),
            topic,
            &partitions.to_string(),
        ],
        b"",
    );
}

/// Produces the lines (round-robin over the partitions).
pub fn produce(broker: &Tansu, topic: &str, partitions: usize, lines: &[String]) {
    kafka_py(
        &[
            "produce",
            &broker.bootstrap_servers(),
            topic,
            &partitions.to_string(),
        ],
        lines.join("\n").as_bytes(),
    );
}

/// The committed offset of each partition of `topic` for `group` (0 when none).
pub fn committed(broker: &Tansu, group: &str, topic: &str, partitions: usize) -> Vec<i64> {
    let out = kafka_py(
        &[
            "committed",
            &broker.bootstrap_servers(),
            group,
            topic,
            &partitions.to_string(),
        ],
        b"",
    );
    serde_json::from_str(out.trim()).expect("committed offsets as JSON")
}

/// The independent client towards any bootstrap address, with extra settings (a JSON object
/// of librdkafka properties such as `security.protocol` or `compression.type`).
#[derive(Debug, Clone)]
pub struct KafkaClient {
    /// `host:port,...`.
    pub bootstrap: String,
    /// Extra librdkafka properties for every client.
    pub extra: serde_json::Value,
}

impl KafkaClient {
    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: usize) {
        let parts = partitions.to_string();
        kafka_py_with(
            &self.extra,
            &["create", &self.bootstrap, topic, &parts],
            b"",
        );
    }

    /// Produces the lines (round-robin over the partitions).
    pub fn produce(&self, topic: &str, partitions: usize, lines: &[String]) {
        let parts = partitions.to_string();
        kafka_py_with(
            &self.extra,
            &["produce", &self.bootstrap, topic, &parts],
            lines.join("\n").as_bytes(),
        );
    }

    /// The committed offset of each partition of `topic` for `group` (0 when none).
    pub fn committed(&self, group: &str, topic: &str, partitions: usize) -> Vec<i64> {
        let parts = partitions.to_string();
        let out = kafka_py_with(
            &self.extra,
            &["committed", &self.bootstrap, group, topic, &parts],
            b"",
        );
        serde_json::from_str(out.trim()).expect("committed offsets as JSON")
    }
}

/// One message read back by [`read_all`].
#[derive(Debug, Clone)]
pub struct Message {
    /// Its partition.
    pub partition: i32,
    /// Its key, in hex.
    pub key: String,
    /// Its value, as text.
    pub value: String,
}

/// Every message of `topic` (over `partitions` partitions), read without a consumer group.
pub fn read_all(broker: &Tansu, topic: &str, partitions: usize) -> Vec<Message> {
    let out = kafka_py(
        &[
            "read",
            &broker.bootstrap_servers(),
            topic,
            &partitions.to_string(),
        ],
        b"",
    );
    let list: Vec<serde_json::Value> = serde_json::from_str(out.trim()).expect("messages as JSON");
    list.iter()
        .map(|m| Message {
            partition: m["partition"].as_i64().unwrap_or(-1) as i32,
            key: m["key"].as_str().unwrap_or_default().to_string(),
            value: m["value"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}
