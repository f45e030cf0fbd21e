package io.vfiouser.transport.testing;

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

/**
 * Collects, while open, every line one logger writes at {@code level} or above, formatted as {@code LEVEL message},
 * instead of letting it reach the console.
 */
public final class CapturedLog implements AutoCloseable {
    private final List<String> lines = new CopyOnWriteArrayList<>();
    private final String name;
    private final LoggerContext context;
    private final AbstractAppender appender;

    public CapturedLog(String loggerName, Level level) {
        this.name = loggerName;
        this.context = (LoggerContext) LogManager.getContext(false);
        this.appender = new AbstractAppender("captured-" + loggerName, null, null, true, Property.EMPTY_ARRAY) {
            @Override
            public void append(LogEvent event) {
                lines.add(event.getLevel() + " " + event.getMessage().getFormattedMessage());
            }
        };
        appender.start();
        Configuration config = context.getConfiguration();
        LoggerConfig logger = new LoggerConfig(loggerName, level, false);
        logger.addAppender(appender, level, null);
        config.addLogger(loggerName, logger);
        context.updateLoggers();
    }

    /** Captures what the logger named {@code loggerName} writes at {@code level} and above. */
    public static CapturedLog of(String loggerName, Level level) {
        return new CapturedLog(loggerName, level);
    }

    public List<String> lines() {
        return List.copyOf(lines);
    }

    public long count(String startingWith) {
        return lines.stream().filter(l -> l.startsWith(startingWith)).count();
    }

    @Override
    public void close() {
        context.getConfiguration().removeLogger(name);
        context.updateLoggers();
        appender.stop();
    }
}
