package io.vfiouser.examples.nvme;

/**
 * The outcome of one command: what goes into its completion queue entry besides the queue bookkeeping.
 *
 * @param status the Status Field ({@link Status})
 * @param result command specific dword 0
 */
record Completion(int status, int result) {
    static final Completion OK = new Completion(Status.SUCCESS, 0);

    static Completion ok(int result) {
        return new Completion(Status.SUCCESS, result);
    }

    static Completion error(int status) {
        return new Completion(status, 0);
    }
}
