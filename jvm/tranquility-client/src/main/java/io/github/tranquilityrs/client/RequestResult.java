package io.github.tranquilityrs.client;

import java.io.Serializable;
import java.util.Map;
import java.util.TreeMap;

/**
 * The server's count of one request's events: its answer {@code {"result":{...}}}. The counts
 * are per request: the server does not say which event was dropped.
 *
 * @param received events in the request
 * @param sent events Druid accepted
 * @param dropped events dropped on purpose (see {@code droppedReasons})
 * @param failed events whose sending failed (0 in a successful answer)
 * @param droppedReasons dropped events by reason, such as {@code outside_window}
 */
public record RequestResult(long received, long sent, long dropped, long failed, Map<String, Long> droppedReasons)
        implements Serializable {

    /** A result whose reasons map is copied and sorted. */
    public RequestResult {
        droppedReasons = Map.copyOf(new TreeMap<>(droppedReasons));
    }
}
