package io.vfiouser.codec;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

/** Golden bytes written by hand: hex digits, whitespace ignored, {@code #} comments to the end of the line. */
final class Hex {
    private Hex() {
    }

    static byte[] bytes(String hex) {
        StringBuilder digits = new StringBuilder();
        for (String line : hex.split("\n")) {
            int comment = line.indexOf('#');
            digits.append((comment >= 0 ? line.substring(0, comment) : line).replaceAll("\\s+", ""));
        }
        return HexFormat.of().parseHex(digits);
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.writeBytes(part);
        }
        return out.toByteArray();
    }

    static byte[] ascii(String text) {
        return text.getBytes(StandardCharsets.US_ASCII);
    }

    /** The readable bytes of {@code buf}, which is not modified. */
    static byte[] of(ByteBuf buf) {
        return ByteBufUtil.getBytes(buf);
    }

    static String dump(byte[] bytes) {
        return HexFormat.of().formatHex(bytes);
    }
}
