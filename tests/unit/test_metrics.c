/* Deletion / insertion: the blur against its definition, and AUCs
 * against a hand-computed model. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "data/image.h"
#include "metrics/deletion.h"
#include "onnx/writer.h"

Test(metrics, blur_of_a_point_is_the_outer_product_of_the_kernel)
{
    sm_err err = {0};
    cr_assert_eq(sm_vips_init(NULL, &err), 0, "%s", err.msg);
    enum { H = 15, W = 17 };
    float x[H * W] = {0}, y[H * W];
    x[7 * W + 3] = 1.0f; /* 3 from the left edge: zeros beyond it */
    cr_assert_eq(sm_deletion_blur(x, 1, H, W, y, &err), 0, "%s", err.msg);
    double k[11], s = 0;
    for (int i = 0; i < 11; i++)
        s += k[i] = exp(-(i - 5.0) * (i - 5.0) / 50.0);
    for (int i = 0; i < 11; i++)
        k[i] /= s;
    for (int r = 0; r < H; r++)
        for (int c = 0; c < W; c++) {
            int dr = r - 7, dc = c - 3;
            double want = abs(dr) <= 5 && abs(dc) <= 5 ? k[dr + 5] * k[dc + 5] : 0;
            cr_assert_float_eq(y[r * W + c], want, 1e-6, "(%d, %d)", r, c);
        }
}

/* A model whose class-0 logit is the sum of the pixels and class-1 logit
 * is 0: p0 = sigmoid(sum). Deletion with the map ranking pixel values. */
Test(metrics, deletion_auc_by_hand)
{
    sm_err err = {0};
    cr_assert_eq(sm_vips_init(NULL, &err), 0, "%s", err.msg);
    sm_tensor *wt = sm_tensor_new(2, (int64_t[]){2, 4});
    for (int i = 0; i < 4; i++)
        wt->data[i] = 1.0f;
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 4, (int64_t[]){-1, 1, 2, 2});
    sm_onnx_writer_initializer(w, "w", wt);
    sm_onnx_writer_node(w, "Flatten", "f", (const char *[]){"x"}, 1,
                        (const char *[]){"v"}, 1);
    sm_onnx_writer_node(w, "Gemm", "g", (const char *[]){"v", "w"}, 2,
                        (const char *[]){"y"}, 1);
    sm_onnx_writer_attr_int(w, "transB", 1);
    sm_onnx_writer_output(w, "y", 2, (int64_t[]){-1, 2});
    size_t len;
    unsigned char *buf = sm_onnx_writer_serialize(w, &len, &err);
    sm_model *m = sm_model_load_buffer(buf, len, "sum.onnx", &err);
    cr_assert_not_null(m, "%s", err.msg);
    free(buf);
    sm_onnx_writer_destroy(&w);
    float x[4] = {0.4f, 0.1f, 0.3f, 0.2f};
    float map[4] = {4, 1, 3, 2};
    sm_model_scoring ctx = {m, 0, 0, 0, 0};
    sm_deletion_result r;
    /* step 1: remove 0.4, 0.3, 0.2, 0.1 in turn */
    cr_assert_eq(sm_deletion_insertion(&ctx, x, 1, 2, 2, map, 0, 1, 3, &r, &err),
                 0, "%s", err.msg);
    double sums[5] = {1.0, 0.6, 0.3, 0.1, 0.0}, s = 0;
    for (int k = 0; k < 5; k++) {
        double p = 1 / (1 + exp(-sums[k]));
        s += (k == 0 || k == 4) ? p / 2 : p;
    }
    cr_assert_float_eq(r.deletion_auc, s / 4, 1e-6);
    cr_assert_eq(r.evals, 10);
    /* a map that ranks the other way deletes the small pixels first:
     * a higher (worse) deletion AUC */
    float worse[4] = {1, 4, 2, 3};
    sm_deletion_result r2;
    cr_assert_eq(sm_deletion_insertion(&ctx, x, 1, 2, 2, worse, 0, 1, 64, &r2, &err), 0);
    cr_assert(r2.deletion_auc > r.deletion_auc);
    cr_assert(r2.insertion_auc < r.insertion_auc);
    sm_tensor_destroy(&wt);
    sm_model_destroy(&m);
}
