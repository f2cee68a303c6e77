package io.github.tranquilityrs.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.tranquilityrs.testkit.FlakyProxy;
import io.github.tranquilityrs.testkit.Quickstart;
import io.github.tranquilityrs.testkit.TestEvents;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The client against a real `tranquility quickstart`: Druid counts what the client says was sent. */
class QuickstartTest {
    private static Quickstart quickstart;

    @BeforeAll
    static void start() throws Exception {
        quickstart = Quickstart.start();
    }

    @AfterAll
    static void stop() throws Exception {
        quickstart.close();
    }

    @ParameterizedTest
    @EnumSource(Format.class)
    void druidCountsWhatWasSentAndTheStaleEventIsReportedDropped(Format format) throws Exception {
        String run = TestEvents.newRun();
        try (TranquilityClient client = TranquilityClient.create(
                ClientConfig.builder(quickstart.serverUrl()).format(format).maxBatchSize(20).build())) {
            EventSender sender = client.sender(Quickstart.DATA_SOURCE);
            List<CompletableFuture<Outcome>> outcomes = new ArrayList<>();
            for (int i = 0; i < 60; i++) {
                outcomes.add(sender.send(TestEvents.event(run, i)));
            }
            CompletableFuture<Outcome> stale = sender.send(TestEvents.stale(run));
            sender.flush();

            Totals totals = sender.totals();
            assertEquals(61, totals.received(), totals::toString);
            assertEquals(60, totals.sent(), totals::toString);
            assertEquals(1, totals.dropped("outside_window"), totals::toString);
            assertEquals(0, totals.failed() + totals.pending(), totals::toString);
            assertTrue(outcomes.stream().noneMatch(o -> o.join().isFailed()));
            assertTrue(stale.join().kind() != Outcome.Kind.SENT && !stale.join().isFailed(), stale.join()::toString);
        }
        long counted = quickstart.druid().awaitCount(Quickstart.DATA_SOURCE, "run", run, 60, Duration.ofSeconds(30));
        assertEquals(60, counted, quickstart::logTail);
    }

    @Test
    void anUnknownDataSourceFailsWithTheServersMessage() throws Exception {
        try (TranquilityClient client = TranquilityClient.create(ClientConfig.builder(quickstart.serverUrl()).build())) {
            EventSender sender = client.sender("no_such_source");
            CompletableFuture<Outcome> outcome = sender.send(TestEvents.event("x", 1));
            EventsFailedException e = assertThrows(EventsFailedException.class, sender::flush);
            assertTrue(e.getMessage().contains("No definition for dataSource 'no_such_source'"), e.getMessage());
            assertEquals(400, outcome.join().error().orElseThrow().status());
        }
    }

    @Test
    void eventsFailWhileTheServerIsCutOffAndGoThroughOnceItIsBack() throws Exception {
        String run = TestEvents.newRun();
        try (FlakyProxy proxy = FlakyProxy.to(quickstart.serverUrl());
                TranquilityClient client = TranquilityClient.create(ClientConfig.builder(proxy.url())
                        .maxAttempts(2).backoff(Duration.ofMillis(10), Duration.ofMillis(20)).build())) {
            EventSender sender = client.sender(Quickstart.DATA_SOURCE);
            proxy.down();
            CompletableFuture<Outcome> lost = sender.send(TestEvents.event(run, 1));
            assertThrows(EventsFailedException.class, sender::flush);
            assertTrue(lost.join().error().orElseThrow().isRetriable());

            proxy.up();
            CompletableFuture<Outcome> replayed = sender.send(TestEvents.event(run, 1));
            sender.flush();
            assertEquals(Outcome.Kind.SENT, replayed.join().kind());
            Totals totals = sender.totals();
            assertEquals(2, totals.received());
            assertEquals(1, totals.sent());
            assertEquals(1, totals.failed());
        }
        assertEquals(1, quickstart.druid().awaitCount(Quickstart.DATA_SOURCE, "run", run, 1, Duration.ofSeconds(30)));
    }
}
