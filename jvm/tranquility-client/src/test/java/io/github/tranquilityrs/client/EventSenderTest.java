package io.github.tranquilityrs.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.tranquilityrs.client.FakeServer.Reply;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The sender against a scripted server: retries, refusals, splitting, back-pressure, drops. */
class EventSenderTest {
    private FakeServer server;
    private TranquilityClient client;

    @BeforeEach
    void start() throws Exception {
        server = new FakeServer();
    }

    @AfterEach
    void stop() {
        if (client != null) {
            client.close();
        }
        server.close();
    }

    private EventSender sender(ClientConfig.Builder config) {
        client = TranquilityClient.create(config.backoff(Duration.ofMillis(5), Duration.ofMillis(20)).build());
        return client.sender("events");
    }

    private ClientConfig.Builder config() {
        return ClientConfig.builder(server.url()).lingerMillis(-1).maxBatchSize(100);
    }

    private static List<CompletableFuture<Outcome>> sendAll(EventSender sender, int n) throws InterruptedException {
        List<CompletableFuture<Outcome>> outcomes = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            outcomes.add(sender.send("{\"timestamp\":" + i + ",\"i\":" + i + "}"));
        }
        return outcomes;
    }

    @Test
    void aFailedRequestIsRetriedAndItsSentEventsAreCounted() throws Exception {
        server.then(n -> Reply.text(500, "Server error: 1 of 3 events failed (2 sent, 0 dropped): task gone"));
        EventSender sender = sender(config());
        List<CompletableFuture<Outcome>> outcomes = sendAll(sender, 3);
        sender.flush();
        for (CompletableFuture<Outcome> o : outcomes) {
            assertEquals(Outcome.Kind.SENT, o.join().kind());
        }
        Totals t = sender.totals();
        assertEquals(new Totals(3, 3, 0, 0, 0, Map.of(), 1, 2), t);
        assertEquals(2, server.requests.size());
    }

    @Test
    void aRefusedRequestFailsItsEventsAtOnceWithTheServersWords() throws Exception {
        server.otherwise(n -> Reply.text(400, "No definition for dataSource 'events'"));
        EventSender sender = sender(config().maxAttempts(5));
        List<CompletableFuture<Outcome>> outcomes = sendAll(sender, 3);
        EventsFailedException e = assertThrows(EventsFailedException.class, sender::flush);
        assertEquals(3, e.failed());
        assertTrue(e.getMessage().contains("No definition for dataSource 'events'"), e.getMessage());
        Outcome o = outcomes.get(0).join();
        assertTrue(o.isFailed());
        assertFalse(o.error().orElseThrow().isRetriable());
        assertEquals(400, o.error().orElseThrow().status());
        assertEquals(1, server.requests.size());
        assertEquals(new Totals(3, 0, 0, 3, 0, Map.of(), 0, 0), sender.totals());
        sender.flush(); // the failures were reported once
    }

    @Test
    void retriesStopAfterMaxAttempts() throws Exception {
        server.otherwise(n -> Reply.text(503, "Buffer full for dataSource 'events'"));
        EventSender sender = sender(config().maxAttempts(3));
        CompletableFuture<Outcome> outcome = sender.send("{\"a\":1}");
        assertThrows(EventsFailedException.class, sender::flush);
        TranquilityException error = outcome.join().error().orElseThrow();
        assertTrue(error.isRetriable());
        assertTrue(error.getMessage().contains("gave up after 3 attempts"), error.getMessage());
        assertEquals(3, server.requests.size());
        assertEquals(2, sender.totals().retries());
    }

    @Test
    void anUnreachableServerFailsAfterRetrying() throws Exception {
        String url = server.url();
        server.close();
        client = TranquilityClient.create(ClientConfig.builder(url).maxAttempts(2)
                .backoff(Duration.ofMillis(1), Duration.ofMillis(2)).build());
        EventSender sender = client.sender("events");
        CompletableFuture<Outcome> outcome = sender.send("{\"a\":1}");
        assertThrows(EventsFailedException.class, sender::flush);
        TranquilityException error = outcome.join().error().orElseThrow();
        assertTrue(error.getMessage().contains("cannot reach Tranquility Server"), error.getMessage());
        assertEquals(0, error.status());
    }

    @Test
    void aBodyOverTheLimitIsSplitUntilItFits() throws Exception {
        server.otherwise(n -> n > 2 ? Reply.text(413, "Request body larger than the limit of 10 bytes")
                : Reply.counts(n, n, null));
        EventSender sender = sender(config());
        List<CompletableFuture<Outcome>> outcomes = sendAll(sender, 5);
        sender.flush();
        outcomes.forEach(o -> assertEquals(Outcome.Kind.SENT, o.join().kind()));
        assertEquals(5, server.eventsAnswered());
        assertEquals(5, sender.totals().sent());
    }

    @Test
    void anEventOverTheLimitFails() throws Exception {
        server.otherwise(n -> Reply.text(413, "Request body larger than the limit of 10 bytes"));
        EventSender sender = sender(config());
        CompletableFuture<Outcome> outcome = sender.send("{\"big\":1}");
        assertThrows(EventsFailedException.class, sender::flush);
        assertEquals(413, outcome.join().error().orElseThrow().status());
    }

    @Test
    void dropsAreReportedPerRequest() throws Exception {
        EventSender sender = sender(config());
        server.then(n -> Reply.counts(n, 0, "{\"outside_window\":" + n + "}"));
        CompletableFuture<Outcome> dropped = sender.send("{\"a\":1}");
        sender.flush();
        assertEquals(Outcome.Kind.DROPPED, dropped.join().kind());
        assertEquals("outside_window", dropped.join().dropReason().orElseThrow());

        server.then(n -> Reply.counts(n, n - 1, "{\"outside_window\":1}"));
        List<CompletableFuture<Outcome>> mixed = sendAll(sender, 3);
        sender.flush();
        assertEquals(Outcome.Kind.SENT_OR_DROPPED, mixed.get(0).join().kind());
        assertEquals(new RequestResult(3, 2, 1, 0, Map.of("outside_window", 1L)),
                mixed.get(0).join().request().orElseThrow());

        CompletableFuture<Outcome> bad = sender.send("{not json");
        assertEquals("unparseable", bad.join().dropReason().orElseThrow());
        assertEquals(new Totals(5, 2, 3, 0, 0, Map.of("outside_window", 2L, "unparseable", 1L), 0, 0),
                sender.totals());
        assertEquals(2, server.requests.size());
    }

    @Test
    void smileRequestsGetSmileAnswers() throws Exception {
        EventSender sender = sender(config().format(Format.SMILE));
        List<CompletableFuture<Outcome>> outcomes = sendAll(sender, 4);
        sender.flush();
        outcomes.forEach(o -> assertEquals(Outcome.Kind.SENT, o.join().kind()));
        assertEquals("application/x-jackson-smile", server.requests.get(0).contentType());
        assertEquals(4, server.requests.get(0).events());
    }

    @Test
    void batchesHoldAtMostMaxBatchSize() throws Exception {
        EventSender sender = sender(config().maxBatchSize(3));
        sendAll(sender, 7);
        sender.flush();
        List<Integer> sizes = server.requests.stream().map(FakeServer.Request::events).sorted().toList();
        assertEquals(List.of(1, 3, 3), sizes);
    }

    @Test
    void sendBlocksWhileTooManyEventsArePending() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        server.otherwise(n -> {
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return Reply.counts(n, n, null);
        });
        EventSender sender = sender(config().lingerMillis(0).maxPendingEvents(2));
        sendAll(sender, 2);
        Thread third = new Thread(() -> {
            try {
                sender.send("{\"third\":true}");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        third.start();
        while (third.getState() != Thread.State.WAITING && third.getState() != Thread.State.TERMINATED) {
            Thread.sleep(5);
        }
        assertEquals(Thread.State.WAITING, third.getState(), "the third send should wait for room");
        assertEquals(2, sender.totals().received());
        release.countDown();
        third.join();
        sender.flush();
        assertEquals(new Totals(3, 3, 0, 0, 0, Map.of(), 0, 0), sender.totals());
    }

    @Test
    void closingFailsWhatWasNeverSent() throws Exception {
        EventSender sender = sender(config());
        List<CompletableFuture<Outcome>> outcomes = sendAll(sender, 3);
        sender.close();
        outcomes.forEach(o -> assertTrue(o.join().isFailed()));
        assertEquals(new Totals(3, 0, 0, 3, 0, Map.of(), 0, 0), sender.totals());
        assertEquals(0, server.requests.size());
        assertThrows(IllegalStateException.class, () -> sender.send("{}"));
    }

    @Test
    void lingerSendsAPartialBatchInTime() throws Exception {
        EventSender sender = sender(config().lingerMillis(20));
        CompletableFuture<Outcome> outcome = sender.send("{\"a\":1}");
        assertEquals(Outcome.Kind.SENT, outcome.get(30, java.util.concurrent.TimeUnit.SECONDS).kind());
    }

    @Test
    void theClientAddsUpItsSenders() throws Exception {
        EventSender a = sender(config());
        EventSender b = client.sender("other");
        sendAll(a, 2);
        sendAll(b, 3);
        a.flush();
        b.flush();
        assertEquals(5, client.totals().sent());
        assertEquals(2, a.totals().sent());
    }
}
