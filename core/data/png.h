/* sm_png: the common case of a dataset's PNG (8-bit grey or RGB, already
 * the model's size) decoded by libpng alone. libvips costs 150-350 µs of
 * objects, operation cache and threads around each image, thirty times
 * the decoding of a 28 x 28 digit (docs/PERFORMANCE.md); everything else
 * (other formats, depths, palettes, colour conversions, resizing, and
 * every file libpng has a word to say about) stays with libvips
 * (image.c). */
#ifndef SM_DATA_PNG_H
#define SM_DATA_PNG_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the PNG buf[0..len) into pixels (height x width x channels
 * bytes, interleaved) when it is an 8-bit PNG of exactly width x height
 * whose colour type is grey (channels 1) or RGB (channels 3), with or
 * without alpha (dropped, as preprocessing drops it; so is tRNS): the
 * samples libvips would give. Returns 0 when it did; -1, leaving pixels
 * undefined, when the bytes are anything else or libpng reported an
 * error or a warning: the caller then decodes them with libvips, which
 * words any error. Prints nothing; thread-safe. */
int sm_png_read_u8(const void *buf, size_t len, int width, int height,
                   int channels, uint8_t *pixels);

#endif
