package io.vfiouser.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class FdBudgetTest {
    @Test
    void acquiresUpToTheLimitAndNoFurther() {
        FdBudget budget = new FdBudget(3);
        assertThat(budget.tryAcquire(2)).isTrue();
        assertThat(budget.tryAcquire(2)).as("2 + 2 > 3: all or nothing").isFalse();
        assertThat(budget.held()).isEqualTo(2);
        assertThat(budget.tryAcquire(1)).isTrue();
        assertThat(budget.tryAcquire(0)).isTrue();
        assertThat(budget.tryAcquire(1)).isFalse();
        budget.release(2);
        assertThat(budget.tryAcquire(2)).isTrue();
        assertThat(budget.held()).isEqualTo(3);
    }

    @Test
    void releasingMoreThanHeldIsABug() {
        FdBudget budget = new FdBudget(3);
        budget.tryAcquire(1);
        assertThatThrownBy(() -> budget.release(2)).isInstanceOf(IllegalStateException.class);
        assertThat(budget.held()).isEqualTo(1);
    }

    @Test
    void unlimitedTakesWhatAProcessCouldHold() {
        FdBudget budget = FdBudget.unlimited();
        assertThat(budget.tryAcquire(1 << 20)).isTrue();
        assertThat(budget.tryAcquire(1 << 20)).isTrue();
    }
}
