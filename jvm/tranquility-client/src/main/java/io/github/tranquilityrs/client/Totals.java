package io.github.tranquilityrs.client;

import java.io.Serializable;
import java.util.Map;
import java.util.TreeMap;

/**
 * What became of the events handed to a sender (or to every sender of a client), counted once
 * each: {@code received = sent + dropped + failed + pending}.
 *
 * @param received events handed in
 * @param sent events Druid accepted
 * @param dropped events dropped on purpose, by the server (outside the window, ...) or here (not
 *     a JSON object): {@code droppedReasons} says why
 * @param failed events that were not sent: retries ran out, the server refused the request, or
 *     the sender was closed before sending them
 * @param pending events without an outcome yet
 * @param droppedReasons dropped events by reason
 * @param retries requests sent again after a retriable error
 * @param sentInFailedRequests events the server had sent in requests that failed as a whole and
 *     were then sent again (by a retry here, or by the job's replay): Druid may count them twice
 */
public record Totals(long received, long sent, long dropped, long failed, long pending,
        Map<String, Long> droppedReasons, long retries, long sentInFailedRequests) implements Serializable {

    /** Totals whose reasons map is copied and sorted. */
    public Totals {
        droppedReasons = Map.copyOf(new TreeMap<>(droppedReasons));
    }

    /** Nothing received yet. */
    public static final Totals ZERO = new Totals(0, 0, 0, 0, 0, Map.of(), 0, 0);

    /** The sum of two totals (of two senders, or two partitions). */
    public Totals plus(Totals other) {
        Map<String, Long> reasons = new TreeMap<>(droppedReasons);
        other.droppedReasons.forEach((k, v) -> reasons.merge(k, v, Long::sum));
        return new Totals(received + other.received, sent + other.sent, dropped + other.dropped,
                failed + other.failed, pending + other.pending, reasons, retries + other.retries,
                sentInFailedRequests + other.sentInFailedRequests);
    }

    /** Events dropped for {@code reason}. */
    public long dropped(String reason) {
        return droppedReasons.getOrDefault(reason, 0L);
    }
}
