package io.vfiouser.codec;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class VfioUserCommandTest {

    @Test
    void everyCommandHasItsSpecCode() {
        assertThat(Arrays.stream(VfioUserCommand.values()).mapToInt(VfioUserCommand::code))
                .containsExactly(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 18);
        for (VfioUserCommand command : VfioUserCommand.values()) {
            assertThat(VfioUserCommand.fromCode(command.code())).isSameAs(command);
            assertThat(command.requestDecoder()).isNotNull();
            assertThat(command.replyDecoder()).isNotNull();
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 14, 19, 20, 255, 0xFFFF, -1, Integer.MIN_VALUE, Integer.MAX_VALUE})
    void unknownCodesAreNull(int code) {
        assertThat(VfioUserCommand.fromCode(code)).isNull();
    }

    @Test
    void onlyDmaReadAndWriteAreSentByTheServer() {
        assertThat(Arrays.stream(VfioUserCommand.values()).filter(VfioUserCommand::sentByServer))
                .containsExactly(VfioUserCommand.DMA_READ, VfioUserCommand.DMA_WRITE);
    }
}
