/*
 * fuzz_tiffpages.c — the TIFF page count (tiffpages.h) on arbitrary bytes.
 *
 * Invariants beyond "no crash, no leak, no read outside the bytes":
 *  - the count never exceeds stop_after + 1;
 *  - counting is a prefix walk: a lower stop gives min(count, stop + 1);
 *  - bytes after the chain's last IFD do not change the count, and cutting
 *    the bytes never makes it larger.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "img/tiffpages.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int min_i(int a, int b)
{
    return a < b ? a : b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int all = tiffpages_count(data, size, TIFFPAGES_MAX);
    assert(all >= 0 && all <= TIFFPAGES_MAX + 1);
    for (int stop = 0; stop < 4; stop++)
        assert(tiffpages_count(data, size, stop) == min_i(all, stop + 1));
    if (size > 0)
        assert(tiffpages_count(data, size - 1, TIFFPAGES_MAX) <= all);
    uint8_t *more = malloc(size + 16);
    assert(more != NULL);
    memcpy(more, data, size);
    memset(more + size, 0xAB, 16);
    assert(tiffpages_count(more, size + 16, TIFFPAGES_MAX) >= all);
    free(more);
    return 0;
}
