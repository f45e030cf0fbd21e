package io.vfiouser.server.launcher;

import io.vfiouser.client.tool.VfioUserTool;

/**
 * {@code java -jar vfio-user-server.jar}: runs device servers the way operators run vfio-user backends (see
 * {@link LauncherArguments#USAGE} and {@code docs/operations.md}). It points Log4j at the launcher's own
 * configuration (unless one is given with {@code -Dlog4j2.configurationFile}) before anything logs, then hands
 * over to {@link Launcher}.
 *
 * <p>{@code inspect}, {@code config}, {@code read} and {@code write} as the first argument run the client tool
 * instead ({@link io.vfiouser.client.tool.VfioUserTool}): the jar that serves devices is also the one that looks at
 * them, with the same Netty natives and log configuration, and nothing else to install.
 */
public final class ServerMain {
    /** The launcher's Log4j configuration, a class-path resource: one line per event on stderr. */
    static final String LOG_CONFIG = "vfio-user-server-log4j2.xml";

    private ServerMain() {
    }

    public static void main(String[] args) {
        if (System.getProperty("log4j2.configurationFile") == null
                && System.getProperty("log4j.configurationFile") == null) {
            System.setProperty("log4j2.configurationFile", LOG_CONFIG);
        }
        if (args.length > 0 && VfioUserTool.COMMANDS.contains(args[0])) {
            System.exit(VfioUserTool.run(args, System.out, System.err));
        }
        System.exit(Launcher.run(args));
    }
}
