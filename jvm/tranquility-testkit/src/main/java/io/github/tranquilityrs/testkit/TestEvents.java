package io.github.tranquilityrs.testkit;

import java.util.UUID;

/** Events for the quickstart dataSource, marked with a run id so each test counts its own. */
public final class TestEvents {
    private TestEvents() {}

    /** A fresh run id, to tell one test's rows from another's in the shared dataSource. */
    public static String newRun() {
        return UUID.randomUUID().toString();
    }

    /** An event of run {@code run} with id {@code id}, timestamped now. */
    public static String event(String run, long id) {
        return event(run, id, System.currentTimeMillis());
    }

    /** An event of run {@code run} with id {@code id} at {@code timestampMillis}. */
    public static String event(String run, long id, long timestampMillis) {
        return "{\"timestamp\":" + timestampMillis + ",\"run\":\"" + run + "\",\"id\":\"" + id + "\"}";
    }

    /** An event of run {@code run} far outside any window: Tranquility drops it. */
    public static String stale(String run) {
        return "{\"timestamp\":\"2001-01-01T00:00:00Z\",\"run\":\"" + run + "\",\"id\":\"stale\"}";
    }
}
