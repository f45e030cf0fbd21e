package io.vfiouser.server.launcher;

/**
 * {@code java -jar vfio-user-server.jar}: runs device servers the way operators run vfio-user backends (see
 * {@link LauncherArguments#USAGE} and {@code docs/operations.md}). It points Log4j at the launcher's own
 * configuration (unless one is given with {@code -Dlog4j2.configurationFile}) before anything logs, then hands
 * over to {@link Launcher}.
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
        System.exit(Launcher.run(args));
    }
}
