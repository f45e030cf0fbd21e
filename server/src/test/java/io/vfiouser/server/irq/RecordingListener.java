package io.vfiouser.server.irq;

import io.vfiouser.device.IrqType;
import java.util.ArrayList;
import java.util.List;

/** Records what the table tells its listener, as readable strings. */
final class RecordingListener implements IrqTable.Listener {
    final List<String> masks = new ArrayList<>();
    final List<String> notifiers = new ArrayList<>();

    @Override
    public void irqMaskChanged(IrqType type, int start, int count, boolean masked) {
        masks.add((masked ? "mask " : "unmask ") + type + " " + start + "+" + count);
    }

    @Override
    public void notifierChanged(IrqType type, int vector, boolean unmask, int oldFd, int newFd) {
        notifiers.add((unmask ? "unmask " : "mask ") + type + " " + vector + ": " + oldFd + " -> " + newFd);
    }

    List<String> takeMasks() {
        List<String> out = List.copyOf(masks);
        masks.clear();
        return out;
    }

    List<String> takeNotifiers() {
        List<String> out = List.copyOf(notifiers);
        notifiers.clear();
        return out;
    }
}
