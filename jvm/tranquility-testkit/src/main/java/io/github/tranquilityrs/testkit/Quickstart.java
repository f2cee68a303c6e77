package io.github.tranquilityrs.testkit;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A real {@code tranquility quickstart} (druid-local and Tranquility Server in one process) on
 * free loopback ports, for a test. The binary comes from {@code TRANQUILITY_BIN}.
 */
public final class Quickstart implements AutoCloseable {
    /** The dataSource of the built-in configuration: any JSON object with a current timestamp. */
    public static final String DATA_SOURCE = "quickstart";

    private static final Pattern DRUID = Pattern.compile("druid-local:\\s+(http://\\S+)");
    private static final Pattern PUSH = Pattern.compile("push URL:\\s+(http://[^/\\s]+)/v1/post/");

    private final Process process;
    private final String serverUrl;
    private final String druidUrl;
    private final Path log;

    private Quickstart(Process process, String serverUrl, String druidUrl, Path log) {
        this.process = process;
        this.serverUrl = serverUrl;
        this.druidUrl = druidUrl;
        this.log = log;
    }

    /** Starts one and waits until it serves. */
    public static Quickstart start() throws IOException, InterruptedException {
        String bin = System.getenv("TRANQUILITY_BIN");
        if (bin == null || bin.isBlank()) {
            throw new IllegalStateException("TRANQUILITY_BIN is not set: point it at the tranquility binary "
                    + "(cargo build -p tranquility-cli; scripts/test.sh sets it)");
        }
        if (!new File(bin).canExecute()) {
            throw new IllegalStateException("TRANQUILITY_BIN=" + bin + " is not an executable file");
        }
        Path log = Files.createTempFile("tranquility-quickstart-", ".log");
        Process process = new ProcessBuilder(List.of(bin, "quickstart", "--port", "0", "--druid-port", "0",
                "--log", "info"))
                .redirectError(log.toFile())
                .start();
        Runtime.getRuntime().addShutdownHook(new Thread(process::destroyForcibly));
        CompletableFuture<String[]> urls = new CompletableFuture<>();
        Thread reader = new Thread(() -> readBanner(process, urls), "quickstart-stdout");
        reader.setDaemon(true);
        reader.start();
        try {
            String[] found = urls.get(60, TimeUnit.SECONDS);
            return new Quickstart(process, found[0], found[1], log);
        } catch (Exception e) {
            process.destroyForcibly();
            throw new IOException("tranquility quickstart did not start: " + e + "\n" + tail(log), e);
        }
    }

    private static void readBanner(Process process, CompletableFuture<String[]> urls) {
        String server = null;
        String druid = null;
        try (BufferedReader out = new BufferedReader(
                new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = out.readLine()) != null) {
                Matcher d = DRUID.matcher(line);
                Matcher p = PUSH.matcher(line);
                if (d.find()) {
                    druid = d.group(1);
                } else if (p.find()) {
                    server = p.group(1);
                }
                if (server != null && druid != null && !urls.isDone()) {
                    urls.complete(new String[] {server, druid});
                }
            }
            urls.completeExceptionally(new IOException("exited with " + process.waitFor()));
        } catch (IOException | InterruptedException e) {
            urls.completeExceptionally(e);
        }
    }

    private static String tail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size()));
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    /** Tranquility Server's base URL, such as {@code http://127.0.0.1:41234}. */
    public String serverUrl() {
        return serverUrl;
    }

    /** druid-local's base URL, for queries. */
    public Druid druid() {
        return new Druid(druidUrl);
    }

    /** The last lines of the process's log, for failure messages. */
    public String logTail() {
        return tail(log);
    }

    /** Stops the process (a polite signal, then a kill if it lingers). */
    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        try {
            Files.deleteIfExists(log);
        } catch (IOException e) {
            // A temporary file; the system cleans it up.
        }
    }
}
