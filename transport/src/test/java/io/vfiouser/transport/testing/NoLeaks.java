package io.vfiouser.transport.testing;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.Configuration;
import org.apache.logging.log4j.core.config.LoggerConfig;
import org.apache.logging.log4j.core.config.Property;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * A JUnit extension that fails a test when Netty's leak detector reports a leaked buffer. Netty logs leaks through
 * Log4j2 (logger {@code io.netty.util.ResourceLeakDetector}); this extension records those events and, after each
 * test, collects garbage and allocates a little so pending reports come out, then asserts there were none.
 * The build runs tests with {@code -Dio.netty.leakDetection.level=paranoid}, so every buffer is tracked.
 */
public final class NoLeaks implements BeforeAllCallback, AfterEachCallback {
    private static final String LOGGER = ResourceLeakDetector.class.getName();
    private static final List<String> LEAKS = new CopyOnWriteArrayList<>();
    private static volatile boolean installed;

    @Override
    public void beforeAll(ExtensionContext context) {
        install();
    }

    private static synchronized void install() {
        if (installed) {
            return;
        }
        LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
        Configuration config = ctx.getConfiguration();
        AbstractAppender appender = new AbstractAppender("netty-leaks", null, null, true, Property.EMPTY_ARRAY) {
            @Override
            public void append(LogEvent event) {
                if (event.getLevel().isMoreSpecificThan(Level.ERROR)) {
                    LEAKS.add(event.getMessage().getFormattedMessage());
                }
            }
        };
        appender.start();
        config.addAppender(appender);
        LoggerConfig logger = new LoggerConfig(LOGGER, Level.ERROR, true);
        logger.addAppender(appender, Level.ERROR, null);
        config.addLogger(LOGGER, logger);
        ctx.updateLoggers();
        installed = true;
    }

    @Override
    public void afterEach(ExtensionContext context) throws Exception {
        assertNoLeaks(context.getDisplayName());
    }

    /** Collects garbage, lets pending leak reports out and fails if there were any since the last check. */
    public static void assertNoLeaks(String during) throws InterruptedException {
        install();
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(10);
            // Leaks are reported when the detector next tracks a buffer.
            for (int j = 0; j < 8; j++) {
                ByteBuf a = PooledByteBufAllocator.DEFAULT.directBuffer(16);
                ByteBuf b = UnpooledByteBufAllocator.DEFAULT.directBuffer(16);
                a.release();
                b.release();
            }
        }
        List<String> leaks = List.copyOf(LEAKS);
        LEAKS.clear();
        assertThat(leaks).as("Netty leak reports during %s", during).isEmpty();
    }
}
