/* libFuzzer target for image decoding (core/data/image.c over libvips):
 * the input as an encoded image to sm_image_load_buffer, preprocessed to
 * grey 28 x 28 (inputs of even length) or RGB 8 x 8 (odd length), so that
 * both colour conversions and the resize run. The default preprocessing
 * (scale 1/255, mean 0, std 1) must give values in [0, 1] whatever the
 * image. libvips, libpng and libjpeg are not instrumented: this checks
 * salmap's use of them (header checks, the pixel limit, the untrusted
 * loaders refused, errors rather than grey padding), not the decoders.
 * `make fuzz` builds it, `make fuzz-run` runs it (tests/fuzz/corpus/image:
 * tiny PNGs and JPEGs written by vips). */
#include <stdio.h>
#include <stdlib.h>
#include <vips/vips.h>

#include "data/image.h"

/* libvips warns on stderr about every odd chunk of a broken file; at
 * thousands of inputs a second that costs more than the decoding. */
static void quiet(const gchar *domain, GLogLevelFlags level,
                  const gchar *msg, gpointer data)
{
    (void)domain, (void)level, (void)msg, (void)data;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    sm_err err = {0};
    if (sm_vips_init(argc && *argc ? (*argv)[0] : NULL, &err)) {
        fprintf(stderr, "fuzz_image: %s\n", err.msg);
        abort();
    }
    /* No operation cache (an input's result must not come from an earlier
     * one, and cached images would look like leaks) and one thread. */
    vips_cache_set_max(0);
    vips_concurrency_set(1);
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, quiet, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sm_err err = {0};
    sm_preproc pp;
    if (size % 2 == 0)
        sm_preproc_init(&pp, 1, 28, 28);
    else
        sm_preproc_init(&pp, 3, 8, 8);
    size_t n = (size_t)pp.channels * pp.height * pp.width;
    float *dst = malloc(n * sizeof *dst);
    if (!dst)
        abort();
    if (sm_image_load_buffer(data, size, "fuzz.img", &pp, dst, &err) == 0)
        for (size_t i = 0; i < n; i++)
            if (!(dst[i] >= 0.0f && dst[i] <= 1.0f)) {
                fprintf(stderr, "fuzz_image: value %zu is %g, outside "
                        "[0, 1]\n", i, dst[i]);
                abort();
            }
    free(dst);
    /* libvips caches pixel buffers per thread (GLib thread-private data)
     * until the thread ends; this thread never does, and LeakSanitizer
     * reported such a cache as a leak once in 615,500 inputs. Drop them
     * after each input, as a thread's exit would. */
    vips_thread_shutdown();
    return 0;
}
