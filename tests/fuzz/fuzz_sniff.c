/*
 * fuzz_sniff.c — the image sniffer, img_sniff(), on arbitrary leading bytes.
 *
 * Invariants beyond "no crash":
 *  - IMG_SNIFF_BYTES bytes always suffice: the type of the whole input is
 *    the type of its first IMG_SNIFF_BYTES bytes;
 *  - a shorter prefix is IMG_UNKNOWN or already the final type (a prefix
 *    is never conclusive about a type the longer input is not);
 *  - img_mime() names exactly the known types, as "image/...".
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "img/sniff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    img_type t = img_sniff(data, size);
    assert(t >= IMG_UNKNOWN && t <= IMG_TIFF);
    if (size >= IMG_SNIFF_BYTES)
        assert(img_sniff(data, IMG_SNIFF_BYTES) == t);
    for (size_t n = 0; n < size && n < IMG_SNIFF_BYTES; n++) {
        img_type p = img_sniff(data, n);
        assert(p == IMG_UNKNOWN || p == t);
    }
    const char *mime = img_mime(t);
    assert((t == IMG_UNKNOWN) == (mime == NULL));
    assert(mime == NULL || strncmp(mime, "image/", 6) == 0);
    return 0;
}
