/*
 * tiffpages.h — counts the pages of a TIFF from its chain of image file
 * directories (IFDs), without decoding anything.
 *
 * libtiff reaches page n by walking the chain from the first IFD, so a
 * decoder that visits every page of a TIFF does quadratic work: 2,000
 * pages of 8 × 8 pixels cost 9 s to check. The image worker therefore
 * counts the pages first, up to one past its limit, and refuses a TIFF
 * with more than TIFFPAGES_MAX before libtiff sees it.
 *
 * Used by the image worker (img_vips.c) and its fuzz target.
 */
#ifndef CB_IMG_TIFFPAGES_H
#define CB_IMG_TIFFPAGES_H

#include <stddef.h>

/* The most pages a TIFF may have (each page is decoded at upload). */
#define TIFFPAGES_MAX 400

/* The number of IFDs chained from the header of the classic TIFF (either
 * byte order) in bytes[0, len), counting stops at stop_after + 1. The chain
 * ends at a next-IFD offset of 0, at an IFD that does not fit in the bytes,
 * and at an IFD already counted (a loop; libtiff refuses those itself).
 * 0 when the header is not a TIFF's. Work: O(stop_after²) at most. */
int tiffpages_count(const void *bytes, size_t len, int stop_after);

#endif
