package io.vfiouser.examples;

import io.vfiouser.server.launcher.ServerMain;

/**
 * {@code java -jar vfio-user-examples.jar <device> --socket-path=PATH}: the server launcher with the example
 * devices on its class path ({@link ExamplesPlugin}), so everything {@code vfio-user-server.jar} takes works here
 * too ({@code --fd=N}, socket activation, {@code --config FILE}, {@code --plugins DIR}, {@code --trace}, ...).
 */
public final class ExamplesMain {
    private ExamplesMain() {
    }

    public static void main(String[] args) {
        ServerMain.main(args);
    }
}
