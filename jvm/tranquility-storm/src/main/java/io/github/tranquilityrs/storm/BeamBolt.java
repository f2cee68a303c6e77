package io.github.tranquilityrs.storm;

import com.codahale.metrics.Gauge;
import io.github.tranquilityrs.client.ClientConfig;
import io.github.tranquilityrs.client.EventSender;
import io.github.tranquilityrs.client.Outcome;
import io.github.tranquilityrs.client.Totals;
import io.github.tranquilityrs.client.TranquilityClient;
import java.util.HashMap;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.ToLongFunction;
import org.apache.storm.task.OutputCollector;
import org.apache.storm.task.TopologyContext;
import org.apache.storm.topology.OutputFieldsDeclarer;
import org.apache.storm.topology.base.BaseRichBolt;
import org.apache.storm.tuple.Tuple;
import org.apache.storm.utils.TupleUtils;

/**
 * A bolt that sends each tuple's first value (JSON text, UTF-8 JSON bytes or a {@code Map}) to
 * a dataSource through Tranquility Server, in batches. A tuple is acked once its event has an
 * outcome (sent, or dropped on purpose and counted), and failed when its event failed, so the
 * spout replays it. It emits nothing.
 *
 * <pre>{@code
 * builder.setBolt("druid", new BeamBolt(ClientConfig.builder("http://tranquility:8200").build(), "clicks"))
 *        .shuffleGrouping("events");
 * }</pre>
 *
 * Acks are given on the executor's thread: outcomes are queued and handed over on the next tuple
 * or tick tuple (one a second), which also sends a partial batch when {@code lingerMillis} is -1.
 * Keep the client's retries shorter than {@code topology.message.timeout.secs}.
 */
public class BeamBolt extends BaseRichBolt {
    private static final long serialVersionUID = 1L;

    private final ClientConfig config;
    private final String dataSource;

    private transient OutputCollector collector;
    private transient EventSender sender;
    private transient Queue<Done> done;

    /** A tuple whose event has its outcome. */
    private record Done(Tuple tuple, Outcome outcome) {}

    /** A bolt sending to {@code dataSource} with the JVM's shared client for {@code config}. */
    public BeamBolt(ClientConfig config, String dataSource) {
        this.config = config;
        this.dataSource = dataSource;
    }

    @Override
    public void prepare(Map<String, Object> topoConf, TopologyContext context, OutputCollector collector) {
        this.collector = collector;
        this.sender = TranquilityClient.shared(config).sender(dataSource);
        this.done = new ConcurrentLinkedQueue<>();
        gauge(context, "received", Totals::received);
        gauge(context, "sent", Totals::sent);
        gauge(context, "dropped", Totals::dropped);
        gauge(context, "failed", Totals::failed);
        gauge(context, "pending", Totals::pending);
    }

    private void gauge(TopologyContext context, String name, ToLongFunction<Totals> read) {
        EventSender s = sender;
        context.registerGauge("tranquility." + name, (Gauge<Long>) () -> read.applyAsLong(s.totals()));
    }

    @Override
    public void execute(Tuple tuple) {
        if (TupleUtils.isTick(tuple)) {
            sender.flushAsync();
        } else {
            try {
                sender.send(tuple.getValue(0)).thenAccept(outcome -> done.add(new Done(tuple, outcome)));
            } catch (IllegalArgumentException e) {
                collector.reportError(e);
                collector.fail(tuple);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                collector.fail(tuple);
            }
        }
        handOver();
    }

    /** Acks or fails the tuples whose events have outcomes. */
    private void handOver() {
        Throwable firstError = null;
        Done d;
        while ((d = done.poll()) != null) {
            if (d.outcome().isFailed()) {
                collector.fail(d.tuple());
                if (firstError == null) {
                    firstError = d.outcome().error().orElse(null);
                }
            } else {
                collector.ack(d.tuple());
            }
        }
        if (firstError != null) {
            collector.reportError(firstError);
        }
    }

    /** Stops sending. Tuples not yet acked are failed or time out, and the spout replays them. */
    @Override
    public void cleanup() {
        if (sender != null) {
            sender.close();
            handOver();
        }
    }

    @Override
    public void declareOutputFields(OutputFieldsDeclarer declarer) {
        // Nothing is emitted.
    }

    @Override
    public Map<String, Object> getComponentConfiguration() {
        return TupleUtils.putTickFrequencyIntoComponentConfig(new HashMap<>(), 1);
    }
}
