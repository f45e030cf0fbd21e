/*
 * bar-read: times N 4-byte reads of one register of a PCI memory BAR from inside the guest.
 *   bar-read /sys/bus/pci/devices/XXXX/resourceN OFFSET COUNT
 * Prints "reads=COUNT ns=TOTAL ns_per_read=X". The BAR is mmapped through sysfs; every read is an MMIO exit.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s RESOURCE OFFSET COUNT\n", argv[0]);
        return 2;
    }
    long offset = strtol(argv[2], NULL, 0);
    long count = strtol(argv[3], NULL, 0);
    int fd = open(argv[1], O_RDWR | O_SYNC);
    if (fd < 0) {
        perror("open");
        return 1;
    }
    long page = sysconf(_SC_PAGESIZE);
    long base = offset & ~(page - 1);
    volatile uint8_t *map = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, base);
    if (map == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    volatile uint32_t *reg = (volatile uint32_t *) (map + (offset - base));
    uint32_t sink = 0;
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < count; i++) {
        sink ^= *reg;
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    long long ns = (end.tv_sec - start.tv_sec) * 1000000000LL + (end.tv_nsec - start.tv_nsec);
    printf("reads=%ld ns=%lld ns_per_read=%lld sink=%u\n", count, ns, count ? ns / count : 0, sink);
    return 0;
}
