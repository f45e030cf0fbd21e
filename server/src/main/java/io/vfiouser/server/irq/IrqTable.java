package io.vfiouser.server.irq;

import static io.vfiouser.codec.payload.SetIrqs.ACTION_BITS;
import static io.vfiouser.codec.payload.SetIrqs.ACTION_MASK;
import static io.vfiouser.codec.payload.SetIrqs.ACTION_TRIGGER;
import static io.vfiouser.codec.payload.SetIrqs.ACTION_UNMASK;
import static io.vfiouser.codec.payload.SetIrqs.DATA_BOOL;
import static io.vfiouser.codec.payload.SetIrqs.DATA_EVENTFD;
import static io.vfiouser.codec.payload.SetIrqs.DATA_NONE;
import static io.vfiouser.codec.payload.SetIrqs.DATA_TYPE_BITS;

import io.netty.buffer.ByteBuf;
import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.codec.payload.IrqInfo;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.Interrupts;
import io.vfiouser.device.IrqType;
import io.vfiouser.transport.FdBudget;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.StampedLock;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * The interrupt state of one device towards one client connection: the eventfds the client registered with
 * DEVICE_SET_IRQS (INTx, MSI and MSI-X each have their own table, ERR and REQ one slot each), the masks and
 * pending bits, the emulated MSI-X table and PBA ({@link #msix()}), and the INTx line level.
 *
 * <h2>Threads</h2>
 * DEVICE_SET_IRQS, MSI-X table accesses, the configuration-space setters, {@link #mask}, {@link #reset()} and
 * {@link #clear()} come from the device's event loop. The {@link Interrupts} methods may be called from any
 * thread, concurrently: they take the read side of a {@link StampedLock} (so triggers run in parallel and never
 * race with an eventfd being closed and its number reused), update pending bits and the INTx level atomically,
 * and signal with one {@code write(2)} from a shared native buffer, without allocating (published to the
 * {@code SignalWatchdog} with one volatile write and one compare-and-set, no system call). State changes take the
 * write side. The {@link Listener} is called after the lock is released, on the thread that made the change (except
 * {@link Listener#clientFdTampered}, called by the signalling thread under the read lock). On a tainted device
 * ({@link IrqGuard}) a trigger only hands a duplicate of the eventfd to the device's signalling thread.
 *
 * <h2>Masking model</h2>
 * <ul>
 * <li><b>INTx</b> is a level. {@link #assertIntx()} signals the eventfd when the line goes from low to high and
 * INTx is deliverable: not masked with SET_IRQS MASK, not disabled by the Command register's INTx-disable bit
 * ({@link #setIntxDisabled}), and neither MSI nor MSI-X enabled in configuration space (PCI forbids INTx then).
 * While the line stays high the eventfd is signalled again whenever INTx becomes deliverable again, on every
 * SET_IRQS UNMASK (QEMU's "the guest serviced the interrupt"), and when an eventfd is assigned.</li>
 * <li><b>MSI</b> vectors are masked by the Mask Bits register ({@link #setMsiMask}) or by SET_IRQS MASK (a
 * separate, client-owned mask); a masked vector that fires sets its pending bit ({@link #msiPending()}), and
 * unmasking it fires it once and clears the bit.</li>
 * <li><b>MSI-X</b> vectors are masked by the Mask bit of their Vector Control word in the emulated table (which
 * SET_IRQS MASK/UNMASK also set and clear) or by the Function Mask ({@link #setMsixControl}); a masked vector
 * that fires sets its PBA bit, and unmasking it fires it once and clears the bit. As the PCI spec demands, all
 * vectors are masked after reset. Assigning an eventfd to a vector with SET_IRQS TRIGGER+EVENTFD unmasks it in
 * the table, as a host kernel unmasks a physical vector when VFIO requests its IRQ: QEMU emulates the table
 * itself and never writes ours, so without this its vectors would stay masked for ever.</li>
 * </ul>
 * As on PCI, MSI and MSI-X vectors fire only while their Enable bit in configuration space is set
 * ({@link #setMsiControl}, {@link #setMsixControl}): a function with the bit clear must not send those messages,
 * so a trigger then is dropped and sets no pending bit (the spec gives pending bits only to masked vectors of an
 * enabled function). Pending bits set while enabled stay across a disable and fire when the vector is deliverable
 * again. A vector that fires unmasked without an eventfd is dropped; so is a pending one unmasked without an
 * eventfd. {@link #trigger} consults the Enable bits to pick the type. The loopback of SET_IRQS TRIGGER with
 * DATA_NONE/DATA_BOOL is the client's own request and signals the eventfds as they are.
 *
 * <h2>Eventfds</h2>
 * Every fd of a SET_IRQS must be an eventfd (else EINVAL, nothing changes) and is made non-blocking; a signal to an
 * eventfd whose counter is full is dropped, counted ({@link #signalsDropped()}, and in the device's counters
 * through its {@link IrqGuard}) and logged once per table. A client that makes its eventfd blocking again and fills
 * it holds a signal for at most about 75 ms: the {@code SignalWatchdog} releases it, the listener hears
 * {@link Listener#clientFdTampered} (the connection closes that client), and the device is tainted: its later signals,
 * from any table, are written by a thread of the device's own ({@link IrqGuard}). So a client cannot stop an event
 * loop through its interrupts, and can hold one at most once per device (details in {@code EventFds}).
 *
 * <h2>Notifier eventfds</h2>
 * SET_IRQS MASK+EVENTFD and UNMASK+EVENTFD register, per vector, an eventfd that the <em>client</em> signals to
 * mask or unmask (kernel VFIO semantics). Under KVM, QEMU registers the INTx UNMASK eventfd as its resample fd
 * and signals it at guest EOI. The table only holds these fds ({@link #maskFd}, {@link #unmaskFd},
 * {@link #resampleFd()}) and reports changes with {@link Listener#notifierChanged}; the connection watches them and
 * calls {@link #mask} when one fires (for the resample fd: {@code mask(IrqType.INTX, 0, 1, false)}, which
 * re-signals INTx if the line is still high).
 */
public final class IrqTable implements Interrupts {
    private static final Logger LOG = LogManager.getLogger(IrqTable.class);

    private static final int NO_FD = -1;
    private static final VarHandle INTX_LEVEL;
    private static final VarHandle MSI_PENDING;
    private static final VarHandle DROP_REPORTED;
    private static final VarHandle TAMPER_REPORTED;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            INTX_LEVEL = lookup.findVarHandle(IrqTable.class, "intxLevel", boolean.class);
            MSI_PENDING = lookup.findVarHandle(IrqTable.class, "msiPending", int.class);
            DROP_REPORTED = lookup.findVarHandle(IrqTable.class, "dropReported", boolean.class);
            TAMPER_REPORTED = lookup.findVarHandle(IrqTable.class, "tamperReported", boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** Told of what the client did, so that the server can tell the device (and watch notifier eventfds). */
    @FunctionalInterface
    public interface Listener {
        /**
         * The client masked or unmasked vectors {@code [start, start + count)} of {@code type}: with SET_IRQS
         * MASK/UNMASK (once per request, or once per run of true bytes with DATA_BOOL, whether or not the state
         * changed: an INTx UNMASK means "the guest serviced the line"), through {@link #mask}, by writing the
         * Vector Control word of the MSI-X table, or by assigning an eventfd to a masked MSI-X vector (these three
         * only when the bit changes).
         */
        void irqMaskChanged(IrqType type, int start, int count, boolean masked);

        /**
         * The MASK+EVENTFD ({@code unmask == false}) or UNMASK+EVENTFD notifier of {@code vector} changed from
         * {@code oldFd} to {@code newFd} ({@code -1}: none). Called before {@code oldFd} is closed; the table owns
         * both fds, so a watcher should watch a duplicate ({@code Linux.dup}).
         */
        default void notifierChanged(IrqType type, int vector, boolean unmask, int oldFd, int newFd) {
        }

        /**
         * The client had made the eventfd of {@code vector} of {@code type} blocking again and filled it, so that a
         * signal blocked until the {@code SignalWatchdog} released it: the client broke the fd contract. Called at
         * most once per table, on the thread that signalled, possibly an event loop and <em>under the table's read
         * lock</em>: hand the work off (e.g. {@code Channel.close()}, which only schedules the close) and do not
         * call back into the table.
         */
        default void clientFdTampered(IrqType type, int vector) {
        }
    }

    private final String name;
    private final Listener listener;
    private final IrqGuard guard;
    /** Readers: triggers and queries. Writer: every state change of the event loop. */
    final StampedLock lock = new StampedLock();
    private final int[] counts = new int[IrqType.COUNT];
    private final int[][] triggers = new int[IrqType.COUNT][];
    private final int[][] maskNotifiers = new int[IrqType.COUNT][];
    private final int[][] unmaskNotifiers = new int[IrqType.COUNT][];
    private final MsixTableEmulation msix;
    private final FdBudget fdBudget;
    /** The eventfds counted in {@link #fdBudget} (written under the write lock). */
    private int fdsAccounted;

    // INTx
    @SuppressWarnings("unused") // through INTX_LEVEL
    private volatile boolean intxLevel;
    private boolean intxMasked;
    private boolean intxDisabled;
    // MSI
    private boolean msiEnabled;
    private int msiVectors = 1;
    private int msiConfigMask;
    private int msiIrqMask;
    @SuppressWarnings("unused") // through MSI_PENDING
    private volatile int msiPending;
    // MSI-X
    private boolean msixEnabled;
    private boolean msixFunctionMasked;
    // signals a full (or failed) eventfd did not take
    private final LongAdder signalsDropped = new LongAdder();
    private volatile boolean dropReported;
    private volatile boolean tamperReported;

    /**
     * @param description the device, for its interrupt counts and MSI-X table and PBA placement
     * @param listener    told of mask changes and notifier eventfds; never called under the table's lock
     */
    public IrqTable(DeviceDescription description, Listener listener) {
        this(description, listener, FdBudget.unlimited(), IrqGuard.standalone(description.name()));
    }

    /**
     * @param fdBudget the client's fds, shared with its DMA mappings: the eventfds the table holds count in it,
     *                 and a SET_IRQS that would hold more than it allows fails with EMFILE
     */
    public IrqTable(DeviceDescription description, Listener listener, FdBudget fdBudget) {
        this(description, listener, fdBudget, IrqGuard.standalone(description.name()));
    }

    /**
     * @param guard the device's memory of tampering clients, which outlives this table (one per connection)
     */
    public IrqTable(DeviceDescription description, Listener listener, IrqGuard guard) {
        this(description, listener, FdBudget.unlimited(), guard);
    }

    /**
     * @param description the device, for its interrupt counts and MSI-X table and PBA placement
     * @param listener    told of mask changes, notifier eventfds and tampering; never called under the table's
     *                    lock, except {@link Listener#clientFdTampered}
     * @param fdBudget    the client's fds, shared with its DMA mappings: the eventfds the table holds count in it,
     *                    and a SET_IRQS that would hold more than it allows fails with EMFILE
     * @param guard       the device's memory of tampering clients, which outlives this table (one per connection)
     */
    public IrqTable(DeviceDescription description, Listener listener, FdBudget fdBudget, IrqGuard guard) {
        this.fdBudget = Objects.requireNonNull(fdBudget, "fdBudget");
        this.name = description.name();
        this.listener = Objects.requireNonNull(listener, "listener");
        this.guard = Objects.requireNonNull(guard, "guard");
        for (IrqType t : IrqType.values()) {
            int n = description.irqCount(t);
            counts[t.index()] = n;
            triggers[t.index()] = filled(n);
            maskNotifiers[t.index()] = filled(n);
            unmaskNotifiers[t.index()] = filled(n);
        }
        this.msix = new MsixTableEmulation(this, description.msixCapability().orElse(null));
    }

    private static int[] filled(int n) {
        int[] a = new int[n];
        Arrays.fill(a, NO_FD);
        return a;
    }

    /** The emulated MSI-X table and PBA (covering nothing when the device has no MSI-X capability). */
    public MsixTableEmulation msix() {
        return msix;
    }

    // ------------------------------------------------------------------------------------- DEVICE_GET_IRQ_INFO

    /**
     * The DEVICE_GET_IRQ_INFO reply for {@code index}: EVENTFD for every index, MASKABLE too for INTx, MSI and
     * MSI-X (MASK/UNMASK work there), never NORESIZE (so QEMU enables MSI-X vectors one by one) nor AUTOMASKED;
     * count from the device description.
     *
     * @throws VfioUserProtocolException EINVAL for an index (as u32) of 5 or more
     */
    public IrqInfo irqInfo(int index) {
        if (Integer.compareUnsigned(index, IrqType.COUNT) >= 0) {
            throw VfioUserProtocolException.invalid("DEVICE_GET_IRQ_INFO index " + Integer.toUnsignedString(index));
        }
        int flags = IrqInfo.FLAG_EVENTFD;
        if (maskable(IrqType.of(index))) {
            flags |= IrqInfo.FLAG_MASKABLE;
        }
        return IrqInfo.reply(flags, index, counts[index]);
    }

    private static boolean maskable(IrqType type) {
        return type == IrqType.INTX || type == IrqType.MSI || type == IrqType.MSIX;
    }

    // ----------------------------------------------------------------------------------------- DEVICE_SET_IRQS

    /**
     * Carries out DEVICE_SET_IRQS. Every fd of {@code fds} is either taken into the table or closed before this
     * returns, on every path (the set is closed on the way out).
     *
     * @throws VfioUserProtocolException EINVAL for every request the digest rejects (§3.8, §6.3), checked in
     *                                   libvfio-user's order; then nothing changed
     */
    public void setIrqs(SetIrqs request, FdSet fds) {
        Aftermath aftermath = new Aftermath();
        try {
            validate(request, fds.size());
            admitEventFds(request, fds);
            long stamp = lock.writeLock();
            try {
                reserveFdsLocked(request, fds.size());
                apply(request, fds, aftermath);
            } finally {
                accountFdsLocked();
                lock.unlockWrite(stamp);
            }
        } finally {
            fds.close();
            aftermath.run(listener);
        }
    }

    /**
     * The fd budget: the eventfds this request would add (a slot that holds one already gets a replacement, not
     * one more) must fit, else EMFILE and nothing changes. Only EVENTFD requests with fds add any.
     */
    private void reserveFdsLocked(SetIrqs r, int nfds) {
        accountFdsLocked();
        if (nfds == 0 || r.dataType() != DATA_EVENTFD) {
            return;
        }
        int t = IrqType.of(r.index()).index();
        int[] slots = switch (r.action()) {
            case ACTION_TRIGGER -> triggers[t];
            case ACTION_MASK -> maskNotifiers[t];
            default -> unmaskNotifiers[t];
        };
        int added = 0;
        for (int v = r.start(); v < r.start() + r.count(); v++) {
            added += slots[v] >= 0 ? 0 : 1;
        }
        if (!fdBudget.tryAcquire(added)) {
            throw new VfioUserProtocolException(Errno.EMFILE, "DEVICE_SET_IRQS: " + added + " more eventfds, but the"
                    + " client holds " + fdBudget.held() + " of its " + fdBudget.limit() + " fds already");
        }
        fdsAccounted += added;
    }

    /** Brings the budget in line with the eventfds held now (the paths that drop eventfds are many). */
    private void accountFdsLocked() {
        int held = 0;
        for (int t = 0; t < IrqType.COUNT; t++) {
            held += countFds(triggers[t]) + countFds(maskNotifiers[t]) + countFds(unmaskNotifiers[t]);
        }
        if (held < fdsAccounted) {
            fdBudget.release(fdsAccounted - held);
            fdsAccounted = held;
        }
    }

    private static int countFds(int[] slots) {
        int n = 0;
        for (int fd : slots) {
            n += fd >= 0 ? 1 : 0;
        }
        return n;
    }

    private void validate(SetIrqs r, int nfds) {
        long count = Integer.toUnsignedLong(r.count());
        if (Integer.compareUnsigned(r.index(), IrqType.COUNT) >= 0) {
            throw invalid(r, "index " + Integer.toUnsignedString(r.index()));
        }
        int action = r.flags() & ACTION_BITS;
        if (Integer.bitCount(action) != 1) {
            throw invalid(r, "not exactly one action bit");
        }
        int dataType = r.flags() & DATA_TYPE_BITS;
        if (Integer.bitCount(dataType) != 1) {
            throw invalid(r, "not exactly one data-type bit");
        }
        if ((r.flags() & ~(ACTION_BITS | DATA_TYPE_BITS)) != 0) {
            throw invalid(r, "unknown flag bits");
        }
        IrqType type = IrqType.of(r.index());
        long start = Integer.toUnsignedLong(r.start());
        long vectors = counts[r.index()];
        boolean disable = action == ACTION_TRIGGER && dataType == DATA_NONE && start == 0 && count == 0;
        if (!disable) { // our choice: disabling an index without vectors is accepted (libvfio-user: EINVAL)
            if (start >= vectors) {
                throw invalid(r, "start beyond the " + vectors + " vectors");
            }
            if (start + count > vectors) {
                throw invalid(r, "start + count beyond the " + vectors + " vectors");
            }
        }
        boolean single = type == IrqType.ERR || type == IrqType.REQ;
        if (single && action != ACTION_TRIGGER) {
            throw invalid(r, type + " can only be triggered");
        }
        if (single && count > 1) {
            throw invalid(r, type + " has one vector");
        }
        if (count == 0 && start != 0) {
            throw invalid(r, "count 0 with start " + start);
        }
        if (count == 0 && !(action == ACTION_TRIGGER && dataType == DATA_NONE)) {
            throw invalid(r, "count 0 is only for TRIGGER|NONE (disable)");
        }
        if (nfds > 0 && dataType != DATA_EVENTFD) {
            throw invalid(r, nfds + " fds without DATA_EVENTFD");
        }
        if (nfds > 0 && nfds != count) {
            throw invalid(r, nfds + " fds for " + count + " vectors");
        }
    }

    /**
     * Every fd of a SET_IRQS, trigger or notifier, must be an eventfd: the table writes to triggers on event loops
     * and the connection polls notifiers there, so a pipe, file or socket is EINVAL (a regular file cannot even be
     * polled). Once all are checked, each is made non-blocking (see {@link EventFds}), so that a refused request
     * leaves even the flags of its eventfds as they were. Checked here, once per fd, so that signalling needs no
     * check.
     */
    private void admitEventFds(SetIrqs r, FdSet fds) {
        for (int i = 0; i < fds.size(); i++) {
            String refused = EventFds.check(fds.get(i));
            if (refused != null) {
                throw invalid(r, refused);
            }
        }
        for (int i = 0; i < fds.size(); i++) {
            String refused = EventFds.makeNonBlocking(fds.get(i));
            if (refused != null) {
                throw invalid(r, refused);
            }
        }
    }

    private VfioUserProtocolException invalid(SetIrqs r, String what) {
        LOG.debug("{}: SET_IRQS {} rejected: {}", name, r, what);
        return new VfioUserProtocolException(Errno.EINVAL, "DEVICE_SET_IRQS: " + what);
    }

    private void apply(SetIrqs r, FdSet fds, Aftermath a) {
        IrqType type = IrqType.of(r.index());
        int start = r.start();
        int count = r.count();
        int dataType = r.dataType();
        switch (r.action()) {
            case ACTION_TRIGGER -> {
                if (dataType == DATA_NONE && count == 0) {
                    disableLocked(type, a);
                } else if (dataType == DATA_EVENTFD) {
                    if (fds.isEmpty()) {
                        for (int v = start; v < start + count; v++) {
                            a.retire(triggers[type.index()][v]);
                            triggers[type.index()][v] = NO_FD;
                        }
                    } else {
                        assignLocked(type, start, count, fds, a);
                    }
                } else {
                    // Loopback: signal the eventfds as they are, masks notwithstanding (as libvfio-user does).
                    for (int i = 0; i < count; i++) {
                        if (dataType == DATA_NONE || isTrue(r.data(), i)) {
                            signal(type, start + i, triggers[type.index()][start + i]);
                        }
                    }
                }
            }
            case ACTION_MASK, ACTION_UNMASK -> {
                boolean masked = r.action() == ACTION_MASK;
                if (dataType == DATA_EVENTFD) {
                    int[] table = masked ? maskNotifiers[type.index()] : unmaskNotifiers[type.index()];
                    for (int i = 0; i < count; i++) {
                        int newFd = fds.isEmpty() ? NO_FD : fds.take(i);
                        int oldFd = table[start + i];
                        table[start + i] = newFd;
                        if (oldFd != newFd) {
                            a.notifierChanged(type, start + i, !masked, oldFd, newFd);
                        }
                        a.retire(oldFd);
                    }
                } else if (dataType == DATA_NONE) {
                    maskLocked(type, start, count, masked, a);
                } else {
                    for (int i = 0; i < count; ) {
                        if (!isTrue(r.data(), i)) {
                            i++;
                            continue;
                        }
                        int run = 1;
                        while (i + run < count && isTrue(r.data(), i + run)) {
                            run++;
                        }
                        maskLocked(type, start + i, run, masked, a);
                        i += run;
                    }
                }
            }
            default -> throw new IllegalStateException("validated action " + r.action());
        }
    }

    /** A DATA_BOOL byte counts as true when it is 1 (libvfio-user's test); other values are false. */
    private static boolean isTrue(ByteBuf data, int i) {
        return data.getByte(data.readerIndex() + i) == 1;
    }

    private void assignLocked(IrqType type, int start, int count, FdSet fds, Aftermath a) {
        int[] table = triggers[type.index()];
        for (int i = 0; i < count; i++) {
            int fd = fds.take(i);
            a.retire(table[start + i]);
            table[start + i] = fd;
        }
        switch (type) {
            case INTX -> resignalIntxLocked();
            case MSIX -> {
                int runStart = -1;
                for (int v = start; v < start + count; v++) {
                    if (msix.setMaskedLocked(v, false)) {
                        if (runStart < 0) {
                            runStart = v;
                        }
                    } else if (runStart >= 0) {
                        a.maskChanged(IrqType.MSIX, runStart, v - runStart, false);
                        runStart = -1;
                    }
                    firePendingMsixLocked(v);
                }
                if (runStart >= 0) {
                    a.maskChanged(IrqType.MSIX, runStart, start + count - runStart, false);
                }
            }
            default -> {
                // MSI: pending bits only fire on unmask. ERR, REQ: nothing pends.
            }
        }
    }

    private void disableLocked(IrqType type, Aftermath a) {
        int t = type.index();
        for (int v = 0; v < counts[t]; v++) {
            a.retire(triggers[t][v]);
            triggers[t][v] = NO_FD;
            dropNotifier(type, v, false, a);
            dropNotifier(type, v, true, a);
        }
        // The client-owned masks go with the index, as in kernel VFIO. The MSI-X table is device state: kept.
        if (type == IrqType.INTX) {
            intxMasked = false;
        } else if (type == IrqType.MSI) {
            int before = msiEffectiveMask();
            msiIrqMask = 0;
            firePendingMsiLocked(before & ~msiEffectiveMask());
        }
    }

    private void dropNotifier(IrqType type, int vector, boolean unmask, Aftermath a) {
        int[] table = unmask ? unmaskNotifiers[type.index()] : maskNotifiers[type.index()];
        int old = table[vector];
        if (old >= 0) {
            table[vector] = NO_FD;
            a.notifierChanged(type, vector, unmask, old, NO_FD);
            a.retire(old);
        }
    }

    // ------------------------------------------------------------------------------------------------ masking

    /**
     * Masks or unmasks vectors {@code [start, start + count)} of INTx, MSI or MSI-X exactly as SET_IRQS
     * MASK/UNMASK with DATA_NONE does, listener included: for a connection whose notifier eventfd fired.
     *
     * @throws IllegalArgumentException for ERR, REQ or a range outside the type's vectors
     */
    public void mask(IrqType type, int start, int count, boolean masked) {
        if (!maskable(type) || start < 0 || count < 0 || (long) start + count > counts[type.index()]) {
            throw new IllegalArgumentException("cannot mask " + type + " [" + start + ", +" + count + ")");
        }
        Aftermath aftermath = new Aftermath();
        long stamp = lock.writeLock();
        try {
            maskLocked(type, start, count, masked, aftermath);
        } finally {
            lock.unlockWrite(stamp);
            aftermath.run(listener);
        }
    }

    private void maskLocked(IrqType type, int start, int count, boolean masked, Aftermath a) {
        switch (type) {
            case INTX -> {
                intxMasked = masked;
                if (!masked) {
                    resignalIntxLocked();
                }
            }
            case MSI -> {
                int before = msiEffectiveMask();
                int bits = bits(start, count);
                msiIrqMask = masked ? msiIrqMask | bits : msiIrqMask & ~bits;
                firePendingMsiLocked(before & ~msiEffectiveMask());
            }
            case MSIX -> {
                for (int v = start; v < start + count; v++) {
                    msix.setMaskedLocked(v, masked);
                    if (!masked) {
                        firePendingMsixLocked(v);
                    }
                }
            }
            default -> throw new IllegalArgumentException(type + " has no mask");
        }
        a.maskChanged(type, start, count, masked);
    }

    private static int bits(int start, int count) {
        return (int) (((1L << count) - 1) << start);
    }

    // ----------------------------------------------------------------------------- configuration-space state

    /** The Command register's INTx-disable bit (0x400) changed. */
    public void setIntxDisabled(boolean disabled) {
        long stamp = lock.writeLock();
        try {
            boolean was = intxDeliverableLocked();
            intxDisabled = disabled;
            if (!was) {
                resignalIntxLocked();
            }
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /**
     * The MSI capability's Message Control changed. Enabling fires the pending vectors that are not masked.
     *
     * @param vectors the vectors enabled by Multiple Message Enable (1, 2, 4, ... 32); {@link #trigger} folds
     *                vector numbers into them as a function does with the low bits of its message data
     */
    public void setMsiControl(boolean enabled, int vectors) {
        long stamp = lock.writeLock();
        try {
            boolean was = intxDeliverableLocked();
            boolean wasEnabled = msiEnabled;
            msiEnabled = enabled;
            int capable = Math.max(1, counts[IrqType.MSI.index()]);
            msiVectors = Integer.highestOneBit(Math.max(1, Math.min(vectors, capable)));
            if (enabled && !wasEnabled) {
                firePendingMsiLocked(~msiEffectiveMask());
            }
            if (!was) {
                resignalIntxLocked();
            }
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /**
     * The MSI capability's Mask Bits register changed: vectors whose bit is set hold their interrupts pending;
     * vectors unmasked here (and not masked with SET_IRQS) fire their pending interrupt.
     */
    public void setMsiMask(int mask) {
        long stamp = lock.writeLock();
        try {
            int before = msiEffectiveMask();
            msiConfigMask = mask & bits(0, counts[IrqType.MSI.index()]);
            firePendingMsiLocked(before & ~msiEffectiveMask());
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /** The MSI Pending Bits, for the capability's Pending register (bit n: vector n fired while masked). */
    public int msiPending() {
        return (int) MSI_PENDING.getVolatile(this);
    }

    /**
     * The MSI-X capability's Message Control changed. When the function becomes able to send (enabled, Function
     * Mask clear), the pending vectors that are not masked in the table fire.
     */
    public void setMsixControl(boolean enabled, boolean functionMasked) {
        long stamp = lock.writeLock();
        try {
            boolean was = intxDeliverableLocked();
            boolean wasDeliverable = msixEnabled && !msixFunctionMasked;
            msixEnabled = enabled;
            msixFunctionMasked = functionMasked;
            if (!wasDeliverable && enabled && !functionMasked) {
                for (int v = 0; v < counts[IrqType.MSIX.index()]; v++) {
                    firePendingMsixLocked(v);
                }
            }
            if (!was) {
                resignalIntxLocked();
            }
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    // ---------------------------------------------------------------------------------------------- queries

    /**
     * Signals dropped since the table was made because the client's eventfd was full (it has not read
     * 2^64-2 signals) or the write failed: the interrupt was coalesced with the unread ones.
     */
    public long signalsDropped() {
        return signalsDropped.sum();
    }

    /** Whether the device holds its INTx line high. */
    public boolean intxAsserted() {
        return (boolean) INTX_LEVEL.getVolatile(this);
    }

    /** The MASK+EVENTFD notifier of {@code vector} of {@code type}, still owned by the table, or -1. */
    public int maskFd(IrqType type, int vector) {
        return notifier(maskNotifiers, type, vector);
    }

    /** The UNMASK+EVENTFD notifier of {@code vector} of {@code type}, still owned by the table, or -1. */
    public int unmaskFd(IrqType type, int vector) {
        return notifier(unmaskNotifiers, type, vector);
    }

    /** QEMU's INTx resample eventfd (the INTx UNMASK+EVENTFD notifier), still owned by the table, or -1. */
    public int resampleFd() {
        return unmaskFd(IrqType.INTX, 0);
    }

    private int notifier(int[][] table, IrqType type, int vector) {
        long stamp = lock.readLock();
        try {
            int[] fds = table[type.index()];
            return vector >= 0 && vector < fds.length ? fds[vector] : NO_FD;
        } finally {
            lock.unlockRead(stamp);
        }
    }

    @Override
    public boolean isEnabled(IrqType type, int vector) {
        long stamp = lock.readLock();
        try {
            int[] fds = triggers[type.index()];
            return vector >= 0 && vector < fds.length && fds[vector] >= 0;
        } finally {
            lock.unlockRead(stamp);
        }
    }

    // ---------------------------------------------------------------------------------------------- triggers

    @Override
    public void assertIntx() {
        long stamp = lock.readLock();
        try {
            assertIntxLocked();
        } finally {
            lock.unlockRead(stamp);
        }
    }

    private void assertIntxLocked() {
        if (INTX_LEVEL.compareAndSet(this, false, true) && intxDeliverableLocked()) {
            signalIntxLocked();
        }
    }

    @Override
    public void deassertIntx() {
        INTX_LEVEL.setVolatile(this, false);
    }

    /** Fires MSI vector {@code vector} (0 up to the capability's vector count); dropped while MSI is disabled. */
    @Override
    public void triggerMsi(int vector) {
        Objects.checkIndex(vector, counts[IrqType.MSI.index()]);
        long stamp = lock.readLock();
        try {
            triggerMsiLocked(vector);
        } finally {
            lock.unlockRead(stamp);
        }
    }

    private void triggerMsiLocked(int vector) {
        if (!msiEnabled) {
            return; // PCI: a function whose MSI Enable is clear must not send MSI messages; nothing pends
        }
        int bit = 1 << vector;
        if ((msiEffectiveMask() & bit) != 0) {
            int ignored = (int) MSI_PENDING.getAndBitwiseOr(this, bit);
            return;
        }
        signal(IrqType.MSI, vector, triggers[IrqType.MSI.index()][vector]);
    }

    /**
     * Fires MSI-X vector {@code vector} (0 up to the table size): signalled if MSI-X is enabled and the vector
     * unmasked, pending in the PBA if enabled and masked (by its Mask bit or the Function Mask), dropped if MSI-X
     * is disabled.
     */
    @Override
    public void triggerMsix(int vector) {
        Objects.checkIndex(vector, counts[IrqType.MSIX.index()]);
        long stamp = lock.readLock();
        try {
            triggerMsixLocked(vector);
        } finally {
            lock.unlockRead(stamp);
        }
    }

    private void triggerMsixLocked(int vector) {
        if (!msixEnabled) {
            return; // PCI: a function whose MSI-X Enable is clear must not use MSI-X; nothing pends
        }
        if (msixFunctionMasked || msix.maskedLocked(vector)) {
            msix.setPending(vector);
            return;
        }
        signal(IrqType.MSIX, vector, triggers[IrqType.MSIX.index()][vector]);
    }

    /**
     * Fires {@code vector} on the type the guest enabled in configuration space: MSI-X when its Enable bit is
     * set (the vector must exist in the table), else MSI when its Enable bit is set (any vector ≥ 0, folded into
     * the enabled vectors as a function folds it into the low bits of its message data: {@code vector mod n}),
     * else INTx (asserted and left high for the device to deassert; the vector is ignored).
     *
     * @throws IndexOutOfBoundsException for a negative vector, or one beyond the MSI-X table when MSI-X is chosen
     */
    @Override
    public void trigger(int vector) {
        long stamp = lock.readLock();
        try {
            if (msixEnabled && counts[IrqType.MSIX.index()] > 0) {
                triggerMsixLocked(Objects.checkIndex(vector, counts[IrqType.MSIX.index()]));
            } else if (msiEnabled && counts[IrqType.MSI.index()] > 0) {
                if (vector < 0) {
                    throw new IndexOutOfBoundsException("vector " + vector);
                }
                triggerMsiLocked(vector & (msiVectors - 1));
            } else {
                assertIntxLocked();
            }
        } finally {
            lock.unlockRead(stamp);
        }
    }

    @Override
    public void triggerError() {
        signalSingle(IrqType.ERR);
    }

    @Override
    public void triggerRequest() {
        signalSingle(IrqType.REQ);
    }

    private void signalSingle(IrqType type) {
        long stamp = lock.readLock();
        try {
            int[] fds = triggers[type.index()];
            if (fds.length > 0) {
                signal(type, 0, fds[0]);
            }
        } finally {
            lock.unlockRead(stamp);
        }
    }

    // ------------------------------------------------------------------------------------ under the lock

    private boolean intxDeliverableLocked() {
        return !intxMasked && !intxDisabled && !msiEnabled && !msixEnabled;
    }

    /** Signals INTx if the line is high and deliverable (a no-op without an eventfd). */
    private void resignalIntxLocked() {
        if ((boolean) INTX_LEVEL.getVolatile(this) && intxDeliverableLocked()) {
            signalIntxLocked();
        }
    }

    private void signalIntxLocked() {
        int[] fds = triggers[IrqType.INTX.index()];
        if (fds.length > 0) {
            signal(IrqType.INTX, 0, fds[0]);
        }
    }

    /**
     * Signals {@code fd} (nothing without one). A full eventfd drops the signal: counted, and told once per table,
     * since a client that never reads its eventfd would otherwise fill the log. A signal the watchdog had to release
     * taints the device and is told to the listener once; on a tainted device the signal is handed to the device's
     * own thread instead ({@link IrqGuard}).
     */
    private void signal(IrqType type, int vector, int fd) {
        if (fd < 0) {
            return;
        }
        if (guard.tainted()) {
            guard.submit(type, vector, fd);
            return;
        }
        int result = EventFds.signal(fd);
        if (result == EventFds.SIGNALLED) {
            return;
        }
        if (result == EventFds.TAMPERED) {
            guard.tampered();
            if (!tamperReported && TAMPER_REPORTED.compareAndSet(this, false, true)) {
                try {
                    listener.clientFdTampered(type, vector);
                } catch (RuntimeException e) {
                    LOG.warn("{}: interrupt listener failed on tampering", name, e);
                }
            }
            return;
        }
        signalsDropped.increment();
        guard.dropped();
        if (!dropReported && DROP_REPORTED.compareAndSet(this, false, true)) {
            LOG.warn("{}: {} vector {}: the client's eventfd is full or failed, the signal is dropped (further drops "
                    + "are counted, not logged)", name, type, vector);
        }
    }

    private int msiEffectiveMask() {
        return msiConfigMask | msiIrqMask;
    }

    /** Fires and clears the pending bits among {@code unmasked}, while MSI is enabled. */
    private void firePendingMsiLocked(int unmasked) {
        if (!msiEnabled) {
            return;
        }
        int fire = (int) MSI_PENDING.getAndBitwiseAnd(this, ~unmasked) & unmasked;
        int[] fds = triggers[IrqType.MSI.index()];
        while (fire != 0) {
            int v = Integer.numberOfTrailingZeros(fire);
            fire &= fire - 1;
            signal(IrqType.MSI, v, fds[v]);
        }
    }

    /** If MSI-X vector {@code v} is deliverable (enabled, unmasked) and pending, clears the bit and fires it. */
    void firePendingMsixLocked(int v) {
        if (msixEnabled && !msixFunctionMasked && !msix.maskedLocked(v) && msix.clearPending(v)) {
            signal(IrqType.MSIX, v, triggers[IrqType.MSIX.index()][v]);
        }
    }

    void runAftermath(Aftermath aftermath) {
        aftermath.run(listener);
    }

    // ---------------------------------------------------------------------------------------- migration

    /**
     * The interrupt state that belongs to the device and so migrates with it: the MSI-X table and PBA, the MSI
     * pending bits and the INTx level. What the client set up through VFIO (eventfds, SET_IRQS masks) stays with
     * the client; what configuration space holds (enables, MSI mask) migrates with configuration space.
     */
    public byte[] saveState() {
        long stamp = lock.readLock();
        try {
            java.nio.ByteBuffer out = java.nio.ByteBuffer.allocate(12 + msix.savedSize())
                    .order(java.nio.ByteOrder.LITTLE_ENDIAN);
            out.putInt(msix.vectors());
            out.putInt((int) MSI_PENDING.getVolatile(this));
            out.putInt((boolean) INTX_LEVEL.getVolatile(this) ? 1 : 0);
            msix.saveLocked(out);
            return out.array();
        } finally {
            lock.unlockRead(stamp);
        }
    }

    /**
     * Takes back what {@link #saveState} wrote on the source, then fires what became deliverable (a pending
     * vector the guest unmasked, a raised INTx line), as the source would have.
     *
     * @throws VfioUserProtocolException EINVAL if the state does not fit this device (size, vector count)
     */
    public void restoreState(byte[] state) {
        java.nio.ByteBuffer in = java.nio.ByteBuffer.wrap(state).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        if (state.length != 12 + msix.savedSize() || in.getInt(0) != msix.vectors()) {
            throw new VfioUserProtocolException(io.vfiouser.transport.linux.Errno.EINVAL,
                    "interrupt state of " + state.length + " bytes does not fit " + name);
        }
        long stamp = lock.writeLock();
        try {
            in.position(4);
            MSI_PENDING.setVolatile(this, in.getInt());
            INTX_LEVEL.setVolatile(this, in.getInt() != 0);
            msix.restoreLocked(in);
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /** Fires what is pending and deliverable now (after a restore, once the configuration state is in place). */
    public void firePending() {
        long stamp = lock.readLock();
        try {
            if (msiEnabled) {
                firePendingMsiLocked(~msiEffectiveMask());
            }
            if (msixEnabled) {
                for (int v = 0; v < msix.vectors(); v++) {
                    firePendingMsixLocked(v);
                }
            }
            resignalIntxLocked();
        } finally {
            lock.unlockRead(stamp);
        }
    }

    // ------------------------------------------------------------------------------------- reset and clear

    /**
     * DEVICE_RESET (or FLR): what PCI resets goes back to power-on state; what the client set up through VFIO
     * stays. Reset: the INTx line (low) and INTx-disable bit, MSI enable, enabled vectors, Mask and Pending Bits,
     * MSI-X enable and Function Mask, the MSI-X table (addresses and data 0, every vector masked) and PBA. Kept
     * (libvfio-user keeps them too, and QEMU disables the active type itself before DEVICE_RESET): every eventfd
     * and notifier, and the client's SET_IRQS masks of INTx and MSI. The connection sets the configuration-space
     * state again from its reset configuration space.
     */
    public void reset() {
        long stamp = lock.writeLock();
        try {
            resetDeviceStateLocked();
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    private void resetDeviceStateLocked() {
        INTX_LEVEL.setVolatile(this, false);
        intxDisabled = false;
        msiEnabled = false;
        msiVectors = 1;
        msiConfigMask = 0;
        MSI_PENDING.setVolatile(this, 0);
        msixEnabled = false;
        msixFunctionMasked = false;
        msix.resetLocked();
    }

    /**
     * The client went away: closes every eventfd (triggers and notifiers of every index, ERR, REQ), telling the
     * listener of the notifiers first, and returns every state to power-on, so the table could serve a new
     * client. Triggers that race with it are dropped.
     */
    public void clear() {
        Aftermath aftermath = new Aftermath();
        long stamp = lock.writeLock();
        try {
            for (IrqType type : IrqType.values()) {
                int t = type.index();
                for (int v = 0; v < counts[t]; v++) {
                    aftermath.retire(triggers[t][v]);
                    triggers[t][v] = NO_FD;
                    dropNotifier(type, v, false, aftermath);
                    dropNotifier(type, v, true, aftermath);
                }
            }
            intxMasked = false;
            msiIrqMask = 0;
            resetDeviceStateLocked();
        } finally {
            accountFdsLocked();
            lock.unlockWrite(stamp);
            aftermath.run(listener);
        }
    }

    @Override
    public String toString() {
        return "IrqTable(" + name + ")";
    }
}
