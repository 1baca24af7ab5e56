/* bench/split: one image's Conv layer on one thread, then split by output
 * channels over two (core/util/team.c, run_part in core/ops/op.h), on
 * ResNet-shaped layers from the fixtures' small planes up to ResNet-50's
 * 56 x 56: img/s each way and their ratio, measured in the same run. A
 * layer of fewer than SM_PLAN_SPLIT_TRY_FLOPS runs whole either way (its
 * ratio is then about 1); one below SM_PLAN_SPLIT_FLOPS splits when the
 * plan's trials find it faster (model/exec.h).
 *
 *   build/bench/split
 *
 * Run from the repository root (make bench). */
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "model/model.h"
#include "onnx/writer.h"

typedef struct layer {
    int c, h, k;
} layer;

/* A model of one Conv: c channels in and out, k x k, padded to keep the
 * h x h plane; NULL with the error on stderr. */
static sm_model *conv_model(const layer *l)
{
    sm_tensor *w = sm_tensor_new(4, (int64_t[]){l->c, l->c, l->k, l->k});
    if (!w)
        return NULL;
    for (int64_t i = 0; i < sm_tensor_numel(w); i++)
        w->data[i] = (float)((i * 7) % 11 - 5) * 0.01f;
    sm_onnx_writer *wr = sm_onnx_writer_new(13);
    sm_onnx_writer_input(wr, "x", 4, (int64_t[]){-1, l->c, l->h, l->h});
    sm_onnx_writer_initializer(wr, "w", w);
    sm_onnx_writer_node(wr, "Conv", "conv", (const char *[]){"x", "w"}, 2,
                        (const char *[]){"y"}, 1);
    const int64_t p = l->k / 2;
    sm_onnx_writer_attr_ints(wr, "pads", (int64_t[]){p, p, p, p}, 4);
    sm_onnx_writer_output(wr, "y", 4, (int64_t[]){-1, l->c, l->h, l->h});
    size_t len = 0;
    unsigned char *bytes = sm_onnx_writer_serialize(wr, &len, NULL);
    sm_onnx_writer_destroy(&wr);
    sm_tensor_destroy(&w);
    sm_err err = {0};
    sm_model *m = bytes ? sm_model_load_buffer(bytes, len, "conv", &err) : NULL;
    if (!m)
        fprintf(stderr, "split: %s\n", bytes ? err.msg : "out of memory");
    free(bytes);
    return m;
}

int main(void)
{
    const layer layers[] = {
        {16, 32, 3}, {32, 32, 3}, {64, 16, 3}, {64, 56, 3},
        {128, 28, 3}, {256, 14, 3}, {64, 56, 1},
    };
    printf("one image's Conv, 1 thread against 2 (split by output channels)\n");
    printf("layer                     MFLOP | 1 thread img/s | 2 threads img/s | ratio\n");
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        const layer *l = &layers[i];
        sm_model *m = conv_model(l);
        if (!m)
            return 1;
        const size_t n = (size_t)l->c * l->h * l->h;
        float *x = malloc(n * sizeof *x);
        if (!x)
            return 1;
        for (size_t j = 0; j < n; j++)
            x[j] = (float)(j % 13) * 0.1f;
        bench_fwd u = {m, x, 0};
        double rate[2];
        for (int t = 0; t < 2; t++) {
            sm_model_set_threads(m, t + 1);
            if (bench_forward(&u, 1)) /* plan */
                return 1;
            rate[t] = bench_best_rate(bench_forward, &u, 1);
        }
        const double mflop = 2e-6 * l->c * l->c * l->k * l->k * l->h * l->h;
        printf("%3d -> %3d, %dx%d on %2dx%-2d %9.1f | %14.0f | %15.0f | %5.2f\n",
               l->c, l->c, l->k, l->k, l->h, l->h, mflop, rate[0], rate[1],
               rate[1] / rate[0]);
        free(x);
        sm_model_destroy(&m);
    }
    return 0;
}
