package io.vfiouser.server.launcher;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.deser.std.StdScalarDeserializer;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.module.SimpleModule;
import java.io.IOException;

/**
 * Numbers in device settings as people write them: {@code --id=0x5a}, {@code size: 64M}, {@code 1_000_000}. A
 * setting bound to a {@code long}, {@code int}, {@code short} or {@code byte} (or their boxes) takes a JSON number
 * as before, or a string in decimal or {@code 0x} hex, with {@code _} between digits and, for decimal, a binary size
 * suffix ({@code K}, {@code M}, {@code G}, {@code KiB}, {@code MiB}, {@code GiB}, {@code B}): the launcher's own
 * options read numbers the same way ({@link Quantities}). Values on the single-device command line always arrive as
 * strings, which Jackson alone reads only in decimal.
 *
 * <p>Suffixes are accepted for every integer setting rather than for those that mean sizes: the launcher cannot
 * tell which ones do, and a suffix on a count (an {@code id} of {@code 1K}) is what its writer asked for. A value
 * that does not fit the setting's type is an error naming the setting, never a silently truncated number.
 */
final class SettingsNumbers {
    private SettingsNumbers() {
    }

    /** The deserializers, for the mapper that binds settings. */
    static SimpleModule module() {
        SimpleModule module = new SimpleModule("vfio-user-setting-numbers");
        add(module, Long.class, long.class, Long.MIN_VALUE, Long.MAX_VALUE);
        add(module, Integer.class, int.class, Integer.MIN_VALUE, Integer.MAX_VALUE);
        add(module, Short.class, short.class, Short.MIN_VALUE, Short.MAX_VALUE);
        add(module, Byte.class, byte.class, Byte.MIN_VALUE, Byte.MAX_VALUE);
        return module;
    }

    private static <T extends Number> void add(SimpleModule module, Class<T> boxed, Class<?> primitive, long min,
                                               long max) {
        module.addDeserializer(boxed, new Deserializer<>(boxed, false, min, max));
        @SuppressWarnings("unchecked")
        Class<T> unboxed = (Class<T>) primitive;
        module.addDeserializer(unboxed, new Deserializer<>(boxed, true, min, max));
    }

    /** A number as text: decimal (a leading {@code -} allowed), {@code 0x} hex, or decimal with a size suffix. */
    static long parse(String what, String text) {
        String t = text.trim();
        if (t.startsWith("-")) {
            return -Quantities.count(what, t.substring(1), 0);
        }
        return Quantities.size(what, t, 0);
    }

    private static final class Deserializer<T extends Number> extends StdScalarDeserializer<T> {
        private final Class<T> boxed;
        private final boolean primitive;
        private final long min;
        private final long max;

        Deserializer(Class<T> boxed, boolean primitive, long min, long max) {
            super(boxed);
            this.boxed = boxed;
            this.primitive = primitive;
            this.min = min;
            this.max = max;
        }

        @Override
        public T deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
            String name = p.currentName() == null ? "a setting" : "setting " + p.currentName();
            long value;
            if (p.hasToken(JsonToken.VALUE_NUMBER_INT)) {
                if (p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
                    throw MismatchedInputException.from(p, boxed,
                            name + ": " + p.getText() + " is out of range");
                }
                value = p.getLongValue();
            } else if (p.hasToken(JsonToken.VALUE_STRING)) {
                try {
                    value = parse(name, p.getText());
                } catch (IllegalArgumentException e) {
                    throw MismatchedInputException.from(p, boxed,
                            e.getMessage() + " (decimal, 0x hex, or a size such as 64M)");
                }
            } else {
                throw MismatchedInputException.from(p, boxed, name + " needs a number, not " + p.currentToken());
            }
            if (value < min || value > max) {
                throw MismatchedInputException.from(p, boxed,
                        name + ": " + value + " is outside " + min + ".." + max);
            }
            return boxed.cast(switch (boxed.getSimpleName()) {
                case "Long" -> (Object) value;
                case "Integer" -> (int) value;
                case "Short" -> (short) value;
                default -> (byte) value;
            });
        }

        @Override
        public T getNullValue(DeserializationContext ctxt) throws JsonMappingException {
            if (!primitive) {
                return null;
            }
            if (ctxt.isEnabled(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)) {
                ctxt.reportInputMismatch(this, "a number is required, not null (or nothing)");
            }
            return boxed.cast(switch (boxed.getSimpleName()) {
                case "Long" -> (Object) 0L;
                case "Integer" -> 0;
                case "Short" -> (short) 0;
                default -> (byte) 0;
            });
        }
    }
}
