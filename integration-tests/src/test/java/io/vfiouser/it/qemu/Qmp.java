package io.vfiouser.it.qemu;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * A minimal QMP client: one JSON object a line each way. {@link #connect} reads the greeting and negotiates
 * capabilities; {@link #execute} sends a command and returns its response line ({@code "return"}), failing on
 * {@code "error"}; events that arrive meanwhile are kept for {@link #awaitEvent}. No JSON library: the tests match
 * the few fields they need with regular expressions on the (single-line) JSON text.
 */
final class Qmp implements AutoCloseable {
    private static final String EOF = "\u0000EOF";

    private final SocketChannel channel;
    private final Process qemu;
    private final BlockingQueue<String> incoming = new LinkedBlockingQueue<>();
    private final List<String> events = new ArrayList<>();
    private final List<String> transcript = new ArrayList<>();

    private Qmp(SocketChannel channel, Process qemu) {
        this.channel = channel;
        this.qemu = qemu;
        Thread reader = new Thread(this::readLines, "qmp-reader-" + qemu.pid());
        reader.setDaemon(true);
        reader.start();
    }

    /**
     * Makes the JDK set up its socket channel machinery, which keeps one socket fd open for the life of the JVM (the
     * "pre-close" socket of sun.nio.ch.UnixDispatcher), so that a test counting fds around a QMP session can take
     * its "before" count after it exists.
     */
    static void prepareJdkSockets() throws IOException {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.isOpen();
        }
    }

    /** Connects to QEMU's QMP socket, retrying while QEMU starts up (it creates the socket early in its start-up). */
    static Qmp connect(Path socket, Process qemu, Duration within) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + within.toNanos();
        while (true) {
            SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
            try {
                ch.connect(UnixDomainSocketAddress.of(socket));
                Qmp qmp = new Qmp(ch, qemu);
                String greeting = qmp.next(deadline);
                if (!greeting.contains("\"QMP\"")) {
                    qmp.close();
                    throw new IOException("not a QMP greeting: " + greeting);
                }
                qmp.execute("qmp_capabilities", null, Duration.ofNanos(deadline - System.nanoTime()));
                return qmp;
            } catch (IOException e) {
                ch.close();
                if (!qemu.isAlive() || System.nanoTime() > deadline || e.getMessage().startsWith("not a QMP")) {
                    throw new IOException("cannot connect to QMP at " + socket + " (QEMU alive: " + qemu.isAlive()
                            + ")", e);
                }
                // The socket does not exist yet: wait for QEMU to get further (or end).
                qemu.waitFor(10, TimeUnit.MILLISECONDS);
            }
        }
    }

    /** Sends {@code {"execute":command,"arguments":argumentsJson}} and returns the response line. */
    synchronized String execute(String command, String argumentsJson, Duration within)
            throws IOException, InterruptedException {
        long deadline = System.nanoTime() + within.toNanos();
        String line = "{\"execute\":\"" + command + "\""
                + (argumentsJson == null ? "" : ",\"arguments\":" + argumentsJson) + "}";
        transcript.add("-> " + line);
        ByteBuffer out = ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.UTF_8));
        while (out.hasRemaining()) {
            channel.write(out);
        }
        while (true) {
            String in = next(deadline);
            if (isEvent(in)) {
                events.add(in);
            } else if (in.contains("\"return\"")) {
                return in;
            } else {
                throw new IOException("QMP " + command + " failed: " + in + transcript());
            }
        }
    }

    /** Waits for an event named {@code event} whose line matches {@code dataRegex} (found anywhere in it); events
     * that arrived earlier count. Returns its line. */
    synchronized String awaitEvent(String event, String dataRegex, Duration within)
            throws IOException, InterruptedException {
        long deadline = System.nanoTime() + within.toNanos();
        Pattern name = Pattern.compile("\"event\"\\s*:\\s*\"" + Pattern.quote(event) + "\"");
        Pattern data = Pattern.compile(dataRegex);
        for (String e : events) {
            if (name.matcher(e).find() && data.matcher(e).find()) {
                return e;
            }
        }
        while (true) {
            String in = next(deadline);
            if (isEvent(in)) {
                events.add(in);
                if (name.matcher(in).find() && data.matcher(in).find()) {
                    return in;
                }
            }
        }
    }

    /** Everything sent and received so far, for failure messages. */
    synchronized String transcript() {
        return "\n--- QMP transcript:\n" + String.join("\n", transcript) + "\n";
    }

    private static boolean isEvent(String line) {
        return line.matches("(?s)\\{\\s*\"timestamp\".*\"event\".*") || line.matches("(?s)\\{\\s*\"event\".*");
    }

    private String next(long deadline) throws IOException, InterruptedException {
        long left = deadline - System.nanoTime();
        String line = left > 0 ? incoming.poll(left, TimeUnit.NANOSECONDS) : incoming.poll();
        if (line == null) {
            throw new IOException("no QMP message in time" + transcript());
        }
        if (line.equals(EOF)) {
            incoming.add(EOF);
            throw new IOException("QMP connection closed (QEMU alive: " + qemu.isAlive() + ")" + transcript());
        }
        synchronized (this) {
            transcript.add("<- " + line);
        }
        return line;
    }

    private void readLines() {
        try (BufferedReader in = new BufferedReader(
                new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                if (!line.isBlank()) {
                    incoming.add(line.strip());
                }
            }
        } catch (IOException e) {
            // closed: reported as EOF
        } finally {
            incoming.add(EOF);
        }
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException e) {
            // nothing to do
        }
    }
}
