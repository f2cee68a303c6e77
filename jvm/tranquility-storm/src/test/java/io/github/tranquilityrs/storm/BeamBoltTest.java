package io.github.tranquilityrs.storm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.tranquilityrs.client.ClientConfig;
import io.github.tranquilityrs.client.Totals;
import io.github.tranquilityrs.client.TranquilityClient;
import io.github.tranquilityrs.testkit.FlakyProxy;
import io.github.tranquilityrs.testkit.Quickstart;
import io.github.tranquilityrs.testkit.TestEvents;
import java.time.Duration;
import java.util.function.BooleanSupplier;
import org.apache.storm.Config;
import org.apache.storm.LocalCluster;
import org.apache.storm.generated.KillOptions;
import org.apache.storm.topology.TopologyBuilder;
import org.junit.jupiter.api.Test;

/**
 * BeamBolt in Storm's LocalCluster against a real quickstart, through a relay the test cuts:
 * failed tuples are replayed until Druid has them, and a topology killed while events are
 * failing loses none once a new one takes over the spout's ledger.
 */
class BeamBoltTest {
    private static final int EVENTS = 300;

    @Test
    @SuppressWarnings("try") // LocalCluster.close() may throw InterruptedException
    void everyEventReachesDruidThroughFailuresAndAKilledTopology() throws Exception {
        String run = TestEvents.newRun();
        LedgerSpout.Ledger ledger = LedgerSpout.ledger(run, EVENTS + 1);
        try (Quickstart quickstart = Quickstart.start();
                FlakyProxy proxy = FlakyProxy.to(quickstart.serverUrl());
                LocalCluster cluster = new LocalCluster()) {
            ClientConfig config = ClientConfig.builder(proxy.url()).maxBatchSize(50).maxAttempts(2)
                    .backoff(Duration.ofMillis(10), Duration.ofMillis(50)).build();
            Config conf = new Config();
            conf.setMaxSpoutPending(40);
            conf.setMessageTimeoutSecs(30);
            conf.setNumAckers(1);

            // The server is cut off from the start: the first tuples fail and are replayed.
            proxy.down();
            ledger.available = EVENTS / 3;
            cluster.submitTopology("druid-1", conf, topology(run, config));
            await("a tuple failed", () -> ledger.failed.get() > 0);
            proxy.up();
            await("the first third acked", () -> ledger.acked.size() == EVENTS / 3);

            // Cut off again with more events out, then kill the topology while they fail.
            proxy.down();
            int failedBefore = ledger.failed.get();
            ledger.available = EVENTS + 1;
            await("more tuples failed", () -> ledger.failed.get() > failedBefore);
            cluster.killTopologyWithOpts("druid-1", killNow());
            assertTrue(ledger.acked.size() < EVENTS + 1, "the kill came before the end");

            // A new topology replays from the ledger.
            proxy.up();
            cluster.submitTopology("druid-2", conf, topology(run, config));
            await("every tuple acked", () -> ledger.acked.size() == EVENTS + 1);
            cluster.killTopologyWithOpts("druid-2", killNow());

            long counted = quickstart.druid().awaitCount(Quickstart.DATA_SOURCE, "run", run, EVENTS,
                    Duration.ofSeconds(30));
            assertTrue(counted >= EVENTS, "Druid counted " + counted + " of " + EVENTS);
            assertEquals(EVENTS, quickstart.druid().distinct(Quickstart.DATA_SOURCE, "run", run, "id"),
                    "every event once at least, and no stale one");
            Totals totals = TranquilityClient.shared(config).totals();
            assertTrue(totals.dropped("outside_window") >= 1, totals::toString);
            assertTrue(totals.failed() > 0, totals::toString);
        }
    }

    private static org.apache.storm.generated.StormTopology topology(String run, ClientConfig config) {
        TopologyBuilder builder = new TopologyBuilder();
        builder.setSpout("events", new LedgerSpout(run), 1);
        builder.setBolt("druid", new BeamBolt(config, Quickstart.DATA_SOURCE), 1).shuffleGrouping("events");
        return builder.createTopology();
    }

    private static KillOptions killNow() {
        KillOptions options = new KillOptions();
        options.set_wait_secs(0);
        return options;
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(20);
        }
    }
}
