package io.github.tranquilityrs.client;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/** Running counts of a sender, also added to its client's. */
final class Counters {
    private final Counters parent;
    private final LongAdder received = new LongAdder();
    private final LongAdder sent = new LongAdder();
    private final LongAdder dropped = new LongAdder();
    private final LongAdder failed = new LongAdder();
    private final LongAdder retries = new LongAdder();
    private final LongAdder sentInFailedRequests = new LongAdder();
    private final Map<String, LongAdder> reasons = new ConcurrentHashMap<>();

    Counters(Counters parent) {
        this.parent = parent;
    }

    void received(long n) {
        received.add(n);
        if (parent != null) {
            parent.received(n);
        }
    }

    void answered(RequestResult r) {
        sent.add(r.sent());
        r.droppedReasons().forEach(this::droppedOnly);
        long unexplained = r.dropped() - r.droppedReasons().values().stream().mapToLong(Long::longValue).sum();
        if (unexplained > 0) {
            droppedOnly("unknown", unexplained);
        }
        if (parent != null) {
            parent.answered(r);
        }
    }

    void dropped(String reason, long n) {
        droppedOnly(reason, n);
        if (parent != null) {
            parent.dropped(reason, n);
        }
    }

    private void droppedOnly(String reason, long n) {
        dropped.add(n);
        reasons.computeIfAbsent(reason, k -> new LongAdder()).add(n);
    }

    void failed(long n) {
        failed.add(n);
        if (parent != null) {
            parent.failed(n);
        }
    }

    void retried(long sentBefore) {
        retries.increment();
        sentInFailedRequests.add(sentBefore);
        if (parent != null) {
            parent.retried(sentBefore);
        }
    }

    void sentInFailedRequest(long n) {
        sentInFailedRequests.add(n);
        if (parent != null) {
            parent.sentInFailedRequest(n);
        }
    }

    Totals snapshot() {
        // Outcomes are read before `received`, so pending never comes out negative.
        long s = sent.sum();
        long d = dropped.sum();
        long f = failed.sum();
        Map<String, Long> byReason = new HashMap<>();
        reasons.forEach((k, v) -> byReason.put(k, v.sum()));
        long r = received.sum();
        return new Totals(r, s, d, f, Math.max(0, r - s - d - f), byReason, retries.sum(), sentInFailedRequests.sum());
    }
}
