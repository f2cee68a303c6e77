package io.github.tranquilityrs.client;

import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Sends events to one dataSource: gathers them into batches, posts each batch, retries what may
 * succeed, and gives each event one {@link Outcome}. Thread-safe. {@link #send} blocks while
 * {@link ClientConfig#maxPendingEvents()} events have no outcome yet.
 *
 * <p>Every event handed in is counted once in {@link #totals()}:
 * {@code received = sent + dropped + failed + pending}. A request that fails as a whole (the
 * server could not reach Druid, the connection broke) is sent again, up to
 * {@link ClientConfig#maxAttempts()} tries; since the server's answer counts rather than names
 * the events, a retry also resends the ones it had sent ({@link Totals#sentInFailedRequests()}),
 * so delivery is at least once.
 */
public final class EventSender implements AutoCloseable {
    private final String dataSource;
    private final URI uri;
    private final ClientConfig config;
    private final TranquilityClient client;
    private final Counters counters;
    private final Semaphore permits;
    private final long lingerNanos;

    private final Object lock = new Object();
    private List<Pending> buffer = new ArrayList<>();
    private long bufferSince;
    private boolean lingerScheduled;
    private final Set<Batch> inFlight = new LinkedHashSet<>();
    private int flushing;
    private boolean closed;

    private final Object failureLock = new Object();
    private long failedSinceFlush;
    private TranquilityException firstFailure;

    /** An event waiting for its outcome. */
    private static final class Pending {
        final byte[] json;
        final CompletableFuture<Outcome> outcome = new CompletableFuture<>();

        Pending(byte[] json) {
            this.json = json;
        }
    }

    /** Events posted together; tried until they have outcomes. */
    private static final class Batch {
        final List<Pending> events;
        byte[] body;
        int attempts;

        Batch(List<Pending> events) {
            this.events = events;
        }
    }

    EventSender(TranquilityClient client, String dataSource) {
        if (dataSource == null || dataSource.isBlank()) {
            throw new IllegalArgumentException("dataSource must be named");
        }
        this.client = client;
        this.config = client.config();
        this.dataSource = dataSource;
        this.uri = URI.create(config.baseUrl() + "/v1/post/"
                + URLEncoder.encode(dataSource, StandardCharsets.UTF_8).replace("+", "%20"));
        this.counters = new Counters(client.counters());
        this.permits = new Semaphore(config.maxPendingEvents());
        this.lingerNanos = TimeUnit.MILLISECONDS.toNanos(Math.max(0, config.lingerMillis()));
    }

    /** The dataSource this sender posts to. */
    public String dataSource() {
        return dataSource;
    }

    /**
     * Hands one event in and returns its outcome, to come. An event is JSON text (a
     * {@link String} holding one object), UTF-8 JSON bytes, or a {@link java.util.Map} of JSON-like values.
     * Text that is not one JSON object is dropped at once as {@code unparseable}, as the server
     * would drop it. Blocks while too many events are pending.
     *
     * @throws IllegalArgumentException when the event's type has no JSON form
     * @throws IllegalStateException when the sender or its client is closed
     * @throws InterruptedException when interrupted while waiting for room
     */
    public CompletableFuture<Outcome> send(Object event) throws InterruptedException {
        byte[] json;
        try {
            json = Codec.toJson(event);
        } catch (Codec.Unparseable e) {
            ensureOpen();
            counters.received(1);
            counters.dropped("unparseable", 1);
            return CompletableFuture.completedFuture(Outcome.droppedHere("unparseable"));
        }
        ensureOpen();
        permits.acquire();
        Pending pending = new Pending(json);
        List<Batch> ready;
        synchronized (lock) {
            if (closed) {
                permits.release();
                throw new IllegalStateException("sender for '" + dataSource + "' is closed");
            }
            counters.received(1);
            if (buffer.isEmpty()) {
                bufferSince = System.nanoTime();
            }
            buffer.add(pending);
            ready = takeReady();
        }
        dispatch(ready);
        return pending.outcome;
    }

    /**
     * Sends what is buffered and waits until every event handed in before this call has its
     * outcome.
     *
     * @throws EventsFailedException when events handed in since the previous flush failed
     */
    public void flush() throws InterruptedException, EventsFailedException {
        try {
            flush(0);
        } catch (TimeoutException e) {
            throw new AssertionError("no time limit", e);
        }
    }

    /**
     * {@link #flush()} with a time limit ({@code timeoutMillis} &gt; 0).
     *
     * @throws TimeoutException when some outcome is still missing after the time limit
     */
    public void flush(long timeoutMillis) throws InterruptedException, EventsFailedException, TimeoutException {
        CompletableFuture<Void> all = flushAsync();
        try {
            if (timeoutMillis > 0) {
                all.get(timeoutMillis, TimeUnit.MILLISECONDS);
            } else {
                all.get();
            }
        } catch (ExecutionException e) {
            throw new AssertionError("outcomes never complete exceptionally", e);
        }
        throwIfFailed();
    }

    /**
     * Throws, without waiting, when events handed in since the previous flush (or check) have
     * failed; a job calls it to stop early instead of at its next flush.
     *
     * @throws EventsFailedException naming how many failed and the first error
     */
    public void throwIfFailed() throws EventsFailedException {
        synchronized (failureLock) {
            long failed = failedSinceFlush;
            TranquilityException first = firstFailure;
            failedSinceFlush = 0;
            firstFailure = null;
            if (failed > 0) {
                throw new EventsFailedException(failed, first);
            }
        }
    }

    /**
     * Sends what is buffered without waiting; the future completes once every event handed in
     * before this call has its outcome. Failures are left for the outcomes and the next
     * {@link #flush()} to report.
     */
    public CompletableFuture<Void> flushAsync() {
        List<CompletableFuture<Outcome>> waits = new ArrayList<>();
        List<Batch> ready;
        synchronized (lock) {
            flushing++;
            buffer.forEach(p -> waits.add(p.outcome));
            inFlight.forEach(b -> b.events.forEach(p -> waits.add(p.outcome)));
            ready = takeReady();
        }
        dispatch(ready);
        return CompletableFuture.allOf(waits.toArray(new CompletableFuture<?>[0])).whenComplete((ok, error) -> {
            synchronized (lock) {
                flushing--;
            }
        });
    }

    /** What became of the events handed to this sender so far. */
    public Totals totals() {
        return counters.snapshot();
    }

    /**
     * Stops taking events. Events still buffered (not yet posted) fail, since nobody will send
     * them; requests already out finish on their own. Call {@link #flush()} first to deliver
     * everything: a job that stops on an error closes without flushing, and its replay resends.
     */
    @Override
    public void close() {
        List<Pending> unsent;
        synchronized (lock) {
            if (closed) {
                return;
            }
            closed = true;
            unsent = buffer;
            buffer = new ArrayList<>();
        }
        if (!unsent.isEmpty()) {
            resolve(unsent, Outcome.failed(new TranquilityException("the sender for '" + dataSource
                    + "' was closed before these events were sent", 0, true, null)));
        }
    }

    private void ensureOpen() {
        synchronized (lock) {
            if (closed) {
                throw new IllegalStateException("sender for '" + dataSource + "' is closed");
            }
        }
        client.ensureOpen();
    }

    /** Takes the batches that may go now; the caller posts them after leaving the lock. */
    private List<Batch> takeReady() {
        List<Batch> ready = List.of();
        while (!buffer.isEmpty() && inFlight.size() < config.maxPendingBatches()) {
            boolean due = buffer.size() >= config.maxBatchSize()
                    || flushing > 0
                    || config.lingerMillis() == 0
                    || (config.lingerMillis() > 0 && System.nanoTime() - bufferSince >= lingerNanos);
            if (!due) {
                break;
            }
            int n = Math.min(buffer.size(), config.maxBatchSize());
            List<Pending> events = new ArrayList<>(buffer.subList(0, n));
            buffer.subList(0, n).clear();
            bufferSince = System.nanoTime();
            Batch batch = new Batch(events);
            inFlight.add(batch);
            if (ready.isEmpty()) {
                ready = new ArrayList<>();
            }
            ready.add(batch);
        }
        if (!buffer.isEmpty() && config.lingerMillis() > 0 && !lingerScheduled) {
            long wait = Math.max(0, lingerNanos - (System.nanoTime() - bufferSince));
            try {
                client.scheduler().schedule(this::lingerExpired, wait, TimeUnit.NANOSECONDS);
                lingerScheduled = true;
            } catch (RejectedExecutionException e) {
                // The client is closing; flush or close settles the buffer.
            }
        }
        return ready;
    }

    private void lingerExpired() {
        List<Batch> ready;
        synchronized (lock) {
            lingerScheduled = false;
            ready = takeReady();
        }
        dispatch(ready);
    }

    private void dispatch(List<Batch> batches) {
        for (Batch batch : batches) {
            attempt(batch);
        }
    }

    private void attempt(Batch batch) {
        try {
            if (batch.body == null) {
                List<byte[]> jsons = new ArrayList<>(batch.events.size());
                batch.events.forEach(p -> jsons.add(p.json));
                batch.body = Codec.body(config.format(), jsons);
            }
            batch.attempts++;
            client.transport().post(uri, batch.body, batch.events.size())
                    .thenAccept(answer -> onAnswer(batch, answer));
        } catch (RuntimeException e) {
            // Never leave a batch without outcomes: a flush would wait for it forever.
            fail(batch, new TranquilityException("cannot post a batch to " + uri + ": " + e, 0, false, e));
        }
    }

    private void onAnswer(Batch batch, Transport.Answer answer) {
        if (answer instanceof Transport.Ok ok) {
            counters.answered(ok.result());
            finish(batch, Outcome.of(ok.result()));
        } else if (answer instanceof Transport.Retry retry) {
            if (batch.attempts < config.maxAttempts()) {
                counters.retried(retry.sentBefore());
                try {
                    client.scheduler().schedule(() -> attempt(batch), backoffMillis(batch.attempts),
                            TimeUnit.MILLISECONDS);
                } catch (RejectedExecutionException e) {
                    fail(batch, new TranquilityException("the client was closed while retrying: "
                            + retry.error().getMessage(), retry.error().status(), true, retry.error()));
                }
            } else {
                counters.sentInFailedRequest(retry.sentBefore());
                fail(batch, new TranquilityException(retry.error().getMessage() + " (gave up after "
                        + batch.attempts + " attempts)", retry.error().status(), true, retry.error()));
            }
        } else if (answer instanceof Transport.TooLarge tooLarge) {
            if (batch.events.size() > 1) {
                split(batch);
            } else {
                fail(batch, new TranquilityException("one event is larger than the server takes: "
                        + tooLarge.error().getMessage(), 413, false, tooLarge.error()));
            }
        } else {
            fail(batch, ((Transport.Fatal) answer).error());
        }
    }

    /** Halves a batch the server found too large; each half goes out on its own. */
    private void split(Batch batch) {
        int half = batch.events.size() / 2;
        Batch first = new Batch(new ArrayList<>(batch.events.subList(0, half)));
        Batch second = new Batch(new ArrayList<>(batch.events.subList(half, batch.events.size())));
        synchronized (lock) {
            inFlight.remove(batch);
            inFlight.add(first);
            inFlight.add(second);
        }
        attempt(first);
        attempt(second);
    }

    private long backoffMillis(int attempts) {
        long initial = config.initialBackoff().toMillis();
        long max = config.maxBackoff().toMillis();
        long full = attempts >= 31 ? max : Math.min(max, initial << (attempts - 1));
        // Jitter in [full/2, full], so that senders failing together do not retry together.
        return full / 2 + ThreadLocalRandom.current().nextLong(full / 2 + 1);
    }

    private void fail(Batch batch, TranquilityException error) {
        finish(batch, Outcome.failed(error));
    }

    private void finish(Batch batch, Outcome outcome) {
        List<Batch> ready;
        synchronized (lock) {
            inFlight.remove(batch);
            ready = takeReady();
        }
        resolve(batch.events, outcome);
        dispatch(ready);
    }

    private void resolve(List<Pending> events, Outcome outcome) {
        if (outcome.isFailed()) {
            counters.failed(events.size());
            synchronized (failureLock) {
                failedSinceFlush += events.size();
                if (firstFailure == null) {
                    firstFailure = outcome.error().orElse(null);
                }
            }
        }
        for (Pending p : events) {
            p.outcome.complete(outcome);
        }
        permits.release(events.size());
    }
}
