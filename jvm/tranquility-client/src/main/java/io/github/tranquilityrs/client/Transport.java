package io.github.tranquilityrs.client;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** One POST to Tranquility Server, and what its answer means for the request's events. */
final class Transport {

    /** What to do with a request's events after an attempt. */
    sealed interface Answer permits Ok, Retry, TooLarge, Fatal {}

    /** The server gave every event an outcome. */
    record Ok(RequestResult result) implements Answer {}

    /** Worth another try; {@code sentBefore} events of it were sent all the same. */
    record Retry(TranquilityException error, long sentBefore) implements Answer {}

    /** The body is over the server's limit: send smaller requests. */
    record TooLarge(TranquilityException error) implements Answer {}

    /** Refused for good: the same request will never succeed. */
    record Fatal(TranquilityException error) implements Answer {}

    /** The 500 of a sync post whose sending failed in part (server/src/error.rs). */
    private static final Pattern PARTIAL =
            Pattern.compile("(\\d+) of (\\d+) events failed \\((\\d+) sent, (\\d+) dropped\\)");

    private final HttpClient http;
    private final ClientConfig config;
    private final String authorization;

    Transport(HttpClient http, ClientConfig config) {
        this.http = http;
        this.config = config;
        this.authorization = config.basicAuthUser() == null ? null : "Basic " + Base64.getEncoder().encodeToString(
                (config.basicAuthUser() + ":" + config.basicAuthPass()).getBytes(StandardCharsets.UTF_8));
    }

    /** Posts {@code body} (holding {@code events} events) and sorts the answer; never fails. */
    CompletableFuture<Answer> post(URI uri, byte[] body, int events) {
        HttpRequest.Builder request = HttpRequest.newBuilder(uri)
                .timeout(config.requestTimeout())
                .header("Content-Type", config.format().contentType())
                .POST(HttpRequest.BodyPublishers.ofByteArray(body));
        if (authorization != null) {
            request.header("Authorization", authorization);
        }
        CompletableFuture<HttpResponse<byte[]>> sent;
        try {
            sent = http.sendAsync(request.build(), HttpResponse.BodyHandlers.ofByteArray());
        } catch (RuntimeException e) {
            return CompletableFuture.completedFuture(new Fatal(
                    new TranquilityException("cannot post to " + uri + ": " + e, 0, false, e)));
        }
        return sent.handle((response, error) -> error != null
                ? fromError(uri, error instanceof CompletionException && error.getCause() != null ? error.getCause() : error)
                : fromResponse(uri, response, events));
    }

    static Answer fromError(URI uri, Throwable error) {
        if (error instanceof HttpTimeoutException) {
            return new Retry(new TranquilityException("no answer from " + uri + " in time: " + error.getMessage(),
                    0, true, error), 0);
        }
        if (error instanceof IOException) {
            String why = error.getMessage() == null ? error.getClass().getSimpleName() : error.getMessage();
            return new Retry(new TranquilityException("cannot reach Tranquility Server at " + uri + ": " + why,
                    0, true, error), 0);
        }
        return new Fatal(new TranquilityException("posting to " + uri + " failed: " + error, 0, false, error));
    }

    static Answer fromResponse(URI uri, HttpResponse<byte[]> response, int events) {
        int status = response.statusCode();
        byte[] body = response.body() == null ? new byte[0] : response.body();
        if (status == 200) {
            boolean smile = response.headers().firstValue("Content-Type").orElse("").contains("smile");
            try {
                RequestResult result = Codec.readAnswer(body, smile);
                if (result.received() != events) {
                    return new Fatal(new TranquilityException(uri + " counted " + result.received()
                            + " events in a request of " + events, status, false, null));
                }
                return new Ok(result);
            } catch (IOException e) {
                return new Fatal(new TranquilityException("unexpected answer from " + uri + " (" + e.getMessage()
                        + "): " + text(body), status, false, e));
            }
        }
        String message = "Tranquility Server at " + uri + " answered " + status + ": " + text(body);
        switch (status) {
            case 500: {
                Matcher m = PARTIAL.matcher(text(body));
                long sentBefore = m.find() ? Long.parseLong(m.group(3)) : 0;
                return new Retry(new TranquilityException(message, status, true, null), sentBefore);
            }
            case 408, 429, 502, 503, 504:
                return new Retry(new TranquilityException(message, status, true, null), 0);
            case 413:
                return new TooLarge(new TranquilityException(message, status, false, null));
            default:
                return new Fatal(new TranquilityException(message, status, false, null));
        }
    }

    /** A body as text for a message: trimmed, and cut when long. */
    private static String text(byte[] body) {
        String s = new String(body, StandardCharsets.UTF_8).trim();
        return s.length() > 500 ? s.substring(0, 500) + "..." : s;
    }
}
