package io.vfiouser.transport.testing;

import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import io.netty.util.ResourceLeakDetectorFactory;
import java.lang.ref.ReferenceQueue;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Fails every test after which Netty's leak detector reports a leaked buffer. Registered for all tests through
 * {@code META-INF/services} and JUnit's extension autodetection, so no test can forget it.
 *
 * <p>It installs, before any buffer class is initialised, a {@link ResourceLeakDetectorFactory} whose detectors
 * record reports instead of logging them, and sets the level to PARANOID (every buffer tracked). A self-test at
 * installation leaks one buffer on purpose and refuses to run any test unless that leak is caught, which proves
 * the factory is really in use. After each test it forces a garbage collection, waits until reference processing
 * has run, and allocates a buffer, which makes the detectors report what was collected unreleased.
 */
public final class LeakDetection implements AfterEachCallback {
    private static final ConcurrentLinkedQueue<String> LEAKS = new ConcurrentLinkedQueue<>();
    private static final String SELF_TEST_HINT = "leak-detection self-test";

    static {
        ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.PARANOID);
        ResourceLeakDetectorFactory.setResourceLeakDetectorFactory(new RecordingFactory());
        selfTest();
    }

    @Override
    public void afterEach(ExtensionContext context) {
        assertNoLeaks();
    }

    /** Collects garbage, lets the detectors report, and throws if any leak was reported since the last call. */
    public static void assertNoLeaks() {
        List<String> leaks = collect();
        if (!leaks.isEmpty()) {
            throw new AssertionError(leaks.size() + " leaked buffer(s):\n" + String.join("\n\n", leaks));
        }
    }

    private static List<String> collect() {
        gcAndWaitForReferenceProcessing();
        // Any tracked allocation makes the detector report what the collection found unreleased.
        PooledByteBufAllocator.DEFAULT.directBuffer(1).release();
        List<String> leaks = new ArrayList<>();
        for (String leak; (leak = LEAKS.poll()) != null; ) {
            leaks.add(leak);
        }
        return leaks;
    }

    private static void gcAndWaitForReferenceProcessing() {
        ReferenceQueue<Object> queue = new ReferenceQueue<>();
        WeakReference<Object> sentinel = new WeakReference<>(new Object(), queue);
        for (int i = 0; i < 20; i++) {
            System.gc();
            try {
                if (queue.remove(50) == sentinel) {
                    return;
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
        throw new IllegalStateException("garbage collection did not clear a weak reference");
    }

    private static void selfTest() {
        leakOneBuffer();
        for (int attempt = 0; attempt < 10; attempt++) {
            List<String> leaks = collect();
            if (leaks.stream().anyMatch(leak -> leak.contains(SELF_TEST_HINT))) {
                return;
            }
        }
        throw new IllegalStateException("Netty's leak detector did not report a deliberate leak: the recording "
                + "ResourceLeakDetectorFactory was installed after the buffer classes were initialised");
    }

    private static void leakOneBuffer() {
        // Direct buffers are tracked by every allocator (unpooled heap buffers are not tracked at all).
        UnpooledByteBufAllocator.DEFAULT.directBuffer(8).touch(SELF_TEST_HINT);
    }

    private static final class RecordingFactory extends ResourceLeakDetectorFactory {
        @Override
        @SuppressWarnings("deprecation")
        public <T> ResourceLeakDetector<T> newResourceLeakDetector(Class<T> resource, int samplingInterval,
                long maxActive) {
            return new RecordingDetector<>(resource, samplingInterval);
        }
    }

    private static final class RecordingDetector<T> extends ResourceLeakDetector<T> {
        RecordingDetector(Class<?> resourceType, int samplingInterval) {
            super(resourceType, samplingInterval);
        }

        @Override
        protected boolean needReport() {
            return true;
        }

        @Override
        protected void reportTracedLeak(String resourceType, String records) {
            LEAKS.add("LEAK: " + resourceType + records);
        }

        @Override
        protected void reportUntracedLeak(String resourceType) {
            LEAKS.add("LEAK: " + resourceType + " (untraced)");
        }
    }
}
