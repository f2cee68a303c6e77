package io.github.tranquilityrs.samza;

import io.github.tranquilityrs.client.ClientConfig;
import java.util.HashMap;
import java.util.Map;
import org.apache.samza.SamzaException;
import org.apache.samza.config.Config;
import org.apache.samza.metrics.MetricsRegistry;
import org.apache.samza.system.SystemAdmin;
import org.apache.samza.system.SystemConsumer;
import org.apache.samza.system.SystemFactory;
import org.apache.samza.system.SystemProducer;
import org.apache.samza.util.SinglePartitionWithoutOffsetsSystemAdmin;

/**
 * A Samza system whose streams are Druid dataSources, reached through Tranquility Server.
 * Messages sent to stream {@code clicks} of the system go to dataSource {@code clicks}:
 *
 * <pre>
 * systems.druid.samza.factory=io.github.tranquilityrs.samza.BeamSystemFactory
 * systems.druid.tranquility.url=http://tranquility:8200
 * # optional: tranquility.maxBatchSize, .maxPendingBatches, .lingerMillis, .format, ... (ClientConfig)
 * </pre>
 *
 * The producer sends as messages come and, at each commit, waits until every one has its
 * outcome, failing the commit if any failed: a restarted container replays from its last
 * checkpoint. Messages are JSON text, UTF-8 JSON bytes (a {@code json} serde's output) or Maps.
 */
@SuppressWarnings("deprecation") // Samza 1.8 deprecates these three methods yet still requires them
public class BeamSystemFactory implements SystemFactory {

    /** The original's batching keys, read as the client's. */
    private static final Map<String, String> ORIGINAL_KEYS = Map.of(
            "beam.batchSize", "tranquility.maxBatchSize",
            "beam.maxPendingBatches", "tranquility.maxPendingBatches",
            "beam.lingerMillis", "tranquility.lingerMillis");

    @Override
    public SystemConsumer getConsumer(String systemName, Config config, MetricsRegistry registry) {
        throw new SamzaException("system '" + systemName + "' sends to Druid; it has nothing to consume");
    }

    @Override
    public SystemProducer getProducer(String systemName, Config config, MetricsRegistry registry) {
        return new BeamSystemProducer(clientConfig(systemName, config));
    }

    @Override
    public SystemAdmin getAdmin(String systemName, Config config) {
        return new SinglePartitionWithoutOffsetsSystemAdmin();
    }

    /** The client configuration under {@code systems.<systemName>.}. */
    public static ClientConfig clientConfig(String systemName, Config config) {
        String prefix = "systems." + systemName + ".";
        Map<String, String> props = new HashMap<>(config.subset(prefix, true));
        if (props.containsKey("beam.factory")) {
            throw new SamzaException(prefix + "beam.factory names the original's BeamFactory; this system sends "
                    + "through Tranquility Server: set " + prefix + "tranquility.url instead");
        }
        ORIGINAL_KEYS.forEach((original, key) -> {
            String value = props.remove(original);
            if (value != null) {
                props.putIfAbsent(key, value);
            }
        });
        try {
            return ClientConfig.fromProperties(props, "tranquility.");
        } catch (IllegalArgumentException e) {
            throw new SamzaException("system '" + systemName + "': " + e.getMessage().replace("tranquility.",
                    prefix + "tranquility."), e);
        }
    }
}
