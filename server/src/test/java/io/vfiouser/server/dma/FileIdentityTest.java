package io.vfiouser.server.dma;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.testing.FdCount;
import org.junit.jupiter.api.Test;

class FileIdentityTest {
    @Test
    void duplicatesNameTheSameFileAndOtherFilesDoNot() throws Exception {
        long before = FdCount.now();
        int a = Linux.memfdCreate("a");
        int sameAsA = Linux.dup(a);
        int b = Linux.memfdCreate("a"); // same name, another file
        try {
            FileIdentity ia = FileIdentity.of(a);
            assertThat(ia.known()).isTrue();
            assertThat(ia.sameFile(FileIdentity.of(sameAsA))).isTrue();
            assertThat(ia.sameFile(FileIdentity.of(b))).isFalse();
            assertThat(ia.sameFile(null)).isFalse();
        } finally {
            FdSet.closeQuietly(a);
            FdSet.closeQuietly(sameAsA);
            FdSet.closeQuietly(b);
        }
        FdCount.awaitAtMost(before);
    }

    @Test
    void anIdentityThatCannotBeReadMatchesNothing() {
        FileIdentity unknown = FileIdentity.of(Integer.MAX_VALUE);
        assertThat(unknown.known()).isFalse();
        assertThat(unknown.sameFile(unknown)).isFalse();
        assertThat(unknown.sameFile(FileIdentity.of(Integer.MAX_VALUE))).isFalse();
    }
}
