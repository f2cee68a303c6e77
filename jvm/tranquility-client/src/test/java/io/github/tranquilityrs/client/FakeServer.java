package io.github.tranquilityrs.client;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.dataformat.smile.SmileFactory;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.function.IntFunction;

/**
 * An HTTP server on a free loopback port standing in for Tranquility Server, to script the
 * answers the client must cope with. By default it answers like the real one when all went well.
 */
final class FakeServer implements AutoCloseable {

    /** A scripted answer to a request of {@code n} events. */
    record Reply(int status, String contentType, byte[] body) {
        static Reply text(int status, String text) {
            return new Reply(status, "text/plain", (text + "\n").getBytes(StandardCharsets.UTF_8));
        }

        static Reply counts(long received, long sent, String reasonsJson) {
            long dropped = received - sent;
            String json = "{\"result\":{\"received\":" + received + ",\"sent\":" + sent + ",\"dropped\":" + dropped
                    + ",\"failed\":0" + (reasonsJson == null ? "" : ",\"droppedReasons\":" + reasonsJson) + "}}";
            return new Reply(200, "application/json", json.getBytes(StandardCharsets.UTF_8));
        }
    }

    /** One request as received. */
    record Request(String contentType, int events) {}

    private final HttpServer server;
    private final ConcurrentLinkedQueue<IntFunction<Reply>> script = new ConcurrentLinkedQueue<>();
    private volatile IntFunction<Reply> fallback = n -> Reply.counts(n, n, null);
    final List<Request> requests = new CopyOnWriteArrayList<>();

    FakeServer() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.setExecutor(Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "fake-server");
            t.setDaemon(true);
            return t;
        }));
        server.createContext("/", this::handle);
        server.start();
    }

    String url() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    /** The answer to the next request not yet scripted. */
    FakeServer then(IntFunction<Reply> reply) {
        script.add(reply);
        return this;
    }

    /** The answer once the script has run out. */
    FakeServer otherwise(IntFunction<Reply> reply) {
        fallback = reply;
        return this;
    }

    /** Events received in requests answered 200. */
    int eventsAnswered() {
        return answered;
    }

    private volatile int answered;

    private void handle(HttpExchange exchange) throws IOException {
        String type = exchange.getRequestHeaders().getFirst("Content-Type");
        byte[] body = exchange.getRequestBody().readAllBytes();
        int n = count(type, body);
        requests.add(new Request(type, n));
        IntFunction<Reply> next = script.poll();
        Reply reply = (next == null ? fallback : next).apply(n);
        byte[] out = reply.body();
        String outType = reply.contentType();
        if (reply.status() == 200) {
            synchronized (this) {
                answered += n;
            }
            if (type.contains("smile")) {
                out = toSmile(out);
                outType = "application/x-jackson-smile";
            }
        }
        exchange.getResponseHeaders().set("Content-Type", outType);
        exchange.sendResponseHeaders(reply.status(), out.length);
        try (OutputStream os = exchange.getResponseBody()) {
            os.write(out);
        }
    }

    private static int count(String type, byte[] body) throws IOException {
        JsonFactory f = type.contains("smile") ? new SmileFactory() : new JsonFactory();
        int n = 0;
        try (JsonParser p = f.createParser(body)) {
            if (p.nextToken() != JsonToken.START_ARRAY) {
                throw new IOException("expected an array");
            }
            while (p.nextToken() == JsonToken.START_OBJECT) {
                p.skipChildren();
                n++;
            }
        }
        return n;
    }

    private static byte[] toSmile(byte[] json) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (JsonParser p = new JsonFactory().createParser(json);
                JsonGenerator g = new SmileFactory().createGenerator(out)) {
            p.nextToken();
            g.copyCurrentStructure(p);
        }
        return out.toByteArray();
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
