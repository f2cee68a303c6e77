package io.github.tranquilityrs.testkit;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A TCP relay on a free loopback port in front of a server, which a test can cut: while down,
 * it closes every connection it holds and every new one at once, as a crashed or unreachable
 * server would look to a client.
 */
public final class FlakyProxy implements AutoCloseable {
    private final ServerSocket listener;
    private final InetSocketAddress target;
    private final Set<Socket> open = ConcurrentHashMap.newKeySet();
    private volatile boolean down;
    private volatile boolean closed;

    private FlakyProxy(ServerSocket listener, InetSocketAddress target) {
        this.listener = listener;
        this.target = target;
    }

    /** A relay to {@code url}'s host and port, up. */
    public static FlakyProxy to(String url) throws IOException {
        URI uri = URI.create(url);
        ServerSocket listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        FlakyProxy proxy = new FlakyProxy(listener, new InetSocketAddress(uri.getHost(), uri.getPort()));
        Thread acceptor = new Thread(proxy::accept, "flaky-proxy-accept");
        acceptor.setDaemon(true);
        acceptor.start();
        return proxy;
    }

    /** The relay's URL, to give the client instead of the server's. */
    public String url() {
        return "http://127.0.0.1:" + listener.getLocalPort();
    }

    /** Cuts every connection now and refuses new ones until {@link #up()}. */
    public void down() {
        down = true;
        open.forEach(FlakyProxy::closeQuietly);
    }

    /** Relays again. */
    public void up() {
        down = false;
    }

    private void accept() {
        while (!closed) {
            Socket client;
            try {
                client = listener.accept();
            } catch (IOException e) {
                return;
            }
            if (down) {
                closeQuietly(client);
                continue;
            }
            try {
                Socket server = new Socket(target.getAddress(), target.getPort());
                open.add(client);
                open.add(server);
                pump(client, server);
                pump(server, client);
            } catch (IOException e) {
                closeQuietly(client);
            }
        }
    }

    private void pump(Socket from, Socket to) {
        Thread t = new Thread(() -> {
            byte[] buf = new byte[16 * 1024];
            try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
                int n;
                while ((n = in.read(buf)) >= 0) {
                    out.write(buf, 0, n);
                    out.flush();
                }
            } catch (IOException e) {
                // One side closed: close both below.
            } finally {
                closeQuietly(from);
                closeQuietly(to);
                open.remove(from);
                open.remove(to);
            }
        }, "flaky-proxy-pump");
        t.setDaemon(true);
        t.start();
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException e) {
            // Already closed.
        }
    }

    @Override
    public void close() throws IOException {
        closed = true;
        listener.close();
        open.forEach(FlakyProxy::closeQuietly);
    }
}
