package io.github.tranquilityrs.samza;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.tranquilityrs.client.ClientConfig;
import io.github.tranquilityrs.client.Totals;
import io.github.tranquilityrs.client.TranquilityClient;
import io.github.tranquilityrs.testkit.FlakyProxy;
import io.github.tranquilityrs.testkit.Quickstart;
import io.github.tranquilityrs.testkit.TestEvents;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import org.apache.samza.SamzaException;
import org.apache.samza.application.LegacyTaskApplication;
import org.apache.samza.config.MapConfig;
import org.apache.samza.container.grouper.task.SingleContainerGrouperFactory;
import org.apache.samza.execution.JobPlanner;
import org.apache.samza.job.ApplicationStatus;
import org.apache.samza.metadatastore.InMemoryMetadataStoreFactory;
import org.apache.samza.runtime.LocalApplicationRunner;
import org.apache.samza.standalone.PassthroughJobCoordinatorFactory;
import org.apache.samza.system.EndOfStreamMessage;
import org.apache.samza.system.IncomingMessageEnvelope;
import org.apache.samza.system.OutgoingMessageEnvelope;
import org.apache.samza.system.StreamSpec;
import org.apache.samza.system.SystemStream;
import org.apache.samza.system.inmemory.InMemorySystemFactory;
import org.apache.samza.system.inmemory.InMemorySystemProducer;
import org.apache.samza.task.EndOfStreamListenerTask;
import org.apache.samza.task.MessageCollector;
import org.apache.samza.task.StreamTask;
import org.apache.samza.task.TaskCoordinator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A Samza job run standalone (LocalApplicationRunner, passthrough coordinator, in-memory input)
 * whose task writes to a BeamSystemFactory system, against a real quickstart.
 */
class BeamSystemFactoryTest {
    private static Quickstart quickstart;

    @TempDir
    Path stores;

    @BeforeAll
    static void start() throws Exception {
        quickstart = Quickstart.start();
    }

    @AfterAll
    static void stop() throws Exception {
        quickstart.close();
    }

    /**
     * The job's task: every input message goes to dataSource {@code quickstart} of system
     * {@code druid}; at the end of its input it asks for a last commit, which flushes.
     */
    public static class ToDruidTask implements StreamTask, EndOfStreamListenerTask {
        private static final SystemStream DRUID = new SystemStream("druid", Quickstart.DATA_SOURCE);

        @Override
        public void process(IncomingMessageEnvelope envelope, MessageCollector collector, TaskCoordinator coordinator) {
            collector.send(new OutgoingMessageEnvelope(DRUID, envelope.getMessage()));
        }

        @Override
        public void onEndOfStream(MessageCollector collector, TaskCoordinator coordinator) {
            coordinator.commit(TaskCoordinator.RequestScope.CURRENT_TASK);
        }
    }

    @Test
    void aJobsMessagesReachDruidAndTheStaleOneIsReportedDropped() throws Exception {
        String run = TestEvents.newRun();
        List<Object> messages = new java.util.ArrayList<>(
                IntStream.rangeClosed(1, 200).mapToObj(i -> (Object) TestEvents.event(run, i)).toList());
        messages.add(TestEvents.stale(run));
        Map<String, String> config = jobConfig(run, quickstart.serverUrl());
        ClientConfig client = BeamSystemFactory.clientConfig("druid", new MapConfig(config));
        Totals before = TranquilityClient.shared(client).totals();

        ApplicationStatus status = runJob(config, messages);
        assertEquals(ApplicationStatus.StatusCode.SuccessfulFinish, status.getStatusCode(), String.valueOf(status));

        assertEquals(200, quickstart.druid().awaitCount(Quickstart.DATA_SOURCE, "run", run, 200, Duration.ofSeconds(30)));
        Totals after = TranquilityClient.shared(client).totals();
        assertEquals(201, after.received() - before.received(), after::toString);
        assertEquals(1, after.dropped("outside_window") - before.dropped("outside_window"), after::toString);
        assertEquals(0, after.pending(), after::toString);
    }

    @Test
    void aCommitWhoseMessagesFailedFailsTheJob() throws Exception {
        String run = TestEvents.newRun();
        try (FlakyProxy proxy = FlakyProxy.to(quickstart.serverUrl())) {
            proxy.down();
            Map<String, String> config = jobConfig(run, proxy.url());
            config.put("systems.druid.tranquility.maxAttempts", "1");
            ApplicationStatus status = runJob(config, List.of(TestEvents.event(run, 1), TestEvents.event(run, 2)));
            assertEquals(ApplicationStatus.StatusCode.UnsuccessfulFinish, status.getStatusCode(), String.valueOf(status));
            Throwable cause = status.getThrowable();
            StringBuilder messages = new StringBuilder();
            for (Throwable t = cause; t != null; t = t.getCause()) {
                messages.append(t.getMessage()).append('\n');
            }
            assertTrue(messages.toString().contains("failed since the last flush"), messages::toString);
        }
    }

    @Test
    void misconfigurationIsNamed() {
        Map<String, String> config = Map.of("systems.druid.tranquility.url", "http://127.0.0.1:1",
                "systems.druid.tranquility.batchSize", "10");
        SamzaException e = assertThrows(SamzaException.class,
                () -> BeamSystemFactory.clientConfig("druid", new MapConfig(config)));
        assertTrue(e.getMessage().contains("systems.druid.tranquility.batchSize"), e.getMessage());

        SamzaException original = assertThrows(SamzaException.class, () -> BeamSystemFactory.clientConfig("druid",
                new MapConfig(Map.of("systems.druid.beam.factory", "com.example.Factory"))));
        assertTrue(original.getMessage().contains("systems.druid.tranquility.url"), original.getMessage());

        ClientConfig c = BeamSystemFactory.clientConfig("druid", new MapConfig(Map.of(
                "systems.druid.tranquility.url", "http://127.0.0.1:1", "systems.druid.beam.batchSize", "7")));
        assertEquals(7, c.maxBatchSize());
    }

    private Map<String, String> jobConfig(String run, String url) {
        String scope = "scope-" + run;
        Map<String, String> c = new HashMap<>();
        c.put("app.name", "tranquility-test");
        c.put("app.id", run);
        c.put("job.name", "tranquility-test");
        c.put("processor.id", "1");
        c.put("job.coordinator.factory", PassthroughJobCoordinatorFactory.class.getName());
        c.put("job.startpoint.metadata.store.factory", InMemoryMetadataStoreFactory.class.getName());
        c.put("task.name.grouper.factory", SingleContainerGrouperFactory.class.getName());
        c.put("job.non-logged.store.base.dir", stores.resolve("non-logged").toString());
        c.put("job.logged.store.base.dir", stores.resolve("logged").toString());
        c.put("job.host-affinity.enabled", "false");
        c.put("job.jmx.enabled", "false");
        c.put("task.class", ToDruidTask.class.getName());
        c.put("task.inputs", "test.input");
        c.put("task.commit.ms", "500");
        c.put("inmemory.scope", scope);
        c.put("systems.test.samza.factory", InMemorySystemFactory.class.getName());
        c.put("systems.test.inmemory.scope", scope);
        c.put("systems.test.samza.offset.default", "oldest");
        c.put("systems.druid.samza.factory", BeamSystemFactory.class.getName());
        c.put("systems.druid.tranquility.url", url);
        // Batches larger than the input, sent only when flushed: the commits must do it.
        c.put("systems.druid.tranquility.maxBatchSize", "1000");
        c.put("systems.druid.tranquility.lingerMillis", "-1");
        return c;
    }

    /** Puts the messages and an end of stream on the input, runs the job to its end. */
    private static ApplicationStatus runJob(Map<String, String> config, List<Object> messages) {
        MapConfig input = new MapConfig(config);
        InMemorySystemFactory memory = new InMemorySystemFactory();
        memory.getAdmin("test", input).createStream(new StreamSpec("input", "input", "test", 1));
        InMemorySystemProducer producer = (InMemorySystemProducer) memory.getProducer("test", input, null);
        SystemStream stream = new SystemStream("test", "input");
        for (Object m : messages) {
            producer.send("test", new OutgoingMessageEnvelope(stream, 0, null, m));
        }
        producer.send("test", new OutgoingMessageEnvelope(stream, 0, null, new EndOfStreamMessage(null)));

        LocalApplicationRunner runner = new LocalApplicationRunner(
                new LegacyTaskApplication(ToDruidTask.class.getName()),
                JobPlanner.generateSingleJobConfig(config), new InMemoryMetadataStoreFactory());
        runner.run(null);
        if (!runner.waitForFinish(Duration.ofSeconds(90))) {
            runner.kill();
            throw new AssertionError("the Samza job did not finish in time");
        }
        return runner.status();
    }
}
