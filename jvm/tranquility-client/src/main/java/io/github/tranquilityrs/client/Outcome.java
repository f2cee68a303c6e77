package io.github.tranquilityrs.client;

import java.util.Optional;

/**
 * What became of one event. Tranquility Server answers each request with counts (sent, dropped
 * by reason), not with one line per event; so an event's outcome is exact when its request was
 * all sent or all dropped for one reason, and {@link Kind#SENT_OR_DROPPED} when it mixed both.
 * Either way the event is done with: only {@link Kind#FAILED} asks for a replay.
 */
public final class Outcome {

    /** The kinds of outcome. */
    public enum Kind {
        /** Druid accepted it. */
        SENT,
        /** Dropped on purpose ({@link #dropReason()} says why): sending it again would not help. */
        DROPPED,
        /** Sent or dropped on purpose: its request had both, and the answer counts without naming. */
        SENT_OR_DROPPED,
        /** Not sent ({@link #error()} says why): replay it to deliver it. */
        FAILED
    }

    private final Kind kind;
    private final String dropReason;
    private final RequestResult request;
    private final TranquilityException error;

    private Outcome(Kind kind, String dropReason, RequestResult request, TranquilityException error) {
        this.kind = kind;
        this.dropReason = dropReason;
        this.request = request;
        this.error = error;
    }

    /** The outcome of an event of a request the server answered with {@code result}. */
    static Outcome of(RequestResult result) {
        if (result.dropped() == 0) {
            return new Outcome(Kind.SENT, null, result, null);
        }
        if (result.sent() == 0 && result.droppedReasons().size() == 1) {
            String reason = result.droppedReasons().keySet().iterator().next();
            return new Outcome(Kind.DROPPED, reason, result, null);
        }
        return new Outcome(Kind.SENT_OR_DROPPED, null, result, null);
    }

    /** An event dropped before sending (not a JSON object), with the server's reason name. */
    static Outcome droppedHere(String reason) {
        return new Outcome(Kind.DROPPED, reason, null, null);
    }

    /** An event that was not sent. */
    static Outcome failed(TranquilityException error) {
        return new Outcome(Kind.FAILED, null, null, error);
    }

    /** The kind of outcome. */
    public Kind kind() {
        return kind;
    }

    /** True when the event was not sent and should be replayed. */
    public boolean isFailed() {
        return kind == Kind.FAILED;
    }

    /** Why it was dropped, for {@link Kind#DROPPED}: {@code outside_window}, {@code unparseable}, ... */
    public Optional<String> dropReason() {
        return Optional.ofNullable(dropReason);
    }

    /** The counts of the request that carried the event, when the server answered it. */
    public Optional<RequestResult> request() {
        return Optional.ofNullable(request);
    }

    /** Why it failed, for {@link Kind#FAILED}. */
    public Optional<TranquilityException> error() {
        return Optional.ofNullable(error);
    }

    @Override
    public String toString() {
        return switch (kind) {
            case SENT, SENT_OR_DROPPED -> kind.name();
            case DROPPED -> "DROPPED(" + dropReason + ")";
            case FAILED -> "FAILED(" + error.getMessage() + ")";
        };
    }
}
