package io.vfiouser.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.VfioUserPayload;
import io.vfiouser.transport.FdSet;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/** Small helpers for tests that talk to a server through {@link VfioUserClient}. */
final class Wire {
    static final long TIMEOUT_S = 20;

    private Wire() {
    }

    /** Sends a command and returns its reply (the caller releases it). */
    static VfioUserMessage send(VfioUserClient client, VfioUserCommand command, VfioUserPayload payload)
            throws Exception {
        return send(client, command, payload, FdSet.EMPTY);
    }

    static VfioUserMessage send(VfioUserClient client, VfioUserCommand command, VfioUserPayload payload, FdSet fds)
            throws Exception {
        return client.send(command, payload, fds).get(TIMEOUT_S, TimeUnit.SECONDS);
    }

    /** Sends a command and returns the errno of its reply, 0 for success. */
    static int errno(VfioUserClient client, VfioUserCommand command, VfioUserPayload payload) throws Exception {
        return errno(client, command, payload, FdSet.EMPTY);
    }

    static int errno(VfioUserClient client, VfioUserCommand command, VfioUserPayload payload, FdSet fds)
            throws Exception {
        VfioUserMessage reply = send(client, command, payload, fds);
        try {
            assertThat(reply.command()).isEqualTo(command);
            if (reply.header().isError()) {
                assertThat(reply.header().messageSize()).as("error replies are header only").isEqualTo(16);
                return reply.header().error();
            }
            return 0;
        } finally {
            reply.release();
        }
    }

    /** Sends a command and checks its successful reply with {@code check}. */
    static void ok(VfioUserClient client, VfioUserCommand command, VfioUserPayload payload,
                   Consumer<VfioUserMessage> check) throws Exception {
        VfioUserMessage reply = send(client, command, payload);
        try {
            assertThat(reply.header().isError()).as("error %d", reply.header().error()).isFalse();
            check.accept(reply);
        } finally {
            reply.release();
        }
    }

    /** A message from raw payload bytes, for payloads the codec would never produce. */
    static ByteBuf raw(int id, int command, int flags, byte... payload) {
        ByteBuf buf = Unpooled.directBuffer(16 + payload.length);
        buf.writeShortLE(id).writeShortLE(command).writeIntLE(16 + payload.length).writeIntLE(flags).writeIntLE(0);
        buf.writeBytes(payload);
        return buf;
    }

    /** Sends raw bytes as a command and returns the errno of the reply (0 for success). */
    static int rawErrno(VfioUserClient client, VfioUserCommand command, byte... payload) throws Exception {
        int id = client.nextId();
        VfioUserMessage reply = client.sendRaw(raw(id, command.code(), 0, payload), FdSet.EMPTY, id)
                .get(TIMEOUT_S, TimeUnit.SECONDS);
        try {
            return reply.header().isError() ? reply.header().error() : 0;
        } finally {
            reply.release();
        }
    }

    /** Little-endian bytes of u32 values. */
    static byte[] u32(int... values) {
        byte[] out = new byte[values.length * 4];
        for (int i = 0; i < values.length; i++) {
            for (int b = 0; b < 4; b++) {
                out[i * 4 + b] = (byte) (values[i] >>> (8 * b));
            }
        }
        return out;
    }
}
