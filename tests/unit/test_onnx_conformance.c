/* ONNX conformance: the ONNX project's own node tests (Debian package
 * libonnx-testdata), run through the whole engine.
 *
 * Selection: every case under NODE_DIR whose nodes are all operators salmap
 * supports, whose graph inputs are float32 or int64 tensors (int64 ones are
 * fixed with sm_model_set_constant: shapes, pads) and whose outputs are
 * float32 tensors. Each selected case is one parameterized test; a case
 * passes when every element of every output of every test_data_set_N
 * satisfies |got - want| <= 1e-4 * max(1, |want|) (NaN must match NaN, an
 * infinity the same infinity) and the shapes are equal. docs/ONNX.md states
 * the same criterion.
 *
 * Deliberate exceptions are listed once, in `exceptions` below (docs/ONNX.md
 * repeats them): a REFUSED case must be refused with a message at load or
 * run time (it exercises a refusal), a SKIPPED one is not run. The test
 * `conformance.selection` checks that enough cases run and that every listed
 * exception is a real, selected case. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "onnx/proto.h"
#include "onnx/tensorproto.h"
#include "ops/op.h"
#include "util/file.h"

#define NODE_DIR "/usr/share/libonnx-testdata/data/node"
#define TOLERANCE 1e-4
/* The selection compared 134 cases of ONNX 1.12's node tests when this was
 * written; a lower count means the filter or the operator set regressed. */
#define MIN_CASES 130

typedef enum { REFUSED, SKIPPED } exception_kind;

typedef struct exception {
    const char *name;
    exception_kind kind;
    const char *reason;
    const char *needle; /* REFUSED: the refusal message must contain it */
} exception;

static const exception exceptions[] = {
    {"test_batchnorm_epsilon_training_mode", REFUSED,
     "training_mode = 1 (batch statistics, running-mean outputs): salmap "
     "runs inference only", "training_mode"},
    {"test_batchnorm_example_training_mode", REFUSED,
     "training_mode = 1 (batch statistics, running-mean outputs): salmap "
     "runs inference only", "training_mode"},
    {"test_reshape_allowzero_reordered", REFUSED,
     "its tensors are empty (a zero dim), which salmap refuses", "is zero"},
};
#define N_EXCEPTIONS (sizeof exceptions / sizeof exceptions[0])

static const exception *find_exception(const char *name)
{
    for (size_t i = 0; i < N_EXCEPTIONS; i++)
        if (strcmp(exceptions[i].name, name) == 0)
            return &exceptions[i];
    return NULL;
}

/* --- selection ------------------------------------------------------------ */

static Onnx__ModelProto *read_proto(const char *cname)
{
    char path[512];
    size_t len;
    snprintf(path, sizeof path, "%s/%s/model.onnx", NODE_DIR, cname);
    unsigned char *buf = sm_file_read(path, SM_FILE_MAX_MODEL, &len, NULL);
    if (!buf)
        return NULL;
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    return mp;
}

static int is_initializer(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && strcmp(g->initializer[i]->name, name) == 0)
            return 1;
    return 0;
}

/* Element type of a tensor-typed value, or -1 (sequence, optional, ...). */
static int elem_type(const Onnx__ValueInfoProto *v)
{
    if (!v->type || v->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return -1;
    return v->type->tensor_type->elem_type;
}

static int selected(const Onnx__ModelProto *mp)
{
    const Onnx__GraphProto *g = mp->graph;
    if (!g || g->n_output == 0)
        return 0;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx") != 0)
            return 0;
        if (!n->op_type || !sm_op_find(n->op_type))
            return 0;
    }
    for (size_t i = 0; i < g->n_input; i++) {
        int t = elem_type(g->input[i]);
        if (!is_initializer(g, g->input[i]->name) &&
            t != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
            t != ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
            return 0;
    }
    for (size_t i = 0; i < g->n_output; i++)
        if (elem_type(g->output[i]) != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
            return 0;
    return 1;
}

static int case_selected(const char *cname)
{
    Onnx__ModelProto *mp = read_proto(cname);
    if (!mp)
        return 0;
    int ok = selected(mp);
    onnx__model_proto__free_unpacked(mp, NULL);
    return ok;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every case folder, sorted; *n set. Caller frees each and the array. */
static char **list_cases(size_t *n)
{
    DIR *d = opendir(NODE_DIR);
    char **names = NULL;
    size_t cap = 0;
    *n = 0;
    if (!d)
        return NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "test_", 5) != 0)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 1024;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn)
                break;
            names = nn;
        }
        names[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (*n)
        qsort(names, *n, sizeof *names, cmp_str);
    return names;
}

static void free_cases(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* --- one case --------------------------------------------------------------- */

typedef struct conf_case {
    char name[128];
} conf_case;

/* Runs data set `set` of the case. Returns 0 when it ran (and was compared
 * with cr_assert), or -1 with the engine's message in err. */
static int run_set(const char *cname, const Onnx__GraphProto *g,
                   const char *set, sm_err *err)
{
    char path[768], mpath[512];
    snprintf(mpath, sizeof mpath, "%s/%s/model.onnx", NODE_DIR, cname);
    sm_model *m = sm_model_load_file(mpath, err);
    if (!m)
        return -1;

    /* Inputs: input_K.pb is the K-th graph input that is not an
     * initializer. int64 ones become constants, float ones are fed. */
    size_t n_gin = 0;
    const char *gin[64];
    for (size_t i = 0; i < g->n_input && n_gin < 64; i++)
        if (!is_initializer(g, g->input[i]->name))
            gin[n_gin++] = g->input[i]->name;
    sm_tensor *tin[64] = {0};
    int rc = 0;
    for (size_t k = 0; k < n_gin && rc == 0; k++) {
        snprintf(path, sizeof path, "%s/%s/%s/input_%zu.pb", NODE_DIR, cname,
                 set, k);
        cr_assert_eq(sm_tensorproto_read_file(path, &tin[k], NULL, 0, err), 0,
                     "%s: %s", cname, err->msg);
        if (tin[k]->i64)
            rc = sm_model_set_constant(m, gin[k], tin[k], err);
    }
    int n_in = sm_model_n_inputs(m);
    const sm_tensor *feed[64] = {0};
    for (int i = 0; i < n_in && rc == 0; i++) {
        const char *nm = sm_model_input_name(m, i);
        for (size_t k = 0; k < n_gin; k++)
            if (strcmp(gin[k], nm) == 0)
                feed[i] = tin[k];
        cr_assert_not_null(feed[i], "%s: no input_K.pb for input '%s'", cname,
                           nm);
    }
    const sm_tensor *out[64] = {0};
    if (rc == 0)
        rc = sm_model_run(m, feed, n_in, out, err);

    for (size_t k = 0; rc == 0 && k < g->n_output; k++) {
        sm_tensor *want = NULL;
        char buf1[256], buf2[256];
        const char *oname = g->output[k]->name;
        snprintf(path, sizeof path, "%s/%s/%s/output_%zu.pb", NODE_DIR, cname,
                 set, k);
        cr_assert_eq(sm_tensorproto_read_file(path, &want, NULL, 0, err), 0,
                     "%s: %s", cname, err->msg);
        int oi = sm_model_output_index(m, oname);
        cr_assert_geq(oi, 0, "%s: the model has no output '%s'", cname, oname);
        const sm_tensor *got = out[oi];
        cr_assert(sm_shape_equal(got->ndim, got->shape, want->ndim, want->shape),
                  "%s: output '%s' has shape %s, want %s", cname, oname,
                  sm_shape_str(got->ndim, got->shape, buf1, sizeof buf1),
                  sm_shape_str(want->ndim, want->shape, buf2, sizeof buf2));
        /* The worst element by relative error, so a failure shows the
         * element that matters most. */
        int64_t worst = -1;
        double worst_r = 0;
        for (int64_t i = 0; i < sm_tensor_numel(want); i++) {
            double gv = got->data[i], wv = want->data[i], r;
            if (isnan(wv))
                r = isnan(gv) ? 0 : INFINITY;
            else if (isinf(wv))
                r = gv == wv ? 0 : INFINITY;
            else
                r = isnan(gv) ? INFINITY : fabs(gv - wv) / fmax(1.0, fabs(wv));
            if (r > worst_r) {
                worst_r = r;
                worst = i;
            }
        }
        cr_assert(worst < 0 || worst_r <= TOLERANCE,
                  "%s (%s): output '%s' element %lld: got %.9g, want %.9g "
                  "(|got - want| / max(1, |want|) = %.3g > %g)", cname, set,
                  oname, (long long)worst, (double)got->data[worst],
                  (double)want->data[worst], worst_r, TOLERANCE);
        sm_tensor_destroy(&want);
    }
    for (size_t k = 0; k < n_gin; k++)
        sm_tensor_destroy(&tin[k]);
    sm_model_destroy(&m);
    return rc;
}

static void run_case(const char *cname)
{
    Onnx__ModelProto *mp = read_proto(cname);
    cr_assert_not_null(mp, "%s: model.onnx does not parse", cname);
    const exception *ex = find_exception(cname);
    if (ex && ex->kind == SKIPPED) {
        onnx__model_proto__free_unpacked(mp, NULL);
        cr_skip_test("%s: skipped: %s", cname, ex->reason);
    }
    /* Data sets in name order. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", NODE_DIR, cname);
    size_t n_sets = 0;
    char *sets[32];
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s: cannot list %s", cname, dir);
    struct dirent *e;
    while ((e = readdir(d)) && n_sets < 32)
        if (strncmp(e->d_name, "test_data_set_", 14) == 0)
            sets[n_sets++] = strdup(e->d_name);
    closedir(d);
    qsort(sets, n_sets, sizeof *sets, cmp_str);
    cr_assert_gt(n_sets, 0, "%s: no test_data_set_N folder", cname);

    for (size_t s = 0; s < n_sets; s++) {
        sm_err err = {0};
        int rc = run_set(cname, mp->graph, sets[s], &err);
        if (ex) /* REFUSED */
            cr_assert_neq(rc, 0, "%s: salmap should refuse this case (%s) but "
                          "ran it", cname, ex->reason);
        else
            cr_assert_eq(rc, 0, "%s (%s): %s", cname, sets[s], err.msg);
        if (ex)
            cr_assert(strstr(err.msg, ex->needle), "%s: refused with '%s', "
                      "not for the listed reason (%s)", cname, err.msg,
                      ex->reason);
        free(sets[s]);
    }
    onnx__model_proto__free_unpacked(mp, NULL);
}

static void free_params(struct criterion_test_params *ctp)
{
    cr_free(ctp->params);
}

ParameterizedTestParameters(conformance, node)
{
    size_t n = 0, k = 0;
    char **names = list_cases(&n);
    conf_case *cases = cr_malloc((n ? n : 1) * sizeof *cases);
    for (size_t i = 0; cases && i < n; i++)
        if (case_selected(names[i]))
            snprintf(cases[k++].name, sizeof cases[0].name, "%s", names[i]);
    free_cases(names, n);
    return cr_make_param_array(conf_case, cases, k, free_params);
}

ParameterizedTest(conf_case *c, conformance, node)
{
    run_case(c->name);
}

/* The selection cannot silently shrink, and the exception list stays true. */
Test(conformance, selection)
{
    size_t n = 0, n_sel = 0;
    char **names = list_cases(&n);
    cr_assert_gt(n, 0, "no node tests under %s (install libonnx-testdata)",
                 NODE_DIR);
    for (size_t i = 0; i < n; i++)
        n_sel += (size_t)case_selected(names[i]);
    for (size_t j = 0; j < N_EXCEPTIONS; j++) {
        int found = 0;
        for (size_t i = 0; i < n && !found; i++)
            found = strcmp(names[i], exceptions[j].name) == 0;
        cr_assert(found, "exception '%s' is not a case under %s",
                  exceptions[j].name, NODE_DIR);
        cr_assert(case_selected(exceptions[j].name), "exception '%s' is not "
                  "selected anyway (unsupported op or type): drop it",
                  exceptions[j].name);
    }
    size_t n_skipped = 0;
    for (size_t j = 0; j < N_EXCEPTIONS; j++)
        n_skipped += exceptions[j].kind == SKIPPED;
    cr_log_info("conformance: %zu cases, %zu selected, %zu expected refusals, "
                "%zu skipped, %zu compared", n, n_sel,
                N_EXCEPTIONS - n_skipped, n_skipped, n_sel - N_EXCEPTIONS);
    cr_assert_geq(n_sel - N_EXCEPTIONS, MIN_CASES, "only %zu conformance "
                  "cases compared (at least %d expected)",
                  n_sel - N_EXCEPTIONS, MIN_CASES);
    free_cases(names, n);
}
