package io.github.tranquilityrs.storm;

import io.github.tranquilityrs.testkit.TestEvents;
import java.util.ArrayDeque;
import java.util.Map;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.storm.spout.SpoutOutputCollector;
import org.apache.storm.task.TopologyContext;
import org.apache.storm.topology.OutputFieldsDeclarer;
import org.apache.storm.topology.base.BaseRichSpout;
import org.apache.storm.tuple.Fields;
import org.apache.storm.tuple.Values;

/**
 * A reliable spout over a durable log, as a Kafka spout is: events 0..n-1 of a run (0 is stale,
 * outside the window), each acked id remembered outside the topology, failed ids replayed. A
 * new topology on the same ledger emits every id not acked yet, as a restarted job would.
 */
public class LedgerSpout extends BaseRichSpout {
    private static final long serialVersionUID = 1L;

    /** The durable side: what was acked and failed, per run. */
    public static final class Ledger {
        final String run;
        final int size;
        /** Ids below this may be emitted (the log grows as the test lets it). */
        volatile int available;
        final Set<Integer> acked = ConcurrentHashMap.newKeySet();
        final AtomicInteger failed = new AtomicInteger();

        Ledger(String run, int size) {
            this.run = run;
            this.size = size;
        }
    }

    static final Map<String, Ledger> LEDGERS = new ConcurrentHashMap<>();

    private final String run;
    private transient SpoutOutputCollector collector;
    private transient Queue<Integer> toEmit;
    private transient int next;

    LedgerSpout(String run) {
        this.run = run;
    }

    static Ledger ledger(String run, int size) {
        return LEDGERS.computeIfAbsent(run, r -> new Ledger(r, size));
    }

    @Override
    public void open(Map<String, Object> conf, TopologyContext context, SpoutOutputCollector collector) {
        this.collector = collector;
        this.toEmit = new ArrayDeque<>();
        this.next = 0;
    }

    @Override
    public void nextTuple() {
        Ledger ledger = LEDGERS.get(run);
        Integer id = toEmit.poll();
        while (id == null && next < ledger.available) {
            if (!ledger.acked.contains(next)) {
                id = next;
            }
            next++;
        }
        if (id == null) {
            return;
        }
        String json = id == 0 ? TestEvents.stale(run) : TestEvents.event(run, id);
        collector.emit(new Values(json), id);
    }

    @Override
    public void ack(Object id) {
        LEDGERS.get(run).acked.add((Integer) id);
    }

    @Override
    public void fail(Object id) {
        LEDGERS.get(run).failed.incrementAndGet();
        toEmit.add((Integer) id);
    }

    @Override
    public void declareOutputFields(OutputFieldsDeclarer declarer) {
        declarer.declare(new Fields("event"));
    }
}
