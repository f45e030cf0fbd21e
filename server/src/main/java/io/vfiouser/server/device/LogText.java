package io.vfiouser.server.device;

/**
 * Client-supplied text made safe for one log line. A client chooses its VERSION JSON and, through the parser's
 * error messages, part of the reasons the server logs; unescaped, a newline would let it forge log lines, and
 * terminal escape sequences would reach whoever reads the log on a console. So every control character, line or
 * paragraph separator, bidirectional or other format character and unpaired surrogate is written as an escape
 * (<code>&#92;n</code>, <code>&#92;r</code>, <code>&#92;t</code>, <code>&#92;xNN</code>,
 * <code>&#92;u{NNNN}</code>), a backslash as two, and the text is cut to a length a log line can carry.
 */
public final class LogText {
    /** The longest client text a log line quotes by default. */
    public static final int DEFAULT_MAX = 256;

    private LogText() {
    }

    /** {@code text} escaped and cut to {@link #DEFAULT_MAX} characters; {@code "null"} for null. */
    public static String escape(String text) {
        return escape(text, DEFAULT_MAX);
    }

    /**
     * {@code text} escaped; if longer than {@code maxLength} characters of output, cut there and followed by how
     * many characters of the input were left out.
     */
    public static String escape(String text, int maxLength) {
        if (text == null) {
            return "null";
        }
        StringBuilder out = new StringBuilder(Math.min(text.length(), maxLength) + 16);
        int i = 0;
        while (i < text.length()) {
            if (out.length() >= maxLength) {
                return out.append("...(").append(text.length() - i).append(" more chars)").toString();
            }
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            switch (cp) {
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (cp < 0x20 || cp >= 0x7f && cp < 0xa0) {
                        out.append("\\x").append(Character.forDigit(cp >> 4, 16))
                                .append(Character.forDigit(cp & 15, 16));
                    } else if (safe(cp)) {
                        out.appendCodePoint(cp);
                    } else {
                        out.append("\\u{").append(Integer.toHexString(cp)).append('}');
                    }
                }
            }
        }
        return out.toString();
    }

    private static boolean safe(int cp) {
        return switch (Character.getType(cp)) {
            case Character.CONTROL, Character.FORMAT, Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR,
                 Character.SURROGATE, Character.PRIVATE_USE, Character.UNASSIGNED -> false;
            default -> true;
        };
    }
}
