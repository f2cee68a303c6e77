package io.github.tranquilityrs.client;

/** The body format of requests to Tranquility Server; the server answers in the same one. */
public enum Format {
    /** {@code application/json}: a JSON array of the events. */
    JSON("application/json"),
    /** {@code application/x-jackson-smile}: one Smile document holding an array of the events. */
    SMILE("application/x-jackson-smile");

    private final String contentType;

    Format(String contentType) {
        this.contentType = contentType;
    }

    /** The {@code Content-Type} header of a request in this format. */
    public String contentType() {
        return contentType;
    }

    /** Reads {@code json} or {@code smile}, in any case. */
    public static Format parse(String name) {
        for (Format f : values()) {
            if (f.name().equalsIgnoreCase(name.trim())) {
                return f;
            }
        }
        throw new IllegalArgumentException("unknown format '" + name + "': expected json or smile");
    }
}
