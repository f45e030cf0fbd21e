package io.vfiouser.codec.message;

import io.netty.buffer.ByteBuf;
import io.vfiouser.codec.VfioUserProtocolException;

/** Length and argsz checks shared by the payload decoders; each failure is an {@code EINVAL}. */
final class Payloads {
    /** Largest {@code argsz} accepted where a request's argsz sizes a reply the server builds (1 MiB). */
    static final long MAX_ARGSZ = 1 << 20;

    private Payloads() {
    }

    static void requireLength(ByteBuf payload, long min, String what) {
        if (payload.readableBytes() < min) {
            throw VfioUserProtocolException.invalid(
                    what + " payload of " + payload.readableBytes() + " bytes is shorter than " + min);
        }
    }

    static void requireArgszAtLeast(int argsz, long min, String what) {
        if (Integer.toUnsignedLong(argsz) < min) {
            throw VfioUserProtocolException.invalid(
                    what + " argsz " + Integer.toUnsignedString(argsz) + " is smaller than " + min);
        }
    }

    static void requireArgszAtMost(int argsz, long max, String what) {
        if (Integer.toUnsignedLong(argsz) > max) {
            throw VfioUserProtocolException.invalid(
                    what + " argsz " + Integer.toUnsignedString(argsz) + " is larger than " + max);
        }
    }

    /** Reads {@code length} bytes as an unretained slice, failing unless exactly that many bytes remain. */
    static ByteBuf readExactly(ByteBuf payload, long length, String what) {
        if (payload.readableBytes() != length) {
            throw VfioUserProtocolException.invalid(what + " carries " + payload.readableBytes()
                    + " data bytes but announces " + Long.toUnsignedString(length));
        }
        return payload.readSlice((int) length);
    }

    /** Reads {@code length} bytes as an unretained slice, failing if fewer remain; extra bytes are skipped. */
    static ByteBuf readAtLeast(ByteBuf payload, long length, String what) {
        if (length < 0 || payload.readableBytes() < length) {
            throw VfioUserProtocolException.invalid(what + " carries " + payload.readableBytes()
                    + " data bytes but announces " + Long.toUnsignedString(length));
        }
        ByteBuf data = payload.readSlice((int) length);
        payload.skipBytes(payload.readableBytes());
        return data;
    }

    static void requireDataLength(ByteBuf data, long length, String what) {
        if (data != null && data.readableBytes() != length) {
            throw new IllegalArgumentException(what + " data has " + data.readableBytes()
                    + " bytes but count is " + Long.toUnsignedString(length));
        }
    }

    static void requireU16(int value, String what) {
        if ((value & ~0xFFFF) != 0) {
            throw new IllegalArgumentException(what + " is a u16: " + value);
        }
    }
}
