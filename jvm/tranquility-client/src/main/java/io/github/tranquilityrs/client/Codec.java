package io.github.tranquilityrs.client;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.dataformat.smile.SmileFactory;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Events to request bodies, and the server's answers to counts. */
final class Codec {
    private static final JsonFactory JSON = new JsonFactory();
    private static final SmileFactory SMILE = new SmileFactory();

    private Codec() {}

    /** An event's JSON was refused: it is dropped as {@code unparseable}, as the server would. */
    static final class Unparseable extends Exception {
        private static final long serialVersionUID = 1L;

        Unparseable(String message) {
            super(message, null, false, false);
        }
    }

    /**
     * The event as the UTF-8 JSON text of one object. Accepts JSON text ({@link CharSequence} or
     * UTF-8 {@code byte[]}) and {@link Map}s of JSON-like values.
     *
     * @throws Unparseable when the text is not one JSON object (a data error: the event is dropped)
     * @throws IllegalArgumentException when the event's type has no JSON form (a programming error)
     */
    static byte[] toJson(Object event) throws Unparseable {
        if (event instanceof CharSequence text) {
            return checkObject(text.toString().getBytes(StandardCharsets.UTF_8));
        }
        if (event instanceof byte[] bytes) {
            return checkObject(bytes);
        }
        if (event instanceof Map<?, ?> map) {
            ByteArrayOutputStream out = new ByteArrayOutputStream(256);
            try (JsonGenerator gen = JSON.createGenerator(out)) {
                writeValue(gen, map, "");
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return out.toByteArray();
        }
        if (event == null) {
            throw new Unparseable("the event is null");
        }
        throw new IllegalArgumentException("an event must be JSON text (String), UTF-8 JSON bytes (byte[]) or a Map; got "
                + event.getClass().getName());
    }

    private static byte[] checkObject(byte[] json) throws Unparseable {
        try (JsonParser p = JSON.createParser(json)) {
            JsonToken first = p.nextToken();
            if (first != JsonToken.START_OBJECT) {
                throw new Unparseable("not a JSON object: starts with " + (first == null ? "nothing" : first.asString()));
            }
            p.skipChildren();
            if (p.nextToken() != null) {
                throw new Unparseable("more than one JSON value in one event");
            }
        } catch (JsonProcessingException e) {
            throw new Unparseable("malformed JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new UncheckedIOException("reading bytes in memory", e);
        }
        return json;
    }

    private static void writeValue(JsonGenerator gen, Object v, String path) throws IOException {
        if (v == null) {
            gen.writeNull();
        } else if (v instanceof CharSequence s) {
            gen.writeString(s.toString());
        } else if (v instanceof Boolean b) {
            gen.writeBoolean(b);
        } else if (v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte) {
            gen.writeNumber(((Number) v).longValue());
        } else if (v instanceof Double || v instanceof Float) {
            gen.writeNumber(((Number) v).doubleValue());
        } else if (v instanceof BigDecimal d) {
            gen.writeNumber(d);
        } else if (v instanceof BigInteger i) {
            gen.writeNumber(i);
        } else if (v instanceof Instant t) {
            gen.writeString(t.toString());
        } else if (v instanceof Date d) {
            gen.writeNumber(d.getTime());
        } else if (v instanceof Map<?, ?> m) {
            gen.writeStartObject();
            for (Map.Entry<?, ?> e : m.entrySet()) {
                String key = String.valueOf(e.getKey());
                gen.writeFieldName(key);
                writeValue(gen, e.getValue(), path.isEmpty() ? key : path + "." + key);
            }
            gen.writeEndObject();
        } else if (v instanceof Iterable<?> list) {
            gen.writeStartArray();
            for (Object item : list) {
                writeValue(gen, item, path + "[]");
            }
            gen.writeEndArray();
        } else if (v instanceof Object[] array) {
            writeValue(gen, List.of(array), path);
        } else {
            throw new IllegalArgumentException("field '" + path + "' is a " + v.getClass().getName()
                    + ", which has no JSON form here: use a String, Number, Boolean, Instant, Date, Map or List");
        }
    }

    /** The request body of a batch of events (each one JSON object). */
    static byte[] body(Format format, List<byte[]> events) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(estimate(events));
        if (format == Format.JSON) {
            out.write('[');
            for (int i = 0; i < events.size(); i++) {
                if (i > 0) {
                    out.write(',');
                }
                out.writeBytes(events.get(i));
            }
            out.write(']');
            return out.toByteArray();
        }
        try (JsonGenerator gen = SMILE.createGenerator(out)) {
            gen.writeStartArray();
            for (byte[] event : events) {
                try (JsonParser p = JSON.createParser(event)) {
                    p.nextToken();
                    gen.copyCurrentStructure(p);
                }
            }
            gen.writeEndArray();
        } catch (IOException e) {
            throw new UncheckedIOException("writing a Smile body", e);
        }
        return out.toByteArray();
    }

    private static int estimate(List<byte[]> events) {
        long n = 2;
        for (byte[] e : events) {
            n += e.length + 1;
        }
        return (int) Math.min(n, Integer.MAX_VALUE - 16);
    }

    /** Reads {@code {"result":{...}}}, in JSON or Smile. */
    static RequestResult readAnswer(byte[] body, boolean smile) throws IOException {
        long[] counts = {-1, -1, -1, 0};
        Map<String, Long> reasons = new TreeMap<>();
        try (JsonParser p = (smile ? SMILE : JSON).createParser(body)) {
            expect(p.nextToken() == JsonToken.START_OBJECT, "an object");
            boolean sawResult = false;
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                p.nextToken();
                if (!"result".equals(name)) {
                    p.skipChildren();
                    continue;
                }
                expect(p.currentToken() == JsonToken.START_OBJECT, "\"result\" to be an object");
                sawResult = true;
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String field = p.currentName();
                    JsonToken value = p.nextToken();
                    int slot = List.of("received", "sent", "dropped", "failed").indexOf(field);
                    if (slot >= 0) {
                        expect(value == JsonToken.VALUE_NUMBER_INT, "\"" + field + "\" to be a whole number");
                        counts[slot] = p.getLongValue();
                    } else if ("droppedReasons".equals(field) && value == JsonToken.START_OBJECT) {
                        while (p.nextToken() == JsonToken.FIELD_NAME) {
                            String reason = p.currentName();
                            expect(p.nextToken() == JsonToken.VALUE_NUMBER_INT, "drop counts to be whole numbers");
                            reasons.put(reason, p.getLongValue());
                        }
                    } else {
                        p.skipChildren();
                    }
                }
            }
            expect(sawResult, "a \"result\" field");
        }
        expect(counts[0] >= 0 && counts[1] >= 0, "\"received\" and \"sent\"");
        if (counts[2] < 0) {
            // The original server answered only received and sent; the rest were dropped.
            counts[2] = counts[0] - counts[1] - counts[3];
        }
        return new RequestResult(counts[0], counts[1], counts[2], counts[3], reasons);
    }

    private static void expect(boolean ok, String what) throws IOException {
        if (!ok) {
            throw new IOException("expected " + what);
        }
    }
}
