/*
 * jpegscan.h — checks that a JPEG's compressed data is whole: every
 * Huffman code of every block of every scan is read with libjpeg, the
 * decoder libvips itself uses for JPEG, but the blocks are turned into
 * pixels at 1/8 scale only, on the calling thread.
 *
 * Truncation and damage live in the entropy-coded data; the inverse DCT,
 * upsampling and colour conversion of full-size pixels cannot fail, and
 * were most of the cost of checking a picture at upload. The verdict is
 * the one libvips' own full decode gave (fail_on=truncated, one thread):
 * a fatal libjpeg error, data that ends before the picture does, or a
 * hundredth warning fail; the odd warning libjpeg recovers from
 * (extraneous bytes before a marker, say) does not.
 *
 * Used by the image worker (img_vips.c) and its fuzz target; linked with
 * libjpeg.
 */
#ifndef CRMBLOB_IMG_JPEGSCAN_H
#define CRMBLOB_IMG_JPEGSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when the JPEG in fd[0, size) decodes to its end. Reads with pread:
 * the descriptor's offset is not moved. */
bool jpegscan_fd(int fd, int64_t size);

/* The same over bytes in memory. */
bool jpegscan_mem(const void *bytes, size_t len);

#endif
