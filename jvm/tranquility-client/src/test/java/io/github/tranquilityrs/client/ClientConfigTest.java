package io.github.tranquilityrs.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ClientConfigTest {

    private static String error(Runnable r) {
        return assertThrows(IllegalArgumentException.class, r::run).getMessage();
    }

    @Test
    void defaultsFollowTheOriginalTranquilizer() {
        ClientConfig c = ClientConfig.builder("http://127.0.0.1:8200/").build();
        assertEquals("http://127.0.0.1:8200", c.baseUrl());
        assertEquals(2000, c.maxBatchSize());
        assertEquals(5, c.maxPendingBatches());
        assertEquals(0, c.lingerMillis());
        assertEquals(12000, c.maxPendingEvents());
        assertEquals(Format.JSON, c.format());
    }

    @Test
    void badOptionsAreNamed() {
        assertTrue(error(() -> ClientConfig.builder("localhost:8200").build()).contains("localhost:8200"));
        assertTrue(error(() -> ClientConfig.builder("ftp://x").build()).contains("http"));
        assertTrue(error(() -> ClientConfig.builder("http://x").maxBatchSize(0).build()).contains("maxBatchSize"));
        assertTrue(error(() -> ClientConfig.builder("http://x").lingerMillis(-2).build()).contains("lingerMillis"));
        assertTrue(error(() -> ClientConfig.builder("http://x").maxAttempts(0).build()).contains("maxAttempts"));
        assertTrue(error(() -> ClientConfig.builder("http://x").backoff(Duration.ofSeconds(2), Duration.ofSeconds(1))
                .build()).contains("maxBackoffMillis"));
        assertTrue(error(() -> ClientConfig.builder("http://x").basicAuth("u", null).build()).contains("basicAuth"));
    }

    @Test
    void propertiesUseTheOriginalNamesAndRefuseUnknownKeys() {
        ClientConfig c = ClientConfig.fromProperties(Map.of("tranquility.url", "http://h:1",
                "tranquility.maxBatchSize", "10", "tranquility.lingerMillis", "-1", "tranquility.format", "smile",
                "other.key", "ignored"), "tranquility.");
        assertEquals(10, c.maxBatchSize());
        assertEquals(-1, c.lingerMillis());
        assertEquals(Format.SMILE, c.format());
        assertEquals(60, c.maxPendingEvents());

        assertTrue(error(() -> ClientConfig.fromProperties(Map.of("t.url", "http://h:1", "t.batchSize", "3"), "t."))
                .contains("t.batchSize"));
        assertTrue(error(() -> ClientConfig.fromProperties(Map.of(), "t.")).contains("t.url"));
        assertTrue(error(() -> ClientConfig.fromProperties(Map.of("t.url", "http://h:1", "t.maxAttempts", "many"),
                "t.")).contains("t.maxAttempts"));
    }

    @Test
    void thePasswordStaysOutOfToString() {
        ClientConfig c = ClientConfig.builder("http://x:1").basicAuth("bob", "s3cret").build();
        assertFalse(c.toString().contains("s3cret"), c.toString());
        assertTrue(c.toString().contains("bob"));
    }

    @Test
    void configsSurviveSerializationAndStayEqual() throws Exception {
        ClientConfig c = ClientConfig.builder("http://x:1").maxBatchSize(7).basicAuth("u", "p").build();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(c);
        }
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            ClientConfig back = (ClientConfig) in.readObject();
            assertEquals(c, back);
            assertEquals(c.hashCode(), back.hashCode());
        }
        assertEquals(c, c.toBuilder().build());
    }
}
