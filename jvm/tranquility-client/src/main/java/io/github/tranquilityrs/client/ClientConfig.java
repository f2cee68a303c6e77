package io.github.tranquilityrs.client;

import java.io.Serializable;
import java.net.URI;
import java.net.URISyntaxException;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;

/**
 * Where Tranquility Server is and how to send to it. Immutable and serializable, so a job can
 * build it on the driver and ship it to its workers; equal configurations share one
 * {@link TranquilityClient#shared(ClientConfig) shared client} per JVM.
 *
 * <p>Batching follows the original Tranquilizer: a batch is sent when it holds
 * {@code maxBatchSize} events, or at once while fewer than {@code maxPendingBatches} requests
 * are out ({@code lingerMillis} 0), or after {@code lingerMillis} (&gt; 0), or only when full or
 * flushed (-1).
 */
public final class ClientConfig implements Serializable {
    private static final long serialVersionUID = 1L;

    /** Default {@code maxBatchSize}: the original Tranquilizer's 2000. */
    public static final int DEFAULT_MAX_BATCH_SIZE = 2000;
    /** Default {@code maxPendingBatches}: the original's 5. */
    public static final int DEFAULT_MAX_PENDING_BATCHES = 5;
    /** Default {@code maxAttempts}: a request is tried this many times before its events fail. */
    public static final int DEFAULT_MAX_ATTEMPTS = 5;

    private final String baseUrl;
    private final Format format;
    private final int maxBatchSize;
    private final int maxPendingBatches;
    private final long lingerMillis;
    private final int maxPendingEvents;
    private final int maxAttempts;
    private final long initialBackoffMillis;
    private final long maxBackoffMillis;
    private final long requestTimeoutMillis;
    private final long connectTimeoutMillis;
    private final String basicAuthUser;
    private final String basicAuthPass;

    private ClientConfig(Builder b) {
        this.baseUrl = checkUrl(b.baseUrl);
        this.format = Objects.requireNonNull(b.format, "format");
        this.maxBatchSize = atLeast("maxBatchSize", b.maxBatchSize, 1);
        this.maxPendingBatches = atLeast("maxPendingBatches", b.maxPendingBatches, 1);
        if (b.lingerMillis < -1) {
            throw new IllegalArgumentException("lingerMillis must be -1, 0 or positive, got " + b.lingerMillis);
        }
        this.lingerMillis = b.lingerMillis;
        this.maxPendingEvents = atLeast("maxPendingEvents",
                b.maxPendingEvents > 0 ? b.maxPendingEvents : defaultPendingEvents(b), 1);
        this.maxAttempts = atLeast("maxAttempts", b.maxAttempts, 1);
        this.initialBackoffMillis = atLeast("initialBackoffMillis", b.initialBackoffMillis, 1);
        this.maxBackoffMillis = atLeast("maxBackoffMillis", b.maxBackoffMillis, initialBackoffMillis);
        this.requestTimeoutMillis = atLeast("requestTimeoutMillis", b.requestTimeoutMillis, 1);
        this.connectTimeoutMillis = atLeast("connectTimeoutMillis", b.connectTimeoutMillis, 1);
        if ((b.basicAuthUser == null) != (b.basicAuthPass == null)) {
            throw new IllegalArgumentException("basicAuth needs both a user and a password");
        }
        this.basicAuthUser = b.basicAuthUser;
        this.basicAuthPass = b.basicAuthPass;
    }

    private static int defaultPendingEvents(Builder b) {
        long n = (long) b.maxBatchSize * (b.maxPendingBatches + 1L);
        return (int) Math.min(Integer.MAX_VALUE, Math.max(1, n));
    }

    /** A builder for the server at {@code baseUrl}, such as {@code http://tranquility:8200}. */
    public static Builder builder(String baseUrl) {
        return new Builder(baseUrl);
    }

    /** Property keys read by {@link #fromProperties}, after the prefix. */
    public static final Set<String> PROPERTY_KEYS = Set.of("url", "format", "maxBatchSize",
            "maxPendingBatches", "lingerMillis", "maxPendingEvents", "maxAttempts", "initialBackoffMillis",
            "maxBackoffMillis", "requestTimeoutMillis", "connectTimeoutMillis", "basicAuth.user",
            "basicAuth.pass");

    /**
     * Reads a configuration from properties named {@code prefix + key}, with the keys of
     * {@link #PROPERTY_KEYS} ({@code url} is required). Other keys under the prefix are refused,
     * so a misspelt one does not go unnoticed.
     */
    public static ClientConfig fromProperties(Map<String, String> properties, String prefix) {
        Map<String, String> p = new java.util.HashMap<>();
        Set<String> unknown = new TreeSet<>();
        properties.forEach((k, v) -> {
            if (k.startsWith(prefix)) {
                String key = k.substring(prefix.length());
                if (PROPERTY_KEYS.contains(key)) {
                    p.put(key, v);
                } else {
                    unknown.add(k);
                }
            }
        });
        if (!unknown.isEmpty()) {
            throw new IllegalArgumentException("unknown Tranquility properties " + unknown + "; known keys after '"
                    + prefix + "': " + new TreeSet<>(PROPERTY_KEYS));
        }
        String url = p.get("url");
        if (url == null || url.isBlank()) {
            throw new IllegalArgumentException("missing property " + prefix + "url (Tranquility Server's URL)");
        }
        Builder b = builder(url);
        if (p.containsKey("format")) {
            b.format(Format.parse(p.get("format")));
        }
        b.maxBatchSize((int) number(p, prefix, "maxBatchSize", b.maxBatchSize));
        b.maxPendingBatches((int) number(p, prefix, "maxPendingBatches", b.maxPendingBatches));
        b.lingerMillis(number(p, prefix, "lingerMillis", b.lingerMillis));
        b.maxPendingEvents((int) number(p, prefix, "maxPendingEvents", b.maxPendingEvents));
        b.maxAttempts((int) number(p, prefix, "maxAttempts", b.maxAttempts));
        b.backoff(Duration.ofMillis(number(p, prefix, "initialBackoffMillis", b.initialBackoffMillis)),
                Duration.ofMillis(number(p, prefix, "maxBackoffMillis", b.maxBackoffMillis)));
        b.requestTimeout(Duration.ofMillis(number(p, prefix, "requestTimeoutMillis", b.requestTimeoutMillis)));
        b.connectTimeout(Duration.ofMillis(number(p, prefix, "connectTimeoutMillis", b.connectTimeoutMillis)));
        if (p.containsKey("basicAuth.user") || p.containsKey("basicAuth.pass")) {
            b.basicAuth(p.get("basicAuth.user"), p.get("basicAuth.pass"));
        }
        return b.build();
    }

    private static long number(Map<String, String> p, String prefix, String key, long fallback) {
        String v = p.get(key);
        if (v == null) {
            return fallback;
        }
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("property " + prefix + key + " must be a whole number, got '" + v + "'");
        }
    }

    private static String checkUrl(String url) {
        if (url == null) {
            throw new IllegalArgumentException("baseUrl is required, such as http://127.0.0.1:8200");
        }
        String trimmed = url.trim();
        while (trimmed.endsWith("/")) {
            trimmed = trimmed.substring(0, trimmed.length() - 1);
        }
        try {
            URI uri = new URI(trimmed);
            if (!("http".equals(uri.getScheme()) || "https".equals(uri.getScheme())) || uri.getHost() == null) {
                throw new URISyntaxException(url, "expected http(s)://host[:port]");
            }
            if (uri.getQuery() != null || uri.getFragment() != null) {
                throw new URISyntaxException(url, "no query or fragment allowed");
            }
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("bad Tranquility Server URL '" + url + "': " + e.getReason()
                    + " (such as http://127.0.0.1:8200)");
        }
        return trimmed;
    }

    private static int atLeast(String name, int value, int min) {
        if (value < min) {
            throw new IllegalArgumentException(name + " must be at least " + min + ", got " + value);
        }
        return value;
    }

    private static long atLeast(String name, long value, long min) {
        if (value < min) {
            throw new IllegalArgumentException(name + " must be at least " + min + ", got " + value);
        }
        return value;
    }

    /** The server's base URL, without a trailing slash. */
    public String baseUrl() {
        return baseUrl;
    }

    /** The body format. */
    public Format format() {
        return format;
    }

    /** Most events in one request. */
    public int maxBatchSize() {
        return maxBatchSize;
    }

    /** Most requests out at once per sender, retries waiting included. */
    public int maxPendingBatches() {
        return maxPendingBatches;
    }

    /** How long a partial batch waits for more events: 0 not at all, -1 until full or flushed. */
    public long lingerMillis() {
        return lingerMillis;
    }

    /** Most events per sender without an outcome; {@code send} blocks beyond it. */
    public int maxPendingEvents() {
        return maxPendingEvents;
    }

    /** Tries of a request before its events fail. */
    public int maxAttempts() {
        return maxAttempts;
    }

    /** The wait before the first retry; it doubles each time up to {@link #maxBackoff()}. */
    public Duration initialBackoff() {
        return Duration.ofMillis(initialBackoffMillis);
    }

    /** The longest wait between retries. */
    public Duration maxBackoff() {
        return Duration.ofMillis(maxBackoffMillis);
    }

    /** How long one request may take, answer included (the server answers once Druid has). */
    public Duration requestTimeout() {
        return Duration.ofMillis(requestTimeoutMillis);
    }

    /** How long connecting may take. */
    public Duration connectTimeout() {
        return Duration.ofMillis(connectTimeoutMillis);
    }

    /** The HTTP Basic user ({@code http.basicAuth.user} on the server), if any. */
    public String basicAuthUser() {
        return basicAuthUser;
    }

    String basicAuthPass() {
        return basicAuthPass;
    }

    /** A builder starting from this configuration. */
    public Builder toBuilder() {
        Builder b = new Builder(baseUrl).format(format).maxBatchSize(maxBatchSize)
                .maxPendingBatches(maxPendingBatches).lingerMillis(lingerMillis).maxPendingEvents(maxPendingEvents)
                .maxAttempts(maxAttempts).backoff(initialBackoff(), maxBackoff()).requestTimeout(requestTimeout())
                .connectTimeout(connectTimeout());
        if (basicAuthUser != null) {
            b.basicAuth(basicAuthUser, basicAuthPass);
        }
        return b;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof ClientConfig c)) {
            return false;
        }
        return baseUrl.equals(c.baseUrl) && format == c.format && maxBatchSize == c.maxBatchSize
                && maxPendingBatches == c.maxPendingBatches && lingerMillis == c.lingerMillis
                && maxPendingEvents == c.maxPendingEvents && maxAttempts == c.maxAttempts
                && initialBackoffMillis == c.initialBackoffMillis && maxBackoffMillis == c.maxBackoffMillis
                && requestTimeoutMillis == c.requestTimeoutMillis && connectTimeoutMillis == c.connectTimeoutMillis
                && Objects.equals(basicAuthUser, c.basicAuthUser) && Objects.equals(basicAuthPass, c.basicAuthPass);
    }

    @Override
    public int hashCode() {
        return Objects.hash(baseUrl, format, maxBatchSize, maxPendingBatches, lingerMillis, maxPendingEvents,
                maxAttempts, initialBackoffMillis, maxBackoffMillis, requestTimeoutMillis, connectTimeoutMillis,
                basicAuthUser, basicAuthPass);
    }

    @Override
    public String toString() {
        return "ClientConfig{baseUrl=" + baseUrl + ", format=" + format + ", maxBatchSize=" + maxBatchSize
                + ", maxPendingBatches=" + maxPendingBatches + ", lingerMillis=" + lingerMillis
                + ", maxPendingEvents=" + maxPendingEvents + ", maxAttempts=" + maxAttempts
                + ", backoff=" + initialBackoffMillis + ".." + maxBackoffMillis + "ms, requestTimeout="
                + requestTimeoutMillis + "ms, connectTimeout=" + connectTimeoutMillis + "ms"
                + (basicAuthUser == null ? "" : ", basicAuth=" + basicAuthUser + ":<redacted>") + "}";
    }

    /** Builds a {@link ClientConfig}; every setter says its default. */
    public static final class Builder {
        private final String baseUrl;
        private Format format = Format.JSON;
        private int maxBatchSize = DEFAULT_MAX_BATCH_SIZE;
        private int maxPendingBatches = DEFAULT_MAX_PENDING_BATCHES;
        private long lingerMillis = 0;
        private int maxPendingEvents = 0;
        private int maxAttempts = DEFAULT_MAX_ATTEMPTS;
        private long initialBackoffMillis = 200;
        private long maxBackoffMillis = 10_000;
        private long requestTimeoutMillis = 120_000;
        private long connectTimeoutMillis = 10_000;
        private String basicAuthUser;
        private String basicAuthPass;

        private Builder(String baseUrl) {
            this.baseUrl = baseUrl;
        }

        /** Body format; default JSON. */
        public Builder format(Format format) {
            this.format = format;
            return this;
        }

        /** Most events in one request; default 2000. */
        public Builder maxBatchSize(int n) {
            this.maxBatchSize = n;
            return this;
        }

        /** Most requests out at once per sender; default 5. */
        public Builder maxPendingBatches(int n) {
            this.maxPendingBatches = n;
            return this;
        }

        /** Wait for a fuller batch: 0 (default) not at all, -1 until full or flushed, else milliseconds. */
        public Builder lingerMillis(long millis) {
            this.lingerMillis = millis;
            return this;
        }

        /** Most events without an outcome per sender; default maxBatchSize * (maxPendingBatches + 1). */
        public Builder maxPendingEvents(int n) {
            this.maxPendingEvents = n;
            return this;
        }

        /** Tries per request, the first included; default 5. */
        public Builder maxAttempts(int n) {
            this.maxAttempts = n;
            return this;
        }

        /** Waits between tries: {@code initial}, doubling up to {@code max}, with jitter; default 200 ms to 10 s. */
        public Builder backoff(Duration initial, Duration max) {
            this.initialBackoffMillis = initial.toMillis();
            this.maxBackoffMillis = max.toMillis();
            return this;
        }

        /** Time limit of one request, the server's wait for Druid included; default 120 s. */
        public Builder requestTimeout(Duration timeout) {
            this.requestTimeoutMillis = timeout.toMillis();
            return this;
        }

        /** Time limit of connecting; default 10 s. */
        public Builder connectTimeout(Duration timeout) {
            this.connectTimeoutMillis = timeout.toMillis();
            return this;
        }

        /** HTTP Basic credentials, for a server with {@code http.basicAuth.*}; default none. */
        public Builder basicAuth(String user, String pass) {
            this.basicAuthUser = user;
            this.basicAuthPass = pass;
            return this;
        }

        /** Checks the options and builds; a bad one throws {@link IllegalArgumentException} naming it. */
        public ClientConfig build() {
            return new ClientConfig(this);
        }
    }
}
