package io.github.tranquilityrs.samza;

import io.github.tranquilityrs.client.ClientConfig;
import io.github.tranquilityrs.client.EventSender;
import io.github.tranquilityrs.client.EventsFailedException;
import io.github.tranquilityrs.client.TranquilityClient;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.samza.SamzaException;
import org.apache.samza.system.OutgoingMessageEnvelope;
import org.apache.samza.system.SystemProducer;

/** Sends each output stream's messages to the dataSource of the same name. */
public class BeamSystemProducer implements SystemProducer {
    private final ClientConfig config;
    private final Map<String, EventSender> senders = new ConcurrentHashMap<>();

    /** A producer on the JVM's shared client for {@code config}. */
    public BeamSystemProducer(ClientConfig config) {
        this.config = config;
    }

    @Override
    public void start() {
        // Senders are made per dataSource as messages come.
    }

    /** Stops; messages not flushed by a commit fail, and the replay after a restart resends them. */
    @Override
    public void stop() {
        senders.values().forEach(EventSender::close);
        senders.clear();
    }

    @Override
    public void register(String source) {
        // Every source shares the senders: a flush covers them all, as in the original.
    }

    @Override
    public void send(String source, OutgoingMessageEnvelope envelope) {
        String dataSource = envelope.getSystemStream().getStream();
        EventSender sender = senders.computeIfAbsent(dataSource, TranquilityClient.shared(config)::sender);
        try {
            sender.throwIfFailed();
            sender.send(envelope.getMessage());
        } catch (EventsFailedException e) {
            throw new SamzaException("sending to dataSource '" + dataSource + "' failed: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SamzaException("interrupted while sending to dataSource '" + dataSource + "'", e);
        }
    }

    /** Called at each commit: returns once every message sent has its outcome. */
    @Override
    public void flush(String source) {
        for (EventSender sender : senders.values()) {
            try {
                sender.flush();
            } catch (EventsFailedException e) {
                throw new SamzaException("sending to dataSource '" + sender.dataSource() + "' failed: "
                        + e.getMessage(), e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new SamzaException("interrupted while flushing '" + sender.dataSource() + "'", e);
            }
        }
    }
}
