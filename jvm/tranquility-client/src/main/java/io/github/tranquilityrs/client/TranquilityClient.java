package io.github.tranquilityrs.client;

import java.net.http.HttpClient;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;

/**
 * A client of Tranquility Server ({@code POST /v1/post/<dataSource>}): one HTTP client and one
 * timer thread, shared by any number of {@link EventSender}s. Thread-safe.
 *
 * <pre>{@code
 * TranquilityClient client = TranquilityClient.create(ClientConfig.builder("http://tranquility:8200").build());
 * EventSender clicks = client.sender("clicks");
 * clicks.send("{\"timestamp\":\"2024-05-01T10:00:00Z\",\"page\":\"/\"}")
 *       .thenAccept(outcome -> ...);   // SENT, DROPPED (outside_window, ...), or FAILED
 * clicks.flush();                      // every outcome known; throws if some failed
 * }</pre>
 *
 * Tranquility Server does the beams, tasks and accounting towards Druid; this client batches,
 * retries, bounds what is pending, and tells each event's outcome.
 */
public final class TranquilityClient implements AutoCloseable {
    private static final Map<ClientConfig, TranquilityClient> SHARED = new ConcurrentHashMap<>();

    private final ClientConfig config;
    private final HttpClient http;
    private final Transport transport;
    private final ScheduledThreadPoolExecutor scheduler;
    private final Counters counters = new Counters(null);
    private final boolean shared;
    private volatile boolean closed;

    private TranquilityClient(ClientConfig config, boolean shared) {
        this.config = config;
        this.shared = shared;
        this.http = HttpClient.newBuilder()
                .connectTimeout(config.connectTimeout())
                .version(HttpClient.Version.HTTP_1_1)
                .build();
        this.transport = new Transport(http, config);
        this.scheduler = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "tranquility-client-timer");
            t.setDaemon(true);
            return t;
        });
        this.scheduler.setRemoveOnCancelPolicy(true);
    }

    /** A client of its own, to {@link #close()} when done. */
    public static TranquilityClient create(ClientConfig config) {
        return new TranquilityClient(config, false);
    }

    /**
     * The one client of this JVM for {@code config}, for jobs whose workers cannot own a client
     * (Spark executors, Storm and Flink tasks sharing a JVM). It lives as long as the JVM (its
     * threads are daemons); {@link #close()} does nothing on it.
     */
    public static TranquilityClient shared(ClientConfig config) {
        return SHARED.computeIfAbsent(config, c -> new TranquilityClient(c, true));
    }

    /** A new sender to {@code dataSource}, with its own batches, limits and totals. */
    public EventSender sender(String dataSource) {
        ensureOpen();
        return new EventSender(this, dataSource);
    }

    /** The configuration. */
    public ClientConfig config() {
        return config;
    }

    /** What became of the events handed to all of this client's senders. */
    public Totals totals() {
        return counters.snapshot();
    }

    /**
     * Stops the client: its senders take no more events. Requests already out, and retries
     * already waiting, still finish; a retry needed after that fails its events. Flush the
     * senders first to deliver everything.
     */
    @Override
    public void close() {
        if (shared || closed) {
            return;
        }
        closed = true;
        scheduler.shutdown();
    }

    void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("the Tranquility client is closed");
        }
    }

    Counters counters() {
        return counters;
    }

    Transport transport() {
        return transport;
    }

    ScheduledExecutorService scheduler() {
        return scheduler;
    }
}
