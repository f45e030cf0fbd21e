package io.vfiouser.device;

import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;

/**
 * The behaviour of a device: what runs when a client touches it. The framework calls these methods one command
 * at a time per device, in the order the client's commands arrived, and never from two threads at once; a method
 * may complete its future later, from any thread, and the next command waits for it. Methods that may block
 * must not block the calling thread: return a future and finish elsewhere.
 *
 * <p>Only {@link #regionRead} and {@link #regionWrite} must be written; everything else has a default. The
 * framework serves the configuration space, memory-backed regions and the MSI-X table and PBA itself.
 *
 * <h2>Failures and errnos</h2>
 * A method that serves a client's command (region accesses, {@link #reset}, {@link #quiesce}, the
 * {@link VfioUserMigration} methods) fails it by throwing or by completing its future exceptionally; the client
 * gets an error reply whose errno the exception decides ({@code CompletionException} and
 * {@code ExecutionException} are looked through to their cause):
 *
 * <table>
 * <caption>The errno of a device's failure</caption>
 * <tr><th>exception</th><th>errno</th></tr>
 * <tr><td>{@link DmaException}</td><td>its {@link DmaException#errno()} (EFAULT, EACCES, EIO)</td></tr>
 * <tr><td>{@code io.vfiouser.transport.linux.ErrnoException} (a failed system call)</td><td>its errno</td></tr>
 * <tr><td>{@code io.vfiouser.codec.VfioUserProtocolException}</td><td>its errno</td></tr>
 * <tr><td>{@link IllegalArgumentException}, {@link IndexOutOfBoundsException}</td><td>EINVAL</td></tr>
 * <tr><td>{@link UnsupportedOperationException}</td><td>ENOTSUP</td></tr>
 * <tr><td>{@code java.nio.channels.ClosedChannelException}</td><td>ENOTCONN</td></tr>
 * <tr><td>{@code java.util.concurrent.TimeoutException}</td><td>ETIMEDOUT</td></tr>
 * <tr><td>anything else</td><td>EIO</td></tr>
 * </table>
 *
 * The first three are expected answers and logged at debug; anything else counts as a bug in the device and is
 * logged as a warning with its stack trace (rate-limited per device). To give a client a particular errno, throw a
 * {@link DmaException} with it. Callbacks that answer no command ({@link #attached}, {@link #detached},
 * {@link #dmaMapped} and the other notifications) should not throw.
 */
public interface VfioUserDevice {

    /** A completed future, for handlers that finish at once. */
    CompletableFuture<Void> DONE = CompletableFuture.completedFuture(null);

    /**
     * Reads {@code dst.remaining()} bytes at {@code offset} of region {@code region} into {@code dst}
     * (little-endian, position to limit). BAR accesses from QEMU are 1, 2, 4 or 8 bytes.
     *
     * <p>{@code dst} belongs to the device only until the returned future completes: the server reuses buffers
     * for small accesses, so keep no reference to it afterwards. Returning {@link #DONE} (or any completed future)
     * lets the server answer on its shortest path, without creating an object per access.
     */
    CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst);

    /**
     * Writes {@code src.remaining()} bytes (little-endian, read-only buffer) at {@code offset} of region
     * {@code region}. As for {@link #regionRead}, {@code src} is only the device's until the future completes.
     */
    CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src);

    /**
     * The file behind region {@code region}'s shared memory, for a region the description marks
     * {@link Region.Backing#DEVICE device-backed}: called once per such region when the device is hosted, before
     * any client connects, in increasing region order. The server takes the returned fd, checks it and closes it
     * exactly once (see {@link RegionBacking}); if this method throws, hosting fails and the fds already handed
     * over for other regions are closed.
     */
    default RegionBacking regionBacking(int region) {
        throw new UnsupportedOperationException("region " + region + " is device-backed, but the device "
                + getClass().getName() + " does not implement regionBacking");
    }

    /** A client negotiated; {@code context} (DMA, interrupts, log) stays valid until {@link #detached()}. */
    default void attached(DeviceContext context) {
    }

    /** The client left: its DMA mappings and interrupt eventfds are gone already. */
    default void detached() {
    }

    /** Resets the device to its power-on state. */
    default CompletableFuture<Void> reset(ResetReason reason) {
        return DONE;
    }

    /**
     * Stops the device from starting new DMA and completes when accesses in flight have finished. Called before
     * DMA mappings change, before reset and before a migration stops the device; the device resumes by itself when
     * the next command reaches it, except after a migration stop, where it stays stopped until told to run again
     * ({@link VfioUserMigration#migrationStateChanged}).
     */
    default CompletableFuture<Void> quiesce() {
        return DONE;
    }

    /** The client mapped guest memory (informational; reach it through {@link DeviceContext#dma()}). */
    default void dmaMapped(DmaRange range) {
    }

    /** The client unmapped guest memory; no access to it is in flight any more. */
    default void dmaUnmapped(DmaRange range) {
    }

    /** The client masked or unmasked vectors of an interrupt type (INTx unmask: the guest serviced the line). */
    default void irqMaskChanged(IrqType type, int start, int count, boolean masked) {
    }

    /** A doorbell eventfd handed out for {@code ioEventFd} fired {@code count} times. */
    default void ioEventFdSignalled(IoEventFd ioEventFd, long count) {
    }

    /** The client wrote {@code length} bytes of configuration space at {@code offset} (after the framework did). */
    default void configWritten(int offset, int length) {
    }
}
