/*
 * A single-file client for Tranquility Server, for JVM stream processors (Storm bolts, Samza
 * tasks, Spark Streaming foreachPartition, Flink sinks). JDK 11 or later only: no dependencies.
 *
 * Copy this file into your job, or use it from the command line:
 *
 *   javac -d out TranquilityClient.java
 *   java -cp out TranquilityClient http://127.0.0.1:8200 clicks < events.ndjson
 *
 * The command reads one JSON object per line, posts them in batches, prints the totals as JSON,
 * and exits with 1 if any event failed (or a request was refused), 0 otherwise.
 */

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Posts JSON events to Tranquility Server ({@code POST /v1/post/<dataSource>}). Thread-safe. */
public final class TranquilityClient {

    /** What the server did with one request's events. */
    public static final class Result {
        /** Events the server received. */
        public final long received;
        /** Events sent to Druid. */
        public final long sent;
        /** Events dropped on purpose (outside the window, unparseable, ...). */
        public final long dropped;
        /** Events that failed and were not sent. */
        public final long failed;

        Result(long received, long sent, long dropped, long failed) {
            this.received = received;
            this.sent = sent;
            this.dropped = dropped;
            this.failed = failed;
        }

        Result plus(Result other) {
            return new Result(received + other.received, sent + other.sent,
                    dropped + other.dropped, failed + other.failed);
        }

        @Override
        public String toString() {
            return String.format("{\"received\":%d,\"sent\":%d,\"dropped\":%d,\"failed\":%d}",
                    received, sent, dropped, failed);
        }
    }

    /** The server answered with an error status. */
    public static final class ServerException extends IOException {
        /** The HTTP status. */
        public final int status;

        ServerException(int status, String body) {
            super("Tranquility Server answered " + status + ": " + body);
            this.status = status;
        }
    }

    private static final Pattern FIELD = Pattern.compile("\"(received|sent|dropped|failed)\"\\s*:\\s*(\\d+)");

    private final HttpClient http;
    private final String baseUrl;
    private final Duration timeout;

    /** A client of the server at {@code baseUrl} (for example {@code http://127.0.0.1:8200}). */
    public TranquilityClient(String baseUrl) {
        this(baseUrl, Duration.ofSeconds(60));
    }

    /** A client whose requests give up after {@code timeout}. */
    public TranquilityClient(String baseUrl, Duration timeout) {
        this.baseUrl = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
        this.timeout = timeout;
        this.http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    }

    /**
     * Sends events (each a JSON object) to {@code dataSource} and waits until each has its
     * outcome. A refused request (bad body, unknown dataSource) throws {@link ServerException}.
     */
    public Result send(String dataSource, List<String> jsonObjects) throws IOException, InterruptedException {
        if (jsonObjects.isEmpty()) {
            return new Result(0, 0, 0, 0);
        }
        String body = "[" + String.join(",", jsonObjects) + "]";
        String path = "/v1/post/" + URLEncoder.encode(dataSource, StandardCharsets.UTF_8).replace("+", "%20");
        HttpRequest request = HttpRequest.newBuilder(URI.create(baseUrl + path))
                .timeout(timeout)
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8))
                .build();
        HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
            throw new ServerException(response.statusCode(), response.body());
        }
        return parse(response.body());
    }

    /** Reads the counts of a {@code {"result":{...}}} answer. */
    static Result parse(String answer) throws IOException {
        long[] counts = new long[4];
        boolean[] seen = new boolean[4];
        Matcher m = FIELD.matcher(answer);
        while (m.find()) {
            int i = List.of("received", "sent", "dropped", "failed").indexOf(m.group(1));
            if (!seen[i]) {
                counts[i] = Long.parseLong(m.group(2));
                seen[i] = true;
            }
        }
        if (!seen[0] || !seen[1]) {
            throw new IOException("unexpected answer from Tranquility Server: " + answer);
        }
        return new Result(counts[0], counts[1], counts[2], counts[3]);
    }

    /** Command line: {@code <baseUrl> <dataSource> [batchSize]}, events on standard input. */
    public static void main(String[] args) throws Exception {
        if (args.length < 2 || args.length > 3) {
            System.err.println("usage: java TranquilityClient <baseUrl> <dataSource> [batchSize] < events.ndjson");
            System.exit(2);
        }
        int batchSize = args.length == 3 ? Integer.parseInt(args[2]) : 500;
        TranquilityClient client = new TranquilityClient(args[0]);
        Result total = new Result(0, 0, 0, 0);
        List<String> batch = new ArrayList<>();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isBlank()) {
                    continue;
                }
                batch.add(line);
                if (batch.size() >= batchSize) {
                    total = total.plus(client.send(args[1], batch));
                    batch.clear();
                }
            }
            total = total.plus(client.send(args[1], batch));
        } catch (ServerException e) {
            System.err.println(e.getMessage());
            System.out.println(total);
            System.exit(1);
        }
        System.out.println(total);
        System.exit(total.failed > 0 ? 1 : 0);
    }
}
