package io.vfiouser.codec;

import static io.vfiouser.codec.payload.PayloadDecoder.NONE;
import static io.vfiouser.codec.payload.PayloadDecoder.of;

import io.vfiouser.codec.payload.DeviceFeature;
import io.vfiouser.codec.payload.DeviceInfo;
import io.vfiouser.codec.payload.DmaAccess;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.codec.payload.DmaUnmapReply;
import io.vfiouser.codec.payload.DmaUnmapRequest;
import io.vfiouser.codec.payload.IrqInfo;
import io.vfiouser.codec.payload.MigData;
import io.vfiouser.codec.payload.MigDataRead;
import io.vfiouser.codec.payload.PayloadDecoder;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.codec.payload.RegionInfo;
import io.vfiouser.codec.payload.RegionInfoRequest;
import io.vfiouser.codec.payload.RegionIoFds;
import io.vfiouser.codec.payload.RegionIoFdsRequest;
import io.vfiouser.codec.payload.RegionWriteMulti;
import io.vfiouser.codec.payload.RegionWriteMultiReply;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.codec.payload.VersionPayload;

/**
 * The vfio-user commands (spec §3.0), each with the decoders of its request and reply payloads. Code 14 (the
 * removed DIRTY_PAGES) and codes 0 and 19 and up are unknown: {@link #fromCode(int)} returns {@code null}.
 */
public enum VfioUserCommand {
    VERSION(1, of(VersionPayload::decode), of(VersionPayload::decode)),
    DMA_MAP(2, of(DmaMapRequest::decode), NONE),
    DMA_UNMAP(3, of(DmaUnmapRequest::decode), of(DmaUnmapReply::decode)),
    DEVICE_GET_INFO(4, of(DeviceInfo::decodeRequest), of(DeviceInfo::decodeReply)),
    DEVICE_GET_REGION_INFO(5, of(RegionInfoRequest::decode), of(RegionInfo::decode)),
    DEVICE_GET_REGION_IO_FDS(6, of(RegionIoFdsRequest::decode), of(RegionIoFds::decode)),
    DEVICE_GET_IRQ_INFO(7, of(IrqInfo::decodeRequest), of(IrqInfo::decodeReply)),
    DEVICE_SET_IRQS(8, of(SetIrqs::decode), NONE),
    REGION_READ(9, of(RegionAccess::decodeReadRequest), of(RegionAccess::decodeReadReply)),
    REGION_WRITE(10, of(RegionAccess::decodeWriteRequest), of(RegionAccess::decodeWriteReply)),
    /** Sent by the server. */
    DMA_READ(11, DmaAccess::decodeReadRequest, DmaAccess::decodeReadReply),
    /** Sent by the server. */
    DMA_WRITE(12, DmaAccess::decodeWriteRequest, DmaAccess::decodeWriteReply),
    DEVICE_RESET(13, NONE, NONE),
    REGION_WRITE_MULTI(15, of(RegionWriteMulti::decode), of(RegionWriteMultiReply::decode)),
    DEVICE_FEATURE(16, of(DeviceFeature::decode), of(DeviceFeature::decode)),
    MIG_DATA_READ(17, of(MigDataRead::decode), of(MigData::decodeReadReply)),
    MIG_DATA_WRITE(18, of(MigData::decodeWriteRequest), NONE);

    private static final VfioUserCommand[] BY_CODE = new VfioUserCommand[19];

    static {
        for (VfioUserCommand command : values()) {
            BY_CODE[command.code] = command;
        }
    }

    private final int code;
    private final PayloadDecoder requestDecoder;
    private final PayloadDecoder replyDecoder;

    VfioUserCommand(int code, PayloadDecoder requestDecoder, PayloadDecoder replyDecoder) {
        this.code = code;
        this.requestDecoder = requestDecoder;
        this.replyDecoder = replyDecoder;
    }

    /** The command for {@code code}, or {@code null} for an unknown code. */
    public static VfioUserCommand fromCode(int code) {
        return code >= 0 && code < BY_CODE.length ? BY_CODE[code] : null;
    }

    /** The command code on the wire. */
    public int code() {
        return code;
    }

    /** Whether the server sends this command to the client ({@code DMA_READ}, {@code DMA_WRITE}). */
    public boolean sentByServer() {
        return this == DMA_READ || this == DMA_WRITE;
    }

    /** Decodes the payload of this command's requests. */
    public PayloadDecoder requestDecoder() {
        return requestDecoder;
    }

    /** Decodes the payload of this command's successful replies. */
    public PayloadDecoder replyDecoder() {
        return replyDecoder;
    }
}
