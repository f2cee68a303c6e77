package io.github.tranquilityrs.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.tranquilityrs.client.ClientConfig;
import io.github.tranquilityrs.client.Totals;
import io.github.tranquilityrs.client.TranquilityClient;
import io.github.tranquilityrs.testkit.FlakyProxy;
import io.github.tranquilityrs.testkit.Quickstart;
import io.github.tranquilityrs.testkit.TestEvents;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.IntStream;
import org.apache.spark.SparkException;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.apache.spark.sql.streaming.Trigger;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** BeamRDD and BeamForeachBatch in Spark's local[2] mode against a real quickstart. */
class BeamRDDTest {
    private static final long YEAR_2001 = 978307200000L;
    private static Quickstart quickstart;
    private static SparkSession spark;
    private static JavaSparkContext sc;
    private static ClientConfig config;
    /** Totals gathered by the DStream test's foreachRDD, on the driver. */
    private static final AtomicReference<Totals> STREAMED = new AtomicReference<>(Totals.ZERO);

    @BeforeAll
    static void start() throws Exception {
        quickstart = Quickstart.start();
        config = ClientConfig.builder(quickstart.serverUrl()).maxBatchSize(40).build();
        spark = SparkSession.builder().master("local[2]").appName("tranquility-test")
                .config("spark.ui.enabled", "false")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .config("spark.sql.shuffle.partitions", "2")
                .getOrCreate();
        sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    }

    @AfterAll
    static void stop() throws Exception {
        spark.stop();
        quickstart.close();
    }

    private static List<String> events(String run, int from, int to) {
        return IntStream.range(from, to).mapToObj(i -> TestEvents.event(run, i)).toList();
    }

    @Test
    void anRddReachesDruidAndItsStaleEventIsReportedDropped() throws Exception {
        String run = TestEvents.newRun();
        List<String> events = new ArrayList<>(events(run, 1, 201));
        events.add(TestEvents.stale(run));
        Totals totals = BeamRDD.propagate(sc.parallelize(events, 4), config, Quickstart.DATA_SOURCE);
        assertEquals(201, totals.received(), totals::toString);
        assertEquals(200, totals.sent(), totals::toString);
        assertEquals(1, totals.dropped("outside_window"), totals::toString);
        assertEquals(0, totals.failed() + totals.pending(), totals::toString);
        assertEquals(200, quickstart.druid().awaitCount(Quickstart.DATA_SOURCE, "run", run, 200, Duration.ofSeconds(30)));
    }

    @Test
    @SuppressWarnings("deprecation") // Spark 4 deprecates DStreams; they still run
    void aDStreamSendsEachMicroBatch() throws Exception {
        String run = TestEvents.newRun();
        Queue<JavaRDD<String>> batches = new LinkedList<>();
        for (int b = 0; b < 3; b++) {
            batches.add(sc.parallelize(events(run, 1 + 50 * b, 51 + 50 * b), 2));
        }
        JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(200));
        ClientConfig cfg = config;
        ssc.queueStream(batches, true).foreachRDD(rdd ->
                STREAMED.accumulateAndGet(BeamRDD.propagate(rdd, cfg, Quickstart.DATA_SOURCE), Totals::plus));
        ssc.start();
        try {
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (STREAMED.get().received() < 150 && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
        } finally {
            ssc.stop(false, false);
        }
        assertEquals(150, STREAMED.get().sent(), STREAMED.get()::toString);
        assertEquals(150, quickstart.druid().awaitCount(Quickstart.DATA_SOURCE, "run", run, 150, Duration.ofSeconds(30)));
    }

    @Test
    void structuredStreamingBatchesReachDruidOnceAcrossRestarts(@TempDir Path dir) throws Exception {
        String run = TestEvents.newRun();
        Path input = Files.createDirectory(dir.resolve("in"));
        List<String> first = new ArrayList<>(events(run, 1, 61));
        first.add(TestEvents.event(run, 0, YEAR_2001));
        Files.write(input.resolve("a.json"), first);
        Files.write(input.resolve("b.json"), events(run, 61, 121));
        Totals before = TranquilityClient.shared(config).totals();

        runAvailableNow(input, dir.resolve("checkpoint"));
        assertEquals(120, quickstart.druid().awaitCount(Quickstart.DATA_SOURCE, "run", run, 120, Duration.ofSeconds(30)));
        Totals after = TranquilityClient.shared(config).totals();
        assertEquals(1, after.dropped("outside_window") - before.dropped("outside_window"), after::toString);

        // Restarted from its checkpoint, the query sends only the new file.
        Files.write(input.resolve("c.json"), events(run, 121, 151));
        runAvailableNow(input, dir.resolve("checkpoint"));
        assertEquals(150, quickstart.druid().awaitCount(Quickstart.DATA_SOURCE, "run", run, 150, Duration.ofSeconds(30)));
        assertEquals(150, quickstart.druid().distinct(Quickstart.DATA_SOURCE, "run", run, "id"));
    }

    private static void runAvailableNow(Path input, Path checkpoint) throws Exception {
        StructType schema = new StructType()
                .add("timestamp", DataTypes.LongType)
                .add("run", DataTypes.StringType)
                .add("id", DataTypes.StringType);
        StreamingQuery query = spark.readStream().schema(schema).option("maxFilesPerTrigger", 1)
                .json(input.toString())
                .writeStream()
                .foreachBatch(new BeamForeachBatch(config, Quickstart.DATA_SOURCE))
                .option("checkpointLocation", checkpoint.toString())
                .trigger(Trigger.AvailableNow())
                .start();
        query.awaitTermination();
    }

    @Test
    void failedEventsFailTheTask() throws Exception {
        try (FlakyProxy proxy = FlakyProxy.to(quickstart.serverUrl())) {
            proxy.down();
            ClientConfig cut = ClientConfig.builder(proxy.url()).maxAttempts(1).build();
            SparkException e = assertThrows(SparkException.class,
                    () -> BeamRDD.propagate(sc.parallelize(events("x", 1, 6), 1), cut, Quickstart.DATA_SOURCE));
            assertTrue(e.getMessage().contains("5 events failed since the last flush"), e.getMessage());
        }
    }
}
