package io.github.tranquilityrs.testkit;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/** Native queries to druid-local: what a test asserts on. */
public final class Druid {
    private static final JsonFactory JSON = new JsonFactory();
    private final String url;
    private final HttpClient http = HttpClient.newHttpClient();

    Druid(String url) {
        this.url = url;
    }

    /** Events counted (the {@code count} metric summed) in rows where {@code dimension = value}. */
    public long count(String dataSource, String dimension, String value) throws IOException, InterruptedException {
        String answer = query("{\"queryType\":\"timeseries\",\"dataSource\":\"" + dataSource + "\","
                + "\"granularity\":\"all\",\"intervals\":[\"1970-01-01/2100-01-01\"],"
                + filter(dimension, value) + ",\"aggregations\":[{\"type\":\"longSum\",\"name\":\"count\","
                + "\"fieldName\":\"count\"}]}");
        long total = 0;
        try (JsonParser p = JSON.createParser(answer)) {
            while (p.nextToken() != null) {
                if (p.currentToken() == JsonToken.FIELD_NAME && "count".equals(p.currentName())) {
                    p.nextToken();
                    total += p.getLongValue();
                }
            }
        }
        return total;
    }

    /** Distinct values of {@code of} in rows where {@code dimension = value} (a groupBy's rows). */
    public long distinct(String dataSource, String dimension, String value, String of)
            throws IOException, InterruptedException {
        String answer = query("{\"queryType\":\"groupBy\",\"dataSource\":\"" + dataSource + "\","
                + "\"granularity\":\"all\",\"intervals\":[\"1970-01-01/2100-01-01\"],\"dimensions\":[\"" + of
                + "\"]," + filter(dimension, value) + ",\"aggregations\":[{\"type\":\"longSum\","
                + "\"name\":\"count\",\"fieldName\":\"count\"}]}");
        long rows = 0;
        try (JsonParser p = JSON.createParser(answer)) {
            if (p.nextToken() != JsonToken.START_ARRAY) {
                throw new IOException("groupBy answered " + answer);
            }
            while (p.nextToken() == JsonToken.START_OBJECT) {
                p.skipChildren();
                rows++;
            }
        }
        return rows;
    }

    /**
     * Polls {@link #count} until it reaches {@code atLeast} or {@code timeout} passes, and returns
     * the last count: Druid makes pushed rows queryable soon, not at once.
     */
    public long awaitCount(String dataSource, String dimension, String value, long atLeast, Duration timeout)
            throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        long n = count(dataSource, dimension, value);
        while (n < atLeast && System.nanoTime() < deadline) {
            Thread.sleep(200);
            n = count(dataSource, dimension, value);
        }
        return n;
    }

    private static String filter(String dimension, String value) {
        return "\"filter\":{\"type\":\"selector\",\"dimension\":\"" + dimension + "\",\"value\":\"" + value + "\"}";
    }

    private String query(String json) throws IOException, InterruptedException {
        HttpRequest request = HttpRequest.newBuilder(URI.create(url + "/druid/v2"))
                .timeout(Duration.ofSeconds(30))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json))
                .build();
        HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
            throw new IOException("druid-local answered " + response.statusCode() + ": " + response.body());
        }
        return response.body();
    }
}
