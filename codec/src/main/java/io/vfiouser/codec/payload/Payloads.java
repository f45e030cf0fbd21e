package io.vfiouser.codec.payload;

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

    /**
     * The one place a request's {@code argsz} is checked against its struct: argsz is a u32, read with
     * {@code readUnsignedIntLE} into a long, so 2^31 and above are large values, not negative ones.
     */
    static void requireArgszAtLeast(long argsz, long min, String what) {
        if (argsz < min) {
            throw VfioUserProtocolException.invalid(what + " argsz " + argsz + " is smaller than " + min);
        }
    }

    static void requireArgszAtMost(long argsz, long max, String what) {
        if (argsz > max) {
            throw VfioUserProtocolException.invalid(what + " argsz " + argsz + " is larger than " + max);
        }
    }

    /** For the records' constructors: an {@code argsz} is encoded as a u32. */
    static void requireU32(long value, String what) {
        if ((value & ~0xFFFF_FFFFL) != 0) {
            throw new IllegalArgumentException(what + " is a u32: " + value);
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
