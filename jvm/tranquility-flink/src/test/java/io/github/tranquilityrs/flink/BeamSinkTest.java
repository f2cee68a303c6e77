package io.github.tranquilityrs.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.tranquilityrs.client.ClientConfig;
import io.github.tranquilityrs.client.TranquilityClient;
import io.github.tranquilityrs.client.Totals;
import io.github.tranquilityrs.testkit.Quickstart;
import io.github.tranquilityrs.testkit.TestEvents;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.stream.Stream;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExternalizedCheckpointRetention;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.client.JobCancellationException;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.ExceptionUtils;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * BeamSink in a local Flink environment (a MiniCluster) against a real quickstart: a job
 * cancelled mid-stream and started again from its last checkpoint delivers every event.
 */
class BeamSinkTest {
    private static final int EVENTS = 400;

    @TempDir
    Path checkpoints;

    @Test
    void aJobCancelledAndRestoredFromItsCheckpointLosesNothing() throws Exception {
        String run = TestEvents.newRun();
        try (Quickstart quickstart = Quickstart.start()) {
            // Batches larger than the whole run, sent only when full or flushed: without the
            // flush at each checkpoint, the events before it would be lost with the cancel.
            ClientConfig config = ClientConfig.builder(quickstart.serverUrl()).lingerMillis(-1)
                    .maxBatchSize(EVENTS * 2).build();
            Totals start = TranquilityClient.shared(config).totals();

            StreamExecutionEnvironment first = environment(null);
            pipeline(first, run, config);
            JobClient job = first.executeAsync("druid-first");
            await(() -> latestCheckpoint().map(BeamSinkTest::checkpointId).orElse(0L) >= 2);
            job.cancel().get();
            ExecutionException ended = assertThrows(ExecutionException.class,
                    () -> job.getJobExecutionResult().get(), "a cancelled job has no result");
            assertTrue(ExceptionUtils.findThrowable(ended, JobCancellationException.class).isPresent(),
                    () -> "expected a cancellation: " + ended);
            Path checkpoint = latestCheckpoint().orElseThrow();
            long sentBeforeCancel = TranquilityClient.shared(config).totals().sent() - start.sent();
            assertTrue(sentBeforeCancel < EVENTS, "cancelled after " + sentBeforeCancel + " of " + EVENTS);

            StreamExecutionEnvironment second = environment(checkpoint);
            pipeline(second, run, config);
            second.execute("druid-restored");

            long counted = quickstart.druid().awaitCount(Quickstart.DATA_SOURCE, "run", run, EVENTS,
                    Duration.ofSeconds(30));
            assertTrue(counted >= EVENTS, "Druid counted " + counted + " of " + EVENTS);
            assertEquals(EVENTS, quickstart.druid().distinct(Quickstart.DATA_SOURCE, "run", run, "id"),
                    "every event once at least, and no stale one");
            Totals totals = TranquilityClient.shared(config).totals();
            assertTrue(totals.dropped("outside_window") >= 1, totals::toString);
        }
    }

    private static void pipeline(StreamExecutionEnvironment env, String run, ClientConfig config) {
        DataGeneratorSource<String> source = new DataGeneratorSource<>(
                i -> i == 0 ? TestEvents.stale(run) : TestEvents.event(run, i), EVENTS + 1,
                RateLimiterStrategy.perSecond(200), Types.STRING);
        env.fromSource(source, WatermarkStrategy.noWatermarks(), "events").uid("events")
                .sinkTo(new BeamSink<>(config, Quickstart.DATA_SOURCE)).uid("druid");
    }

    private StreamExecutionEnvironment environment(Path restoreFrom) {
        Configuration conf = new Configuration();
        conf.set(CheckpointingOptions.CHECKPOINTING_INTERVAL, Duration.ofMillis(200));
        conf.set(CheckpointingOptions.CHECKPOINT_STORAGE, "filesystem");
        conf.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, checkpoints.toUri().toString());
        conf.set(CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION,
                ExternalizedCheckpointRetention.RETAIN_ON_CANCELLATION);
        if (restoreFrom != null) {
            conf.set(StateRecoveryOptions.SAVEPOINT_PATH, restoreFrom.toUri().toString());
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(1);
        return env;
    }

    /** The newest completed checkpoint: a {@code chk-N} folder holding its {@code _metadata}. */
    private Optional<Path> latestCheckpoint() throws IOException {
        try (Stream<Path> files = Files.walk(checkpoints)) {
            return files.filter(p -> p.getFileName().toString().equals("_metadata"))
                    .map(Path::getParent)
                    .filter(p -> p.getFileName().toString().startsWith("chk-"))
                    .max(Comparator.comparingLong(BeamSinkTest::checkpointId));
        }
    }

    private static long checkpointId(Path chk) {
        return Long.parseLong(chk.getFileName().toString().substring("chk-".length()));
    }

    private static void await(Check condition) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!condition.holds()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for the second checkpoint");
            }
            Thread.sleep(20);
        }
    }

    private interface Check {
        boolean holds() throws Exception;
    }
}
