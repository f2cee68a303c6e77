package io.github.tranquilityrs.client;

import java.io.IOException;

/** A request to Tranquility Server that did not give its events an outcome. */
public class TranquilityException extends IOException {
    private static final long serialVersionUID = 1L;

    private final int status;
    private final boolean retriable;

    /** An error with the HTTP status the server answered (0 when there was no answer). */
    public TranquilityException(String message, int status, boolean retriable, Throwable cause) {
        super(message, cause);
        this.status = status;
        this.retriable = retriable;
    }

    /** The HTTP status of the server's answer, or 0 when none came (connection or timeout). */
    public int status() {
        return status;
    }

    /** Whether sending the same events again may succeed (a refused request never will). */
    public boolean isRetriable() {
        return retriable;
    }
}
