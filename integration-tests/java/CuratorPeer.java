// A Java peer on the same ZooKeeper as the Rust code under test, built on Apache Curator the
// way the original Tranquility and Druid use it. Driven line by line over stdin; answers on
// stdout, one line per command.
//
//   CuratorPeer <connect> lock <identityDir>
//     ensure-data  create <identityDir>/data holding the empty metadata, as ClusteredBeam does
//     acquire      take the InterProcessSemaphoreMutex at <identityDir>/mutex  -> "acquired"
//     release      give it back                                                 -> "released"
//     increment N  N read-modify-writes of "counter" in the data JSON under the mutex,
//                  as ClusteredBeam updates its metadata                        -> "incremented"
//     read         -> "data <the data node's bytes>"
//   CuratorPeer <connect> announce <basePath> <name> <address> <port>
//     registers a ServiceInstance<Void> as Druid announces its services    -> "announced <id>"
//     unannounce   unregisters it                                        -> "unannounced"
//
// Every mode ends on "quit" or at the end of stdin.

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreMutex;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.zookeeper.KeeperException;

public class CuratorPeer {
    // What the original writes into a data node it creates (ClusteredBeamMeta.empty).
    static final String EMPTY_META =
        "{\"latestTime\":\"1970-01-01T00:00:00.000Z\",\"latestCloseTime\":\"1970-01-01T00:00:00.000Z\",\"beams\":{}}";

    public static void main(String[] args) throws Exception {
        CuratorFramework curator = CuratorFrameworkFactory.newClient(
            args[0], 20000, 10000, new ExponentialBackoffRetry(1000, 5, 30000));
        curator.start();
        curator.blockUntilConnected();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try {
            if (args[1].equals("lock")) {
                lock(curator, args[2], in);
            } else if (args[1].equals("announce")) {
                announce(curator, args[2], args[3], args[4], Integer.parseInt(args[5]), in);
            } else {
                throw new IllegalArgumentException("unknown mode " + args[1]);
            }
        } finally {
            curator.close();
        }
    }

    static void reply(String line) {
        System.out.println(line);
        System.out.flush();
    }

    static void lock(CuratorFramework curator, String dir, BufferedReader in) throws Exception {
        String dataPath = dir + "/data";
        InterProcessSemaphoreMutex mutex = new InterProcessSemaphoreMutex(curator, dir + "/mutex");
        ObjectMapper mapper = new ObjectMapper();
        reply("ready");
        for (String line; (line = in.readLine()) != null && !line.equals("quit"); ) {
            String[] words = line.trim().split(" ");
            switch (words[0]) {
                case "ensure-data":
                    if (curator.checkExists().forPath(dataPath) == null) {
                        try {
                            curator.create().creatingParentsIfNeeded()
                                .forPath(dataPath, EMPTY_META.getBytes(StandardCharsets.UTF_8));
                        } catch (KeeperException.NodeExistsException e) {
                            // Someone else created it meanwhile.
                        }
                    }
                    reply("ensured");
                    break;
                case "acquire":
                    mutex.acquire();
                    reply("acquired");
                    break;
                case "release":
                    mutex.release();
                    reply("released");
                    break;
                case "increment":
                    for (int i = Integer.parseInt(words[1]); i > 0; i--) {
                        mutex.acquire();
                        try {
                            curator.sync().forPath(dataPath);
                            @SuppressWarnings("unchecked")
                            Map<String, Object> meta = mapper.readValue(
                                curator.getData().forPath(dataPath), LinkedHashMap.class);
                            Object old = meta.get("counter");
                            long counter = old == null ? 0 : ((Number) old).longValue();
                            meta.put("counter", counter + 1);
                            curator.setData().forPath(dataPath, mapper.writeValueAsBytes(meta));
                        } finally {
                            mutex.release();
                        }
                    }
                    reply("incremented");
                    break;
                case "read":
                    reply("data " + new String(curator.getData().forPath(dataPath), StandardCharsets.UTF_8));
                    break;
                default:
                    reply("error unknown command " + line);
            }
        }
    }

    static void announce(CuratorFramework curator, String base, String name, String address, int port,
                         BufferedReader in) throws Exception {
        // Druid's CuratorServiceAnnouncer: a ServiceInstance<Void> with name, address and port.
        ServiceDiscovery<Void> discovery = ServiceDiscoveryBuilder.builder(Void.class)
            .basePath(base).client(curator).build();
        discovery.start();
        ServiceInstance<Void> instance = ServiceInstance.<Void>builder()
            .name(name).address(address).port(port).build();
        discovery.registerService(instance);
        reply("announced " + instance.getId());
        for (String line; (line = in.readLine()) != null && !line.equals("quit"); ) {
            if (line.trim().equals("unannounce")) {
                discovery.unregisterService(instance);
                reply("unannounced");
            } else {
                reply("error unknown command " + line);
            }
        }
        discovery.close();
    }
}
