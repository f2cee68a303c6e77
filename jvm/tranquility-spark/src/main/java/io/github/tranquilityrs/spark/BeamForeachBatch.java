package io.github.tranquilityrs.spark;

import io.github.tranquilityrs.client.ClientConfig;
import org.apache.spark.api.java.function.VoidFunction2;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;

/**
 * A Structured Streaming {@code foreachBatch} writer: each micro-batch's rows go to a dataSource
 * as JSON objects (one field per column), through {@link BeamRDD#propagate}. A batch whose
 * events failed fails, and the query runs it again from its checkpoint when restarted.
 *
 * <pre>{@code
 * events.writeStream().foreachBatch(new BeamForeachBatch(config, "clicks"))
 *       .option("checkpointLocation", "/checkpoints/clicks").start();
 * }</pre>
 */
public final class BeamForeachBatch implements VoidFunction2<Dataset<Row>, Long> {
    private static final long serialVersionUID = 1L;
    private final ClientConfig config;
    private final String dataSource;

    /** A writer to {@code dataSource}. */
    public BeamForeachBatch(ClientConfig config, String dataSource) {
        this.config = config;
        this.dataSource = dataSource;
    }

    @Override
    public void call(Dataset<Row> batch, Long batchId) {
        BeamRDD.propagate(batch.toJSON().javaRDD(), config, dataSource);
    }
}
