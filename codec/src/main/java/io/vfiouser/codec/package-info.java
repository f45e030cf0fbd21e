/**
 * The vfio-user wire protocol on Netty: framing, the typed message model and its decoder and encoder.
 *
 * <p>Inbound pipeline order: {@link io.vfiouser.codec.VfioUserFrameDecoder} (bytes and the transport's
 * {@code ReceivedFds} to frames: a {@code ByteBuf}, or a {@code BytesWithFds} for a frame that carries fds), then
 * {@link io.vfiouser.codec.VfioUserMessageDecoder} (frames to {@link io.vfiouser.codec.VfioUserMessage} or
 * {@link io.vfiouser.codec.VfioUserInvalidMessage}). Outbound, {@link io.vfiouser.codec.VfioUserMessageEncoder}
 * turns messages into {@code ByteBuf}s, or into one {@code BytesWithFds} for a message that carries fds.
 *
 * <p>All integers on the wire are little-endian. Payload layouts live in {@link io.vfiouser.codec.payload}.
 */
package io.vfiouser.codec;
