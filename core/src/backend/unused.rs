//! Which set properties mean nothing on a backend, so one warning can name them all.

use super::Backend;
use crate::spec::Properties;

/// Read by realtime tasks only: the firehose, task ids, task discovery and warming.
const REALTIME_ONLY: &[&str] = &[
    "task.warmingPeriod",
    "serialization.format",
    "druidBeam.firehoseGracePeriod",
    "druidBeam.firehoseQuietPeriod",
    "druidBeam.firehoseRetryPeriod",
    "druidBeam.firehoseChunkSize",
    "druidBeam.randomizeTaskId",
    "druidBeam.firehoseBufferSize",
    "druidBeam.taskLocator",
    "druidBeam.overlordPollPeriod",
];

/// Read by the backends that share state through the coordinator and spread events over
/// partitions and replicas (tasks, or the supervisor's task groups).
const PARTITIONED: &[&str] = &["task.partitions", "task.replicants", "zookeeper.path"];

const KAFKA_PREFIX: &str = "druid.ingestion.kafka.";
const BATCH_PREFIX: &str = "druid.ingestion.batch.";

/// The keys set in `properties` that have no meaning on `backend`, in the order they are set.
pub fn unused_properties(properties: &Properties, backend: Backend) -> Vec<String> {
    properties
        .iter()
        .map(|(key, _)| key)
        .filter(|key| {
            let realtime_only = REALTIME_ONLY.contains(key);
            let partitioned = PARTITIONED.contains(key);
            let kafka = key.starts_with(KAFKA_PREFIX);
            let batch = key.starts_with(BATCH_PREFIX);
            match backend {
                Backend::Realtime => kafka || batch,
                Backend::Supervisor => realtime_only || batch,
                Backend::Batch => realtime_only || partitioned || kafka,
            }
        })
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_backend_names_what_it_ignores() {
        let mut p = Properties::new();
        for key in [
            "druidBeam.firehoseChunkSize",
            "task.partitions",
            "druid.ingestion.kafka.bootstrap.servers",
            "druid.ingestion.batch.periodMillis",
            "tranquility.maxBatchSize",
            "http.port",
        ] {
            p.insert(key, "1");
        }
        assert_eq!(
            unused_properties(&p, Backend::Realtime),
            [
                "druid.ingestion.kafka.bootstrap.servers",
                "druid.ingestion.batch.periodMillis"
            ]
        );
        assert_eq!(
            unused_properties(&p, Backend::Supervisor),
            [
                "druidBeam.firehoseChunkSize",
                "druid.ingestion.batch.periodMillis"
            ]
        );
        assert_eq!(
            unused_properties(&p, Backend::Batch),
            [
                "druidBeam.firehoseChunkSize",
                "task.partitions",
                "druid.ingestion.kafka.bootstrap.servers"
            ]
        );
    }
}
