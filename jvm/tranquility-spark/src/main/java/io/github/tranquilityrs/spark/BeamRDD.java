package io.github.tranquilityrs.spark;

import io.github.tranquilityrs.client.ClientConfig;
import io.github.tranquilityrs.client.EventSender;
import io.github.tranquilityrs.client.Totals;
import io.github.tranquilityrs.client.TranquilityClient;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.rdd.RDD;

/**
 * Sends an RDD's elements (JSON text, UTF-8 JSON bytes or {@code Map}s) to a dataSource
 * through Tranquility Server, one sender per partition on the executors' shared clients. A
 * partition's task ends once each of its events has an outcome, and fails (so Spark runs it
 * again) when any event failed. For a DStream:
 *
 * <pre>{@code
 * stream.foreachRDD(rdd -> BeamRDD.propagate(rdd, config, "clicks"));
 * }</pre>
 */
public final class BeamRDD {
    private BeamRDD() {}

    /** Sends every element and returns the totals of the partitions' successful runs. */
    public static <T> Totals propagate(JavaRDD<T> rdd, ClientConfig config, String dataSource) {
        return rdd.mapPartitions(new Propagate<T>(config, dataSource)).fold(Totals.ZERO, Totals::plus);
    }

    /** {@link #propagate(JavaRDD, ClientConfig, String)} for a Scala RDD. */
    public static <T> Totals propagate(RDD<T> rdd, ClientConfig config, String dataSource) {
        return propagate(rdd.toJavaRDD(), config, dataSource);
    }

    /** One partition: send all, wait for the outcomes, report the totals. */
    private static final class Propagate<T> implements FlatMapFunction<Iterator<T>, Totals> {
        private static final long serialVersionUID = 1L;
        private final ClientConfig config;
        private final String dataSource;

        Propagate(ClientConfig config, String dataSource) {
            this.config = config;
            this.dataSource = dataSource;
        }

        @Override
        public Iterator<Totals> call(Iterator<T> events) throws Exception {
            try (EventSender sender = TranquilityClient.shared(config).sender(dataSource)) {
                while (events.hasNext()) {
                    sender.send(events.next());
                }
                sender.flush();
                return List.of(sender.totals()).iterator();
            }
        }
    }
}
