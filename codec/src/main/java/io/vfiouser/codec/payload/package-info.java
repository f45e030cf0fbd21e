/**
 * One record per vfio-user payload layout (spec §2, §3), each with its decoder(s) and encoder.
 *
 * <p>Conventions shared by every payload type:
 * <ul>
 *   <li>All integers are little-endian. u32 fields are Java {@code int}s holding the bit pattern (read them with
 *       {@link java.lang.Integer#toUnsignedLong(int)} where the magnitude matters); u64 fields are {@code long}s.</li>
 *   <li>A static {@code decode} method reads the payload from the reader index of its argument, whose readable
 *       bytes are exactly the payload, and throws {@link io.vfiouser.codec.VfioUserProtocolException}
 *       ({@code EINVAL}) for a payload it cannot parse. It checks only what is decidable from the bytes and needed
 *       to build the record: lengths, the {@code argsz} minimum of fixed structs, and lengths implied by fields.
 *       Flag values, index ranges, fd counts and device state are the dispatcher's to check. Bytes beyond what
 *       the layout needs are ignored.</li>
 *   <li>Variable bytes ({@link io.vfiouser.codec.payload.VfioUserPayload#data()}) are zero-copy slices of the
 *       input and are <em>not</em> retained by {@code decode}; {@link io.vfiouser.codec.VfioUserMessageDecoder}
 *       retains them for the message it builds, and the message releases them.</li>
 * </ul>
 */
package io.vfiouser.codec.payload;
