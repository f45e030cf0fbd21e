package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireLength;
import static io.vfiouser.codec.payload.Payloads.requireU16;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.vfiouser.codec.VfioUserCapabilities;
import io.vfiouser.codec.VfioUserProtocolException;
import java.nio.charset.StandardCharsets;

/**
 * {@code VFIO_USER_VERSION} request and reply (spec §2.1):
 *
 * <pre>
 * P+0  u16  major
 * P+2  u16  minor
 * P+4  var  UTF-8 JSON capabilities, NUL-terminated (the NUL is the last payload byte); optional
 * </pre>
 *
 * @param major protocol major version
 * @param minor protocol minor version
 * @param json the capabilities JSON without its NUL, or {@code null} when the payload has none; parse it with
 *     {@link VfioUserCapabilities#parse(String)}
 */
public record VersionPayload(int major, int minor, String json) implements VfioUserPayload {
    /** major and minor. */
    public static final int FIXED_SIZE = 4;

    public VersionPayload {
        requireU16(major, "major");
        requireU16(minor, "minor");
    }

    /** A version payload announcing {@code capabilities}. */
    public static VersionPayload of(int major, int minor, VfioUserCapabilities capabilities) {
        return new VersionPayload(major, minor, capabilities.toJson());
    }

    /** Decodes a request or reply; {@code EINVAL} if shorter than 4 bytes or the JSON is not NUL-terminated. */
    public static VersionPayload decode(ByteBuf in) {
        requireLength(in, FIXED_SIZE, "VERSION");
        int major = in.readUnsignedShortLE();
        int minor = in.readUnsignedShortLE();
        int length = in.readableBytes();
        if (length == 0) {
            return new VersionPayload(major, minor, null);
        }
        if (in.getByte(in.readerIndex() + length - 1) != 0) {
            throw VfioUserProtocolException.invalid("VERSION JSON is not NUL-terminated");
        }
        String json = in.toString(in.readerIndex(), length - 1, StandardCharsets.UTF_8);
        in.skipBytes(length);
        return new VersionPayload(major, minor, json);
    }

    @Override
    public int encodedSize() {
        return FIXED_SIZE + (json == null ? 0 : ByteBufUtil.utf8Bytes(json) + 1);
    }

    @Override
    public void encode(ByteBuf out) {
        out.writeShortLE(major);
        out.writeShortLE(minor);
        if (json != null) {
            ByteBufUtil.writeUtf8(out, json);
            out.writeByte(0);
        }
    }
}
