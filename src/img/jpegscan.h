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
 * The work is bounded too: a progressive JPEG may repeat a scan over the
 * whole picture any number of times (a "scan bomb": 1,000 repeats of a
 * 40-byte scan cost 3 s of CPU for 7000 × 7000 grey pixels), so a JPEG with
 * more than JPEGSCAN_MAX_SCANS scans is refused, by jpegscan_count_scans
 * from the markers alone before anything is decoded, and by the decoder
 * itself (libjpeg's progress monitor) should the two ever disagree.
 *
 * Used by the image worker (img_vips.c) and its fuzz target; linked with
 * libjpeg.
 */
#ifndef CRMBLOB_IMG_JPEGSCAN_H
#define CRMBLOB_IMG_JPEGSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most scans a JPEG may have. libjpeg writes 10 for a progressive
 * colour picture, 6 for a grey one; optimising encoders a few more. */
#define JPEGSCAN_MAX_SCANS 100

/* The number of scans (SOS markers) of the JPEG in bytes[0, len), counted
 * from its markers without decoding, up to its EOI; counting stops at
 * stop_after + 1. 0 when the bytes do not start with SOI. Linear in len. */
int jpegscan_count_scans(const void *bytes, size_t len, int stop_after);

/* True when the JPEG in fd[0, size) decodes to its end (and has at most
 * JPEGSCAN_MAX_SCANS scans). Reads with pread:
 * the descriptor's offset is not moved. */
bool jpegscan_fd(int fd, int64_t size);

/* The same over bytes in memory. */
bool jpegscan_mem(const void *bytes, size_t len);

#endif
