/* libFuzzer target for the .npy reader (core/io/npy.c): the input as a
 * file's bytes to sm_npy_read (through an in-memory file: the reader takes
 * a path). A file it accepts must have the size its header's shape says,
 * so a tensor it returns must be the input's last bytes.
 * `make fuzz` builds it, `make fuzz-run` runs it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/npy.h"
#include "tests/fuzz/memfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0)
        abort();
    sm_err err = {0};
    sm_tensor *t = sm_npy_read(path, &err);
    if (t) {
        /* The data are the file's last numel * 4 bytes. */
        size_t bytes = (size_t)sm_tensor_numel(t) * sizeof(float);
        if (bytes > size) {
            fprintf(stderr, "fuzz_npy: %zu bytes of data in a %zu-byte "
                    "file\n", bytes, size);
            abort();
        }
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (bytes && memcmp(t->data, data + size - bytes, bytes) != 0) {
            fprintf(stderr, "fuzz_npy: the tensor is not the file's data\n");
            abort();
        }
#endif
        sm_tensor_destroy(&t);
    }
    close(fd);
    return 0;
}
