/*
 * fuzz_jpegscan.c — the JPEG data check (jpegscan.h) on arbitrary bytes,
 * from memory (libjpeg's own source) and from a descriptor (crmblob's
 * pread source, its skips and its early end).
 *
 * Invariants beyond "no crash, no leak":
 *  - both sources give the same verdict on the same bytes;
 *  - the descriptor's offset is never moved;
 *  - bytes after the range given are never read: a range that is cut
 *    short of a picture is refused even when the rest of the file would
 *    complete it;
 *  - the scan count from the markers (jpegscan_count_scans) never exceeds
 *    stop_after + 1, and a lower stop gives min(count, stop + 1).
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "img/jpegscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_count(const uint8_t *data, size_t size)
{
    int all = jpegscan_count_scans(data, size, JPEGSCAN_MAX_SCANS);
    assert(all >= 0 && all <= JPEGSCAN_MAX_SCANS + 1);
    for (int stop = 0; stop < 3; stop++) {
        int n = jpegscan_count_scans(data, size, stop);
        assert(n == (all < stop + 1 ? all : stop + 1));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_count(data, size);
    bool from_mem = jpegscan_mem(data, size);
    int fd = memfd_create("fuzz_jpegscan", MFD_CLOEXEC);
    assert(fd >= 0);
    assert(write(fd, data, size) == (ssize_t)size);
    assert(jpegscan_fd(fd, (int64_t)size) == from_mem);
    assert(lseek(fd, 0, SEEK_CUR) == (off_t)size);
    if (size > 0 && !jpegscan_mem(data, size - 1)) /* the range ends one byte early */
        assert(!jpegscan_fd(fd, (int64_t)size - 1));
    close(fd);
    return 0;
}
