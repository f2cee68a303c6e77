package io.github.tranquilityrs.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.dataformat.smile.SmileFactory;
import java.io.ByteArrayOutputStream;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class CodecTest {

    private static String json(Object event) throws Codec.Unparseable {
        return new String(Codec.toJson(event), StandardCharsets.UTF_8);
    }

    @Test
    void jsonTextIsKeptAsItIs() throws Exception {
        assertEquals("{\"a\": 1}", json("{\"a\": 1}"));
        assertEquals("{\"b\":[1,2]}", json("{\"b\":[1,2]}".getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void mapsAreWrittenAsJson() throws Exception {
        Map<String, Object> event = new LinkedHashMap<>();
        event.put("timestamp", Instant.parse("2024-05-01T10:00:00Z"));
        event.put("page", "/");
        event.put("tags", List.of("a", "b"));
        event.put("n", 3);
        event.put("x", 1.5);
        event.put("nested", Map.of("ok", true));
        event.put("none", null);
        assertEquals("{\"timestamp\":\"2024-05-01T10:00:00Z\",\"page\":\"/\",\"tags\":[\"a\",\"b\"],\"n\":3,"
                + "\"x\":1.5,\"nested\":{\"ok\":true},\"none\":null}", json(event));
    }

    @Test
    void textThatIsNotOneObjectIsUnparseable() {
        for (String bad : List.of("[1,2]", "42", "{\"a\":", "{} {}", "", "not json")) {
            assertThrows(Codec.Unparseable.class, () -> Codec.toJson(bad), bad);
        }
        assertThrows(Codec.Unparseable.class, () -> Codec.toJson(null));
    }

    @Test
    void typesWithoutJsonFormAreRefusedByName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Codec.toJson(42));
        assertTrue(e.getMessage().contains("java.lang.Integer"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Codec.toJson(Map.of("when", new Object())));
        assertTrue(e.getMessage().contains("'when'"), e.getMessage());
    }

    @Test
    void jsonBodyIsAnArray() {
        byte[] body = Codec.body(Format.JSON, List.of("{\"a\":1}".getBytes(), "{\"b\":2}".getBytes()));
        assertEquals("[{\"a\":1},{\"b\":2}]", new String(body, StandardCharsets.UTF_8));
    }

    @Test
    void smileBodyHoldsTheSameArray() throws Exception {
        byte[] body = Codec.body(Format.SMILE, List.of("{\"a\":1,\"s\":\"x\"}".getBytes(), "{\"a\":2.5}".getBytes()));
        StringWriter back = new StringWriter();
        try (JsonParser p = new SmileFactory().createParser(body);
                JsonGenerator g = new JsonFactory().createGenerator(back)) {
            p.nextToken();
            g.copyCurrentStructure(p);
        }
        assertEquals("[{\"a\":1,\"s\":\"x\"},{\"a\":2.5}]", back.toString());
    }

    @Test
    void answersAreReadInJsonAndSmile() throws Exception {
        String answer = "{\"result\":{\"received\":5,\"sent\":3,\"dropped\":2,\"failed\":0,"
                + "\"droppedReasons\":{\"outside_window\":1,\"unparseable\":1}}}";
        RequestResult expected = new RequestResult(5, 3, 2, 0, Map.of("outside_window", 1L, "unparseable", 1L));
        assertEquals(expected, Codec.readAnswer(answer.getBytes(), false));

        ByteArrayOutputStream smile = new ByteArrayOutputStream();
        try (JsonParser p = new JsonFactory().createParser(answer);
                JsonGenerator g = new SmileFactory().createGenerator(smile)) {
            p.nextToken();
            g.copyCurrentStructure(p);
        }
        assertEquals(expected, Codec.readAnswer(smile.toByteArray(), true));
    }

    @Test
    void theOriginalServersAnswerCountsTheRestAsDropped() throws Exception {
        RequestResult r = Codec.readAnswer("{\"result\":{\"received\":4,\"sent\":3}}".getBytes(), false);
        assertEquals(new RequestResult(4, 3, 1, 0, Map.of()), r);
    }

    @Test
    void otherAnswersAreErrors() {
        for (String bad : List.of("{}", "[]", "{\"result\":{\"sent\":1}}", "{\"result\":{\"received\":\"x\",\"sent\":1}}")) {
            assertThrows(java.io.IOException.class, () -> Codec.readAnswer(bad.getBytes(), false), bad);
        }
    }
}
