/* Extremal perturbation on tiny linear models: the mask meets its area;
 * on a model that looks at one block only, the preserve mask lies on that
 * block; the objective's gradient with respect to the grid parameters
 * (engine backward, then the chain rule through the blend and the smooth
 * max) matches central differences; maps are deterministic and do not
 * depend on the batch; bad parameters are refused by name. Few iterations
 * and 8x8 images keep it fast. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "explain/explainer.h"
#include "explain/extremal.h"
#include "tmodel.h"
#include "util/rng.h"

#define K 2
#define BLOCK 4 /* the block model looks at rows, columns < BLOCK */


static void start_vips(void)
{
    sm_err err = {0};
    cr_assert_eq(sm_vips_init("salmap-tests", &err), 0, "%s", err.msg);
}

TestSuite(extremal, .init = start_vips);

/* logits = W flatten(x), x [N, c, h, w], K classes. block: class 0's
 * weights are 50 on the top-left BLOCK x BLOCK pixels and 0 elsewhere (large
 * enough for the reward to hold its own against the area penalty, whose
 * per-pixel weight 2 lambda / HW is large on a 64-pixel image); otherwise
 * Gaussian weights. */
static sm_model *linear_model(int c, int h, int w, int block)
{
    int d = c * h * w;
    sm_tensor *wt = sm_tensor_new(2, (int64_t[]){K, d});
    sm_tensor *b = sm_tensor_new(1, (int64_t[]){K});
    for (int i = 0; i < K * d; i++) {
        int e = i % d, y = e / w % h, x = e % w;
        wt->data[i] = block ? (i < d && y < BLOCK && x < BLOCK ? 50.0f : 0.0f)
                            : (float)sm_rng_normal(7, (uint64_t)i);
    }
    b->data[0] = b->data[1] = 0;
    sm_model *m = tmodel_linear(wt, b, c, h, w);
    sm_tensor_destroy(&wt);
    sm_tensor_destroy(&b);
    return m;
}

static const char *const ids[] = {"a", "b", "c", "d"};

/* Runs extremal with "key=value" settings (NULL-ended) on x into maps
 * (N x H x W); sm_explainer_run's result, the message in err. */
static int explain(const char *const *set, sm_model *m, const sm_tensor *x,
                   const int *target, float *maps, sm_explain_out *out,
                   sm_err *err)
{
    sm_explain_ctx ctx = {m, 0, 0, 0, 42, NULL, 0, NULL};
    return tmodel_explain("extremal", set, &ctx, x, target, ids, maps, out, err);
}

static const char *const tiny[] = {"iterations=300", "step=2", "sigma=2",
                                   "blur_sigma=2", "area=0.25", NULL};

Test(extremal, mask_meets_its_area)
{
    sm_model *m = linear_model(1, 8, 8, 0);
    sm_tensor *x = tmodel_images(2, 1, 8, 8, 3);
    int target[2] = {0, 1};
    float maps[2 * 64];
    sm_explain_out out[2] = {0};
    sm_err err = {0};
    for (int v = 0; v < 2; v++) {
        const char *set[] = {"iterations=300", "step=2", "sigma=2",
                             "blur_sigma=2", "area=0.25",
                             v ? "variant=delete" : "variant=preserve", NULL};
        cr_assert_eq(explain(set, m, x, target, maps, out, &err), 0, "%s",
                     err.msg);
        for (int i = 0; i < 2; i++) {
            double area = 0;
            for (int q = 0; q < 64; q++) {
                cr_assert(maps[i * 64 + q] >= 0 && maps[i * 64 + q] <= 1);
                area += maps[i * 64 + q] / 64.0;
            }
            cr_assert_lt(fabs(area - 0.25), 0.05, "variant %d image %d: "
                         "area %g", v, i, area);
            cr_assert_eq(out[i].evals, 301);
            cr_assert(strstr(sm_record_json(&out[i].record), "\"iterations\": 300"));
        }
    }
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 2);
}

/* Bright block on a dark background: blurring lowers the block, so the
 * block model's score is kept by keeping the block. */
Test(extremal, preserve_mask_finds_the_block)
{
    sm_model *m = linear_model(1, 8, 8, 1);
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){1, 1, 8, 8});
    for (int q = 0; q < 64; q++)
        x->data[q] = q / 8 < BLOCK && q % 8 < BLOCK ? 1.0f : 0.0f;
    int target[1] = {0};
    float map[64];
    sm_explain_out out[1] = {0};
    sm_err err = {0};
    cr_assert_eq(explain(tiny, m, x, target, map, out, &err), 0, "%s", err.msg);
    double in = 0, outside = 0;
    for (int q = 0; q < 64; q++) {
        if (q / 8 < BLOCK && q % 8 < BLOCK)
            in += map[q] / 16.0;
        else
            outside += map[q] / 48.0;
    }
    cr_assert_gt(in, 0.9, "mean mask on the block %g", in);
    /* the smooth mask spills past the block edge (sigma 2) */
    cr_assert_lt(outside, 0.15, "mean mask off the block %g", outside);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 1);
}

/* Central differences of the objective, both variants, on a 2-channel 5x6
 * image with a 3x3 grid (step 2) and a non-integer sigma. The objective is
 * evaluated in float32, so a difference quotient carries its rounding
 * divided by the step: with a step of 1e-3 the truncation error (h^2/6
 * times the third derivative) is below 1e-6, and the rounding of each
 * evaluation is allowed 16 ulps of its magnitude (2^-20 |L|; measured
 * about 6 with OpenBLAS's kernels before the engine had its own GEMM).
 * The gradient must then agree to 0.1% beyond that. */
Test(extremal, gradient_matches_finite_differences)
{
    enum { C = 2, H = 5, W = 6, NP = 9 };
    sm_model *m = linear_model(C, H, W, 0);
    sm_tensor *x = tmodel_images(1, C, H, W, 5);
    int target[1] = {1};
    sm_explain_batch b = {x, target, ids};
    sm_explain_ctx ctx = {m, 0, 0, 0, 42, NULL, 0, NULL};
    sm_err err = {0};
    double p[NP], dp[NP], dummy[NP], lp, lm, l0;
    for (int k = 0; k < NP; k++)
        p[k] = 0.1 + 0.8 * sm_rng_uniform(9, (uint64_t)k);
    for (int v = 0; v < 2; v++) {
        cr_assert_eq(sm_extremal_objective(&ctx, &b, v, 0.3, 2, 1.5, 1.0, 300,
                                           p, &l0, dp, &err), 0, "%s", err.msg);
        for (int k = 0; k < NP; k++) {
            const double eps = 1e-3;
            double save = p[k];
            p[k] = save + eps;
            sm_extremal_objective(&ctx, &b, v, 0.3, 2, 1.5, 1.0, 300, p, &lp,
                                  dummy, &err);
            p[k] = save - eps;
            sm_extremal_objective(&ctx, &b, v, 0.3, 2, 1.5, 1.0, 300, p, &lm,
                                  dummy, &err);
            p[k] = save;
            double fd = (lp - lm) / (2 * eps);
            double rounding = ldexp(1.0 + fmax(fabs(lp), fabs(lm)), -20) / eps;
            cr_assert_lt(fabs(fd - dp[k]), 1e-3 * (1 + fabs(fd)) + rounding,
                         "variant %d parameter %d: analytic %.9g, central "
                         "difference %.9g", v, k, dp[k], fd);
        }
    }
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

Test(extremal, deterministic_and_batch_independent)
{
    sm_model *m = linear_model(1, 8, 8, 0);
    sm_tensor *x = tmodel_images(3, 1, 8, 8, 4);
    sm_tensor *x1 = sm_tensor_new(4, (int64_t[]){1, 1, 8, 8});
    memcpy(x1->data, x->data + 64, sizeof(float) * 64);
    int target[3] = {0, 1, 0};
    const char *set[] = {"iterations=100", "step=2", "sigma=2",
                         "blur_sigma=2", NULL};
    float a[3 * 64], b[3 * 64], one[64];
    sm_explain_out out[3] = {0};
    sm_err err = {0};
    cr_assert_eq(explain(set, m, x, target, a, out, &err), 0, "%s", err.msg);
    cr_assert_eq(explain(set, m, x, target, b, out, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(a, b, sizeof a), 0, "two runs differ");
    cr_assert_eq(explain(set, m, x1, target + 1, one, out, &err), 0, "%s",
                 err.msg);
    for (int q = 0; q < 64; q++)
        cr_assert_lt(fabsf(one[q] - a[64 + q]), 1e-6f, "pixel %d: alone %g, "
                     "in a batch %g", q, one[q], a[64 + q]);
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&x1);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 3);
}

Test(extremal, bad_parameters_refused_by_name)
{
    sm_model *m = linear_model(1, 8, 8, 0);
    sm_tensor *x = tmodel_images(1, 1, 8, 8, 3);
    int target[1] = {0};
    float map[64];
    sm_explain_out out[1] = {0};
    static const struct {
        const char *set, *want;
    } bad[] = {
        {"area=0", "extremal.area: '0'"},
        {"area=1", "extremal.area: '1'"},
        {"area=1.5", "extremal.area: '1.5'"},
        {"area=-0.1", "extremal.area: '-0.1'"},
        {"iterations=0", "extremal.iterations: '0'"},
        {"variant=dual", "extremal.variant: 'dual'"},
        {"step=0", "extremal.step: '0'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sm_err err = {0};
        const char *set[] = {bad[i].set, NULL};
        cr_assert_neq(explain(set, m, x, target, map, out, &err), 0, "%s "
                      "accepted", bad[i].set);
        cr_assert(strstr(err.msg, bad[i].want), "%s: message '%s'",
                  bad[i].set, err.msg);
    }
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 1);
}

/* TorchRay's defaults (step 7, sigma 21, blur 20) on an MNIST-sized image,
 * where the blur kernel is wider than the image: a 4x4 grid, a mask in
 * [0, 1], the extras recorded. */
Test(extremal, defaults_on_28x28)
{
    sm_model *m = linear_model(1, 28, 28, 0);
    sm_tensor *x = tmodel_images(1, 1, 28, 28, 6);
    int target[1] = {0};
    float map[28 * 28];
    sm_explain_out out[1] = {0};
    sm_err err = {0};
    const char *set[] = {"iterations=3", NULL};
    cr_assert_eq(explain(set, m, x, target, map, out, &err), 0, "%s", err.msg);
    for (int q = 0; q < 28 * 28; q++)
        cr_assert(map[q] >= 0 && map[q] <= 1, "pixel %d: %g", q, map[q]);
    cr_assert(strstr(sm_record_json(&out[0].record), "\"grid\": [4, 4]"), "%s", sm_record_json(&out[0].record));
    cr_assert(strstr(sm_record_json(&out[0].record), "\"variant\": \"preserve\""), "%s",
              sm_record_json(&out[0].record));
    cr_assert_eq(out[0].evals, 4);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 1);
}
