/* For the fuzz targets whose reader takes only a path (.npy, the AAE's
 * YAML): the input as an anonymous in-memory file (memfd) named by a
 * /proc/self/fd path, so that fuzzing writes nothing to disk. */
#ifndef SM_FUZZ_MEMFILE_H
#define SM_FUZZ_MEMFILE_H

#include <stddef.h>
#include <stdint.h>

/* A new memfd holding data[0..size), and its path into path (cap bytes).
 * The fd (close it when done), or -1 after printing why. */
int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t cap);

#endif
