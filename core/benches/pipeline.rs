//! Criterion benches of the core hot path, per 1000 events of 200 bytes:
//! - `decode`: serde_json parsing into a map (the yardstick) vs the timestamp extraction the
//!   pipeline does, and the event reader of a dataSource without a flattenSpec (no extra
//!   work) and with one (nested events flattened, then timestamped);
//! - `pipeline`: `DataSourcePipeline::hand_in` through the Tranquilizer and a ClusteredBeam over
//!   2 partitions x 2 replicas of discarding beams, outcomes awaited; flat events, and nested
//!   events through a flattenSpec;
//! - `encode`: a push body (JSON array) of the events as received, vs with each event's ISO
//!   timestamp rewritten in epoch millis for a task of the original's shape: for events the
//!   server parsed (extraction noted where the timestamp lies) and for unchecked bytes (a
//!   second scan finds it).
//!
//! `cargo bench -p tranquility-core --bench pipeline`. The whole-system figures (server,
//! overload, latency) are in the `tranquility-bench` crate.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::{json, Map, Value};
use tranquility::beam::{
    Beam, BeamMaker, CloseError, ClusteredBeam, ClusteredBeamConfig, Outcome, ReplicatedBeam,
    SendError, TranquilizerConfig,
};
use tranquility::coord::{BeamDescriptor, LocalCoordinator};
use tranquility::druid::event_shape::EventShape;
use tranquility::druid::partitioner::dimension_hash_partitioner;
use tranquility::druid::receiver::encode_json_array;
use tranquility::event::{Event, EventReader, RawEvent, TimestampExtractor};
use tranquility::metrics::Metrics;
use tranquility::pipeline::DataSourcePipeline;
use tranquility::spec::properties::SerializationFormat;
use tranquility::spec::IngestionSpec;
use tranquility::time::window::WindowRule;
use tranquility::time::SystemClock;
use tranquility::time::{format_iso_millis, Interval, Period};

const EVENTS: usize = 1000;

fn spec() -> IngestionSpec {
    serde_json::from_value(json!({
        "dataSchema": {
            "dataSource": "bench",
            "parser": {"type": "string", "parseSpec": {"format": "json",
                "timestampSpec": {"column": "timestamp", "format": "auto"},
                "dimensionsSpec": {"dimensions": ["page", "user", "country", "device", "action"]}}},
            "metricsSpec": [{"type": "count", "name": "count"}],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "second"}
        },
        "tuningConfig": {"type": "realtime", "windowPeriod": "PT10M"}
    }))
    .expect("bench spec")
}

/// The same schema, its dimensions read from nested objects through a flattenSpec.
fn flatten_spec() -> IngestionSpec {
    let mut spec = serde_json::to_value(spec()).expect("bench spec");
    spec["dataSchema"]["parser"]["parseSpec"]["flattenSpec"] = json!({
        "useFieldDiscovery": true,
        "fields": [
            {"type": "path", "name": "page", "expr": "$.what.page"},
            {"type": "path", "name": "action", "expr": "$.what.action"},
            {"type": "path", "name": "user", "expr": "$.who.user"},
            {"type": "path", "name": "country", "expr": "$.who.where.country"},
            {"type": "path", "name": "device", "expr": "$.who.device"}
        ]
    });
    serde_json::from_value(spec).expect("bench flatten spec")
}

/// 200-byte nested events with current timestamps, for [`flatten_spec`].
fn nested_events() -> Vec<Bytes> {
    let now = chrono::Utc::now().timestamp_millis();
    (0..EVENTS)
        .map(|i| {
            let mut v = json!({
                "timestamp": format_iso_millis(now - i as i64),
                "what": {"page": format!("page-{:02}", i % 10), "action": "click"},
                "who": {"user": format!("user-{}", i % 5), "device": "mobile",
                        "where": {"country": "fr"}},
                "latency_ms": i % 1000, "bytes": (i * 104_729) % 100_000, "pad": ""
            });
            let pad = 200usize.saturating_sub(v.to_string().len());
            v["pad"] = Value::from("x".repeat(pad));
            Bytes::from(v.to_string())
        })
        .collect()
}

/// 200-byte events with current timestamps.
fn events() -> Vec<Bytes> {
    let now = chrono::Utc::now().timestamp_millis();
    (0..EVENTS)
        .map(|i| {
            let mut v = json!({
                "timestamp": format_iso_millis(now - i as i64),
                "page": format!("page-{:02}", i % 10), "user": format!("user-{}", i % 5),
                "country": "fr", "device": "mobile", "action": "click",
                "latency_ms": i % 1000, "bytes": (i * 104_729) % 100_000, "pad": ""
            });
            let pad = 200usize.saturating_sub(v.to_string().len());
            v["pad"] = Value::from("x".repeat(pad));
            Bytes::from(v.to_string())
        })
        .collect()
}

#[derive(Debug)]
struct Discard;

#[async_trait]
impl Beam for Discard {
    async fn send_batch(&self, events: Vec<Event>) -> Vec<Outcome> {
        vec![Outcome::Sent; events.len()]
    }

    async fn close(&self) -> Result<(), CloseError> {
        Ok(())
    }
}

#[derive(Debug)]
struct DiscardMaker;

#[async_trait]
impl BeamMaker for DiscardMaker {
    async fn create(
        &self,
        interval: Interval,
        partition: u32,
    ) -> Result<BeamDescriptor, SendError> {
        Ok(BeamDescriptor {
            interval: interval.to_string().parse().ok(),
            timestamp: None,
            partition,
            details: Map::new(),
        })
    }

    fn open(&self, _: &BeamDescriptor) -> Result<Arc<dyn Beam>, SendError> {
        Ok(Arc::new(ReplicatedBeam::new(vec![Discard, Discard])))
    }
}

fn pipeline_of(spec: &IngestionSpec) -> DataSourcePipeline {
    let clustered = ClusteredBeam::new(
        ClusteredBeamConfig {
            identity: "druid:overlord/bench".into(),
            rule: WindowRule {
                segment_granularity: spec.data_schema.granularity_spec.segment_granularity,
                window_period: spec.tuning_config.window_period(),
                warming_period: Period::ZERO,
            },
            partitions: 2,
            partitioner: dimension_hash_partitioner(spec),
            clock: Arc::new(SystemClock),
        },
        Arc::new(DiscardMaker),
        Arc::new(LocalCoordinator::new()),
    );
    DataSourcePipeline::with_beam(
        "bench",
        spec,
        Arc::new(clustered),
        TranquilizerConfig::default(),
        &Metrics::new(),
    )
    .expect("bench pipeline")
}

fn decode(c: &mut Criterion) {
    let spec = spec();
    let raws = events();
    let extractor = TimestampExtractor::new(&spec.data_schema.timestamp_spec()).expect("spec");
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("serde_json_map", |b| {
        b.iter(|| {
            raws.iter()
                .map(|r| serde_json::from_slice::<Map<String, Value>>(r).map_or(0, |m| m.len()))
                .sum::<usize>()
        })
    });
    group.bench_function("timestamp_extract", |b| {
        b.iter(|| {
            raws.iter()
                .map(|r| extractor.extract(r).unwrap_or(0))
                .fold(0i64, i64::wrapping_add)
        })
    });
    let plain = EventReader::new(&spec.data_schema).expect("reader");
    group.bench_function("reader_no_flatten_spec", |b| {
        b.iter(|| {
            raws.iter()
                .map(|r| {
                    plain
                        .read(RawEvent::unchecked(r.clone()))
                        .map_or(0, |e| e.timestamp_millis())
                })
                .fold(0i64, i64::wrapping_add)
        })
    });
    let nested = nested_events();
    let flattening = EventReader::new(&flatten_spec().data_schema).expect("reader");
    assert!(flattening.flattens());
    group.bench_function("reader_flatten_spec_nested", |b| {
        b.iter(|| {
            nested
                .iter()
                .map(|r| {
                    flattening
                        .read(RawEvent::unchecked(r.clone()))
                        .map_or(0, |e| e.timestamp_millis())
                })
                .fold(0i64, i64::wrapping_add)
        })
    });
    group.finish();
}

fn through_pipeline(c: &mut Criterion) {
    let spec = spec();
    let raws = events();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The Tranquilizer starts its tasks when built.
    let _runtime = runtime.enter();
    let pipeline = pipeline_of(&spec);
    let flattening = pipeline_of(&flatten_spec());
    let nested = nested_events();
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("hand_in_2x2_discard", |b| {
        b.iter_batched(
            || raws.clone(),
            |batch| {
                runtime.block_on(async {
                    let outcomes = pipeline.hand_in(batch).await.await;
                    assert!(outcomes.iter().all(Outcome::is_sent));
                })
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("hand_in_2x2_discard_flatten_spec", |b| {
        b.iter_batched(
            || nested.clone(),
            |batch| {
                runtime.block_on(async {
                    let outcomes = flattening.hand_in(batch).await.await;
                    assert!(outcomes.iter().all(Outcome::is_sent));
                })
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let spec = spec();
    let extractor = TimestampExtractor::new(&spec.data_schema.timestamp_spec()).expect("spec");
    let unchecked: Vec<Event> = events()
        .into_iter()
        .map(|raw| Event::from_json(raw, &extractor).expect("event"))
        .collect();
    // As the server hands them in: sliced out of a parsed body, marked well-formed.
    let body = Bytes::from(format!(
        "[{}]",
        unchecked
            .iter()
            .map(|e| String::from_utf8_lossy(e.raw()).into_owned())
            .collect::<Vec<_>>()
            .join(",")
    ));
    let values: Vec<&serde_json::value::RawValue> =
        serde_json::from_slice(&body).expect("bench body");
    let events: Vec<Event> = values
        .iter()
        .map(|v| Event::from_raw(RawEvent::from_raw_value(&body, v), &extractor).expect("event"))
        .collect();
    let millis = EventShape::created(&extractor);
    assert_ne!(millis, EventShape::AsReceived);
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("json_array_as_received", |b| {
        b.iter(|| encode_json_array(events.iter().map(Event::raw)).bytes.len())
    });
    group.bench_function("json_array_millis_rewrite", |b| {
        b.iter(|| {
            millis
                .encode(&events, SerializationFormat::Json)
                .map_or(0, |body| body.bytes.len())
        })
    });
    group.bench_function("json_array_millis_rewrite_unchecked", |b| {
        b.iter(|| {
            millis
                .encode(&unchecked, SerializationFormat::Json)
                .map_or(0, |body| body.bytes.len())
        })
    });
    group.finish();
}

/// The dimension-hash partitioner alone: which partition each event's row rolls up in.
fn partition(c: &mut Criterion) {
    let spec = spec();
    let extractor = TimestampExtractor::new(&spec.data_schema.timestamp_spec()).expect("spec");
    let events: Vec<Event> = (events().into_iter())
        .map(|raw| Event::from_json(raw, &extractor).expect("event"))
        .collect();
    let partitioner = dimension_hash_partitioner(&spec);
    let mut group = c.benchmark_group("partition");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("dimension_hash", |b| {
        b.iter(|| {
            events
                .iter()
                .map(|e| partitioner(e))
                .fold(0, usize::wrapping_add)
        })
    });
    group.finish();
}

criterion_group!(benches, decode, partition, through_pipeline, encode);
criterion_main!(benches);
