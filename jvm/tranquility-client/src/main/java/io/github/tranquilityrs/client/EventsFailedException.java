package io.github.tranquilityrs.client;

/**
 * Thrown by {@link EventSender#flush()}: some events handed in since the previous flush failed
 * (they were not sent, and replaying them is the way to deliver them).
 */
public final class EventsFailedException extends TranquilityException {
    private static final long serialVersionUID = 1L;

    private final long failed;

    EventsFailedException(long failed, TranquilityException first) {
        super(failed + " event" + (failed == 1 ? "" : "s") + " failed since the last flush; first error: "
                + (first == null ? "unknown" : first.getMessage()),
                first == null ? 0 : first.status(), first == null || first.isRetriable(), first);
        this.failed = failed;
    }

    /** How many events failed. */
    public long failed() {
        return failed;
    }
}
