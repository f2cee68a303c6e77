package io.github.tranquilityrs.flink;

import io.github.tranquilityrs.client.ClientConfig;
import io.github.tranquilityrs.client.EventSender;
import io.github.tranquilityrs.client.Totals;
import io.github.tranquilityrs.client.TranquilityClient;
import java.io.IOException;
import java.util.function.ToLongFunction;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.MetricGroup;

/**
 * A Flink sink that sends each element (JSON text, UTF-8 JSON bytes or a {@code Map}) to a
 * dataSource through Tranquility Server, in batches. At each checkpoint it sends what it holds
 * and waits until every event has its outcome, failing the checkpoint if any event failed; so a
 * job restored from a checkpoint has delivered every event before it at least once.
 *
 * <pre>{@code
 * events.sinkTo(new BeamSink<>(ClientConfig.builder("http://tranquility:8200").build(), "clicks"));
 * }</pre>
 *
 * The task's metric group gets the gauges {@code tranquilityReceived}, {@code ...Sent},
 * {@code ...Dropped}, {@code ...Failed} and {@code ...Pending}.
 *
 * @param <T> the element type: {@code String}, {@code byte[]} or {@code Map<String, ?>}
 */
public class BeamSink<T> implements Sink<T> {
    private static final long serialVersionUID = 1L;

    private final ClientConfig config;
    private final String dataSource;

    /** A sink to {@code dataSource} with the JVM's shared client for {@code config}. */
    public BeamSink(ClientConfig config, String dataSource) {
        this.config = config;
        this.dataSource = dataSource;
    }

    @Override
    public SinkWriter<T> createWriter(WriterInitContext context) throws IOException {
        EventSender sender = TranquilityClient.shared(config).sender(dataSource);
        MetricGroup metrics = context.metricGroup();
        gauge(metrics, "tranquilityReceived", sender, Totals::received);
        gauge(metrics, "tranquilitySent", sender, Totals::sent);
        gauge(metrics, "tranquilityDropped", sender, Totals::dropped);
        gauge(metrics, "tranquilityFailed", sender, Totals::failed);
        gauge(metrics, "tranquilityPending", sender, Totals::pending);
        return new Writer<>(sender);
    }

    private static void gauge(MetricGroup metrics, String name, EventSender sender, ToLongFunction<Totals> read) {
        metrics.gauge(name, (Gauge<Long>) () -> read.applyAsLong(sender.totals()));
    }

    /** One subtask's writer: one sender. */
    private static final class Writer<T> implements SinkWriter<T> {
        private final EventSender sender;

        Writer(EventSender sender) {
            this.sender = sender;
        }

        @Override
        public void write(T element, Context context) throws IOException, InterruptedException {
            sender.throwIfFailed();
            sender.send(element);
        }

        /** Called before each checkpoint and at the end of input. */
        @Override
        public void flush(boolean endOfInput) throws IOException, InterruptedException {
            sender.flush();
        }

        /** Events not yet flushed fail here: the job replays them from its last checkpoint. */
        @Override
        public void close() {
            sender.close();
        }
    }
}
