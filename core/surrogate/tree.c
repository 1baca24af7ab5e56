/* CART classification tree, as scikit-learn 1.2's DecisionTreeClassifier
 * with gini, the best splitter and all features (sklearn/tree/_tree.pyx's
 * DepthFirstTreeBuilder, _splitter.pyx's BestSplitter, _criterion.pyx's
 * Gini), and the rules LORE reads off it. See docs/SURROGATE.md.
 *
 * Without sample weights, every sample of class c weighs the same cw[c] (1,
 * or the balanced weight), so the builder counts samples in integers and a
 * weighted count is cw[c] × its count: exact, whatever the order. With
 * weights, it adds them in a fixed order (the node's samples by index, or a
 * feature's sorted order).
 *
 * A feature of two values (LORE's superpixels on and off) has one candidate
 * split at any node, set by the class counts of its lower value. Without
 * weights these are kept for every node (the smaller child counted, the
 * larger the parent's less the smaller's, so each split costs its smaller
 * side); with weights they are summed at each node in one pass over its
 * samples. Any other feature is sorted once, by (value, index); a split
 * partitions every such order stably, so each node finds its samples
 * already sorted. Features constant at a node stay constant below it and
 * are neither searched nor partitioned there (sklearn's constant features). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "surrogate/surrogate.h"

/* A node waiting on the builder's stack; its feature list (those not
 * constant at its parent) is feats[slot·d ..], and without weights its
 * counts cnts[slot·(k·nb + k) ..] (see count_lower). */
typedef struct pending {
    int start, end, depth, parent, is_left, nf;
} pending;

typedef struct split {
    int feature, n_left;
    double threshold, proxy, imp_left, imp_right, w_left, w_right;
} split;

typedef struct builder {
    int m, d, k;       /* samples kept (positive weight), features, classes */
    const sm_tree_params *p;
    int *y;            /* m labels */
    double *w;         /* m weights */
    int uniform;       /* no sample weights: sample i weighs cw[y[i]] */
    double *cw;
    /* features: two-valued (is_two[f]) or sorted, at[f] their index among
     * their kind */
    unsigned char *is_two;
    int *at;
    /* sorted features g: col[g·m + i] the values, colf the same as float32
     * (for sklearn's comparisons), ord[g·m ..] the samples in (value, index)
     * order */
    int ng;
    double *col;
    float *colf;
    int *ord;
    /* two-valued features j: lo2[j] < hi2[j] the values, low[i·nb + j] 1
     * when sample i has the lower one. cnt_l, cnt_r: a split's children's
     * counts (count_lower); with weights, acc the lower values' class
     * weights and nl2 their counts at the node. */
    int nb;
    double *lo2, *hi2;
    unsigned char *low;
    int *cnt_l, *cnt_r, *nl2;
    double *acc;
    int *samp;         /* m: the node's samples in index order */
    int *tmp;          /* m scratch */
    unsigned char *go_left;
    int *nleft;           /* k class counts: a split's left */
    double *count, *left; /* k class weights: the node's, a split's left */
    double w_total;
    int *flist;        /* d: features not constant at the node */
    pending *stack;
    int *feats, *cnts;
    int n_stack, cap_stack;
    sm_tree *t;
} builder;

/* sklearn compares its float32 copies of the features: b (>= a) equals a
 * when b <= a + 1e-7 in float32 arithmetic (FEATURE_THRESHOLD). So 1 and
 * the next float32 up, 1.2e-7 apart, are equal there, and here. */
static int same_f(float a, float b)
{
    return b <= a + 1e-7f;
}

static int same_value(double a, double b)
{
    return same_f((float)a, (float)b);
}

/* samples 0..m-1 of column v into out in (value, index) order: a stable LSD
 * radix sort of the values' bits, a byte a pass, skipping the bytes all
 * values share. */
static void sort_column(const double *v, int m, uint64_t *key, int *out,
                        int *tmp, int *hist)
{
    for (int i = 0; i < m; i++) {
        double x = v[i] + 0.0; /* -0 sorts as +0 */
        uint64_t b;
        memcpy(&b, &x, sizeof b);
        key[i] = b >> 63 ? ~b : b | (UINT64_C(1) << 63);
    }
    memset(hist, 0, sizeof *hist * 8 * 256);
    for (int i = 0; i < m; i++)
        for (int byte = 0; byte < 8; byte++)
            hist[byte * 256 + (int)((key[i] >> 8 * byte) & 255)]++;
    int *src = out, *dst = tmp;
    for (int i = 0; i < m; i++)
        src[i] = i;
    for (int byte = 0; byte < 8; byte++) {
        int *h = hist + byte * 256;
        if (h[(key[0] >> 8 * byte) & 255] == m)
            continue;
        for (int b = 0, at = 0; b < 256; b++) {
            int c = h[b];
            h[b] = at, at += c;
        }
        for (int q = 0; q < m; q++) {
            int i = src[q];
            dst[h[(key[i] >> 8 * byte) & 255]++] = i;
        }
        int *s = src;
        src = dst, dst = s;
    }
    if (src != out)
        memcpy(out, src, sizeof *out * (size_t)m);
}

static double gini(const double *c, int k, double w)
{
    double sq = 0;
    for (int j = 0; j < k; j++)
        sq += c[j] * c[j];
    return 1.0 - sq / (w * w);
}

/* The candidate of feature f between values lo and hi, with n_left samples
 * and class weights b->left of weight wl on the left: sklearn's
 * children_impurity and proxy_impurity_improvement −w_r·gini_r − w_l·gini_l,
 * kept when strictly better than the best so far. */
static void consider(const builder *b, int f, int n_left, double wl,
                     double wn, double lo, double hi, split *best)
{
    double wr = wn - wl, sql = 0, sqr = 0;
    for (int j = 0; j < b->k; j++) {
        double l = b->left[j], r = b->count[j] - l;
        sql += l * l, sqr += r * r;
    }
    double il = 1.0 - sql / (wl * wl), ir = 1.0 - sqr / (wr * wr);
    double proxy = -wr * ir - wl * il;
    if (proxy > best->proxy) {
        /* the sum of halves cannot overflow; a midpoint rounding up to the
         * upper value would send it left */
        double thr = lo / 2.0 + hi / 2.0;
        if (thr == hi || isinf(thr))
            thr = lo;
        *best = (split){f, n_left, thr, proxy, il, ir, wl, wr};
    }
}

/* The counts of the samples samp[start..end) into cnt: the class counts
 * of the two-valued features' lower values (c·nb + j), then the class
 * counts (k·nb + c). */
static void count_lower(const builder *b, int start, int end, int *cnt)
{
    int nb = b->nb, *nc = cnt + (size_t)b->k * nb;
    memset(cnt, 0, sizeof *cnt * ((size_t)nb + 1) * b->k);
    for (int q = start; q < end; q++) {
        int i = b->samp[q];
        int *restrict a = cnt + (size_t)b->y[i] * nb;
        const unsigned char *restrict low = b->low + (size_t)i * nb;
        for (int j = 0; j < nb; j++)
            a[j] += low[j];
        nc[b->y[i]]++;
    }
}

/* With weights: the lower values' class weights (acc) and counts (nl2) over
 * the node's samples, in index order (adding w·0 leaves a sum's bits). */
static void sum_lower(builder *b, int start, int end)
{
    int nb = b->nb;
    int *restrict nl = b->nl2;
    memset(b->acc, 0, sizeof *b->acc * (size_t)nb * b->k);
    memset(nl, 0, sizeof *nl * (size_t)nb);
    for (int q = start; q < end; q++) {
        int i = b->samp[q];
        double wi = b->w[i], *restrict a = b->acc + (size_t)b->y[i] * nb;
        const unsigned char *restrict low = b->low + (size_t)i * nb;
        for (int j = 0; j < nb; j++) {
            a[j] += wi * low[j];
            nl[j] += low[j];
        }
    }
}

/* The best split of the node's samples [start, end) over the features of
 * list fl[nf], as BestSplitter: candidates between consecutive distinct
 * values, both sides at least min_samples_leaf, the largest proxy
 * improvement winning only when strictly larger (features in increasing
 * index, thresholds increasing). cnt: the node's lower-value class counts
 * (without weights). Writes the features not constant here into b->flist
 * and returns their count. */
static int best_split(builder *b, int start, int end, const int *fl, int nf,
                      const int *cnt, double wn, split *best)
{
    int m = b->m, k = b->k, nb = b->nb, len = end - start;
    int msl = b->p->min_samples_leaf, n_var = 0;
    best->feature = -1;
    best->proxy = -INFINITY;
    if (!b->uniform) {
        int any_two = 0;
        for (int a = 0; a < nf && !any_two; a++)
            any_two = b->is_two[fl[a]];
        if (any_two)
            sum_lower(b, start, end);
    }
    for (int a = 0; a < nf; a++) {
        int f = fl[a], j = b->at[f];
        if (b->is_two[f]) {
            int nl = b->uniform ? 0 : b->nl2[j];
            for (int c = 0; c < k && b->uniform; c++)
                nl += cnt[c * nb + j];
            if (nl == 0 || nl == len)
                continue;
            b->flist[n_var++] = f;
            if (nl < msl || len - nl < msl)
                continue;
            double wl = 0;
            for (int c = 0; c < k; c++) {
                b->left[c] = b->uniform ? b->cw[c] * cnt[c * nb + j]
                                        : b->acc[(size_t)c * nb + j];
                wl += b->left[c];
            }
            consider(b, f, nl, wl, wn, b->lo2[j], b->hi2[j], best);
            continue;
        }
        const int *o = b->ord + (size_t)j * m + start;
        const float *vf = b->colf + (size_t)j * m;
        if (same_f(vf[o[0]], vf[o[len - 1]]))
            continue;
        b->flist[n_var++] = f;
        const double *v = b->col + (size_t)j * m;
        memset(b->left, 0, sizeof *b->left * (size_t)k);
        memset(b->nleft, 0, sizeof *b->nleft * (size_t)k);
        double wl = 0;
        int i = o[0];
        float fa = vf[i];
        for (int q = 0; q < len - 1; q++) {
            if (b->uniform) {
                b->nleft[b->y[i]]++;
            } else {
                b->left[b->y[i]] += b->w[i];
                wl += b->w[i];
            }
            int i2 = o[q + 1];
            float fb = vf[i2];
            if (!same_f(fa, fb) && q + 1 >= msl && len - (q + 1) >= msl) {
                if (b->uniform) {
                    wl = 0;
                    for (int c = 0; c < k; c++) {
                        b->left[c] = b->cw[c] * b->nleft[c];
                        wl += b->left[c];
                    }
                }
                consider(b, f, q + 1, wl, wn, v[i], v[i2], best);
            }
            i = i2, fa = fb;
        }
    }
    return n_var;
}

/* Moves the samples of s[0..len) going left to the front, keeping the
 * order on both sides. */
static void partition(int *s, int len, const unsigned char *go_left, int *tmp)
{
    int nl = 0, nr = 0;
    for (int q = 0; q < len; q++) {
        int i = s[q];
        if (go_left[i])
            s[nl++] = i;
        else
            tmp[nr++] = i;
    }
    memcpy(s + nl, tmp, sizeof *s * (size_t)nr);
}

/* A node's counts (count_lower) travel with it only without weights. */
static size_t cnt_size(const builder *b)
{
    return b->uniform ? (size_t)b->k * (b->nb + 1) : 0;
}

static int push(builder *b, int start, int end, int depth, int parent,
                int is_left, const int *fl, int nf, const int *cnt)
{
    size_t cs = cnt_size(b);
    if (b->n_stack == b->cap_stack) {
        int cap = b->cap_stack ? 2 * b->cap_stack : 16;
        pending *s = realloc(b->stack, sizeof *s * (size_t)cap);
        if (s)
            b->stack = s;
        int *f = realloc(b->feats, sizeof *f * (size_t)cap * b->d);
        if (f)
            b->feats = f;
        int *c = realloc(b->cnts, sizeof *c * ((size_t)cap * cs + 1));
        if (c)
            b->cnts = c;
        if (!s || !f || !c)
            return -1;
        b->cap_stack = cap;
    }
    int slot = b->n_stack++;
    b->stack[slot] = (pending){start, end, depth, parent, is_left, nf};
    memcpy(b->feats + (size_t)slot * b->d, fl, sizeof *fl * (size_t)nf);
    if (cs)
        memcpy(b->cnts + (size_t)slot * cs, cnt, sizeof *cnt * cs);
    return 0;
}

/* Pops and builds one node: its counts, leaf or split, its children pushed
 * right first so that the left subtree is numbered first. */
static int build_node(builder *b)
{
    int slot = --b->n_stack;
    pending nd = b->stack[slot];
    const int *fl = b->feats + (size_t)slot * b->d;
    const int *cnt = b->cnts + (size_t)slot * cnt_size(b);
    int k = b->k, m = b->m, n = nd.end - nd.start;
    const sm_tree_params *p = b->p;

    /* Without weights a pure node's gini is exactly 0: one class weight,
     * equal to the node's. With weights, sums in index order make it so. */
    double wn = 0;
    if (b->uniform) {
        for (int c = 0; c < k; c++) {
            b->count[c] = b->cw[c] * cnt[(size_t)k * b->nb + c];
            wn += b->count[c];
        }
    } else {
        memset(b->count, 0, sizeof *b->count * (size_t)k);
        for (int q = nd.start; q < nd.end; q++) {
            int i = b->samp[q];
            b->count[b->y[i]] += b->w[i];
            wn += b->w[i];
        }
    }
    double imp = gini(b->count, k, wn);
    int leaf = (p->max_depth > 0 && nd.depth >= p->max_depth) ||
               n < p->min_samples_split || n < 2 * p->min_samples_leaf ||
               imp <= DBL_EPSILON;
    split s = {.feature = -1};
    int n_var = 0;
    if (!leaf) {
        n_var = best_split(b, nd.start, nd.end, fl, nd.nf, cnt, wn, &s);
        /* sklearn's impurity_improvement, refused below −ε as there */
        double improvement =
            s.feature < 0 ? 0
                          : wn / b->w_total *
                                (imp - s.w_right / wn * s.imp_right -
                                 s.w_left / wn * s.imp_left);
        leaf = s.feature < 0 || improvement + DBL_EPSILON < 0;
    }

    sm_tree *t = b->t;
    int id = t->n_nodes++; /* capacity 2m − 1 suffices */
    sm_tree_node *node = &t->node[id];
    node->feature = leaf ? -1 : s.feature;
    node->threshold = leaf ? 0 : s.threshold;
    node->left = node->right = -1;
    node->n = n;
    node->weight = wn;
    node->impurity = imp;
    node->label = 0;
    for (int c = 1; c < k; c++)
        if (b->count[c] > b->count[node->label])
            node->label = c;
    memcpy(t->value + (size_t)id * k, b->count, sizeof *b->count * (size_t)k);
    if (nd.parent >= 0) {
        if (nd.is_left)
            t->node[nd.parent].left = id;
        else
            t->node[nd.parent].right = id;
    }
    if (leaf)
        return 0;

    int j = b->at[s.feature], mid = nd.start + s.n_left;
    for (int q = nd.start; q < nd.end; q++) {
        int i = b->samp[q];
        b->go_left[i] = b->is_two[s.feature]
                            ? b->low[(size_t)i * b->nb + j] != 0
                            : b->col[(size_t)j * m + i] <= s.threshold;
    }
    partition(b->samp + nd.start, n, b->go_left, b->tmp);
    for (int a = 0; a < n_var; a++)
        if (!b->is_two[b->flist[a]])
            partition(b->ord + (size_t)b->at[b->flist[a]] * m + nd.start, n,
                      b->go_left, b->tmp);
    size_t cs = cnt_size(b);
    if (cs) {
        /* count the smaller child; the larger is the rest (exactly) */
        int left_small = s.n_left <= n - s.n_left;
        int *small = left_small ? b->cnt_l : b->cnt_r;
        int *large = left_small ? b->cnt_r : b->cnt_l;
        count_lower(b, left_small ? nd.start : mid, left_small ? mid : nd.end,
                    small);
        for (size_t x = 0; x < cs; x++)
            large[x] = cnt[x] - small[x];
    }
    if (push(b, mid, nd.end, nd.depth + 1, id, 0, b->flist, n_var,
             b->cnt_r) < 0 ||
        push(b, nd.start, mid, nd.depth + 1, id, 1, b->flist, n_var,
             b->cnt_l) < 0)
        return -1;
    return 0;
}

static int check(const double *X, int n, int d, const int *y, int n_classes,
                 const double *w, const sm_tree_params *p, sm_err *err)
{
    if (!X || !y || !p)
        return sm_err_set(err, "tree fit: X, y and the params are required");
    if (n < 1)
        return sm_err_set(err, "tree fit: need at least 1 sample, got %d", n);
    if (d < 1)
        return sm_err_set(err, "tree fit: need at least 1 feature, got %d", d);
    if (n_classes < 1)
        return sm_err_set(err, "tree fit: need at least 1 class, got %d",
                          n_classes);
    if (p->max_depth < 0)
        return sm_err_set(err, "tree fit: max_depth is %d (must be >= 0, 0 "
                          "for unlimited)", p->max_depth);
    if (p->min_samples_split < 2)
        return sm_err_set(err, "tree fit: min_samples_split is %d (must be "
                          ">= 2)", p->min_samples_split);
    if (p->min_samples_leaf < 1)
        return sm_err_set(err, "tree fit: min_samples_leaf is %d (must be "
                          ">= 1)", p->min_samples_leaf);
    if (p->balanced != 0 && p->balanced != 1)
        return sm_err_set(err, "tree fit: balanced is %d (must be 0 or 1)",
                          p->balanced);
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= n_classes)
            return sm_err_set(err, "tree fit: label of sample %d is %d (must "
                              "be in 0..%d)", i, y[i], n_classes - 1);
    if (w)
        for (int i = 0; i < n; i++)
            if (!isfinite(w[i]) || w[i] < 0)
                return sm_err_set(err, "tree fit: weight of sample %d is %g "
                                  "(must be finite and >= 0)", i, w[i]);
    for (size_t i = 0; i < (size_t)n * d; i++) {
        /* sklearn refuses values beyond float32's range too */
        if (!isfinite(X[i]) || fabs(X[i]) > FLT_MAX)
            return sm_err_set(err, "tree fit: feature %d of sample %d is %g "
                              "(must be finite, within float32's range)",
                              (int)(i % (size_t)d), (int)(i / (size_t)d), X[i]);
    }
    return 0;
}

static void builder_free(builder *b)
{
    free(b->y), free(b->w), free(b->cw), free(b->is_two), free(b->at);
    free(b->col), free(b->colf), free(b->ord), free(b->lo2), free(b->hi2);
    free(b->low), free(b->cnt_l), free(b->cnt_r), free(b->nl2), free(b->acc);
    free(b->samp), free(b->tmp), free(b->go_left), free(b->nleft);
    free(b->count), free(b->left), free(b->flist);
    free(b->stack), free(b->feats), free(b->cnts);
}

/* Sorts out the features over the kept samples (rows X[orig[i]·d ..]):
 * those of two values, not equal in sklearn's sense, get their column of
 * low; the others their column of values, sorted. 0 or -1 (out of
 * memory). */
static int prepare(builder *b, const double *X, const int *orig)
{
    int m = b->m, d = b->d, k = b->k, nb = 0, ng = 0;
    unsigned char *two = b->is_two;
    double *lo = b->lo2, *hi = b->hi2; /* by feature here, by j after */
    for (int f = 0; f < d; f++)
        two[f] = 1, lo[f] = hi[f] = X[(size_t)orig[0] * d + f];
    for (int i = 1; i < m; i++) {
        const double *x = X + (size_t)orig[i] * d;
        for (int f = 0; f < d; f++) {
            double v = x[f];
            /* | rather than ||: 0/1 values would defeat branch prediction */
            if ((v == lo[f]) | (v == hi[f]) | !two[f])
                continue;
            if (lo[f] != hi[f])
                two[f] = 0;
            else if (v < lo[f])
                lo[f] = v;
            else
                hi[f] = v;
        }
    }
    for (int f = 0; f < d; f++) {
        two[f] = two[f] && lo[f] != hi[f] && !same_value(lo[f], hi[f]);
        if (two[f])
            lo[nb] = lo[f], hi[nb] = hi[f], b->at[f] = nb++; /* nb <= f */
        else
            b->at[f] = ng++;
    }
    b->nb = nb, b->ng = ng;
    size_t mg = (size_t)m * ng + 1, kb = (size_t)k * (nb + 1);
    b->col = malloc(sizeof *b->col * mg);
    b->colf = malloc(sizeof *b->colf * mg);
    b->ord = malloc(sizeof *b->ord * mg);
    b->low = malloc((size_t)m * nb + 1);
    b->cnt_l = malloc(sizeof *b->cnt_l * kb);
    b->cnt_r = malloc(sizeof *b->cnt_r * kb);
    b->acc = malloc(sizeof *b->acc * kb);
    uint64_t *key = malloc(sizeof *key * (size_t)m);
    int *hist = malloc(sizeof *hist * 8 * 256);
    if (!b->col || !b->colf || !b->ord || !b->low || !b->cnt_l || !b->cnt_r ||
        !b->acc || !key || !hist) {
        free(key), free(hist);
        return -1;
    }
    for (int i = 0; i < m; i++) {
        const double *x = X + (size_t)orig[i] * d;
        for (int f = 0; f < d; f++) {
            int j = b->at[f];
            if (two[f]) {
                b->low[(size_t)i * nb + j] = x[f] == lo[j];
            } else {
                b->col[(size_t)j * m + i] = x[f];
                b->colf[(size_t)j * m + i] = (float)x[f];
            }
        }
    }
    for (int g = 0; g < ng; g++)
        sort_column(b->col + (size_t)g * m, m, key, b->ord + (size_t)g * m,
                    b->tmp, hist);
    free(key), free(hist);
    return 0;
}

void sm_tree_destroy(sm_tree **t)
{
    if (!t || !*t)
        return;
    free((*t)->node);
    free((*t)->value);
    free(*t);
    *t = NULL;
}

sm_tree *sm_tree_fit(const double *X, int n, int d, const int *y,
                     int n_classes, const double *w, const sm_tree_params *p,
                     sm_err *err)
{
    if (check(X, n, d, y, n_classes, w, p, err) < 0)
        return NULL;
    int k = n_classes;
    builder b = {.d = d, .k = k, .p = p, .uniform = !w};
    int *nc = calloc((size_t)k, sizeof *nc), *orig = NULL;
    b.cw = calloc((size_t)k, sizeof *b.cw);
    if (!nc || !b.cw)
        goto oom;
    /* sklearn's compute_class_weight("balanced"): n / (k · n_c) over the k
     * classes present, counting zero-weight samples too. */
    for (int i = 0; i < n; i++)
        nc[y[i]]++;
    int present = 0;
    for (int c = 0; c < k; c++)
        present += nc[c] > 0;
    for (int c = 0; c < k; c++)
        b.cw[c] = !p->balanced ? 1.0
                  : nc[c] ? (double)n / ((double)present * (double)nc[c])
                          : 0.0;
    /* Samples of weight 0 are left out, as sklearn's splitter does. */
    for (int i = 0; i < n; i++)
        b.m += !w || w[i] != 0;
    int m = b.m;
    if (m == 0) {
        sm_err_set(err, "tree fit: the sample weights are all 0");
        free(nc);
        builder_free(&b);
        return NULL;
    }
    orig = malloc(sizeof *orig * (size_t)m);
    b.y = malloc(sizeof *b.y * (size_t)m);
    b.w = malloc(sizeof *b.w * (size_t)m);
    b.is_two = malloc((size_t)d);
    b.at = malloc(sizeof *b.at * (size_t)d);
    b.lo2 = malloc(sizeof *b.lo2 * (size_t)d);
    b.hi2 = malloc(sizeof *b.hi2 * (size_t)d);
    b.nl2 = malloc(sizeof *b.nl2 * (size_t)d);
    b.samp = malloc(sizeof *b.samp * (size_t)m);
    b.tmp = malloc(sizeof *b.tmp * (size_t)m);
    b.go_left = malloc((size_t)m);
    b.nleft = malloc(sizeof *b.nleft * (size_t)k);
    b.count = malloc(sizeof *b.count * (size_t)k);
    b.left = malloc(sizeof *b.left * (size_t)k);
    b.flist = malloc(sizeof *b.flist * (size_t)d);
    b.t = calloc(1, sizeof *b.t);
    if (b.t) {
        /* zeroed, so the nodes' padding bytes compare equal (memcmp) */
        b.t->node = calloc((size_t)2 * m - 1, sizeof *b.t->node);
        b.t->value = calloc(((size_t)2 * m - 1) * k, sizeof *b.t->value);
    }
    if (!orig || !b.y || !b.w || !b.is_two || !b.at || !b.lo2 || !b.hi2 ||
        !b.nl2 || !b.samp || !b.tmp || !b.go_left || !b.nleft ||
        !b.count || !b.left || !b.flist || !b.t || !b.t->node || !b.t->value)
        goto oom;
    for (int i = 0, j = 0; i < n; i++) {
        if (w && w[i] == 0)
            continue;
        orig[j] = i;
        b.y[j] = y[i];
        b.w[j] = (w ? w[i] : 1.0) * b.cw[y[i]];
        b.samp[j] = j;
        j++;
    }
    for (int i = 0; i < n; i++)
        b.w_total += (w ? w[i] : 1.0) * b.cw[y[i]];
    if (prepare(&b, X, orig) < 0)
        goto oom;
    free(orig);
    orig = NULL;

    b.t->n_features = d;
    b.t->n_classes = k;
    for (int f = 0; f < d; f++)
        b.flist[f] = f;
    if (b.uniform)
        count_lower(&b, 0, m, b.cnt_l);
    if (push(&b, 0, m, 0, -1, 0, b.flist, d, b.cnt_l) < 0)
        goto oom;
    while (b.n_stack > 0)
        if (build_node(&b) < 0)
            goto oom;

    /* Down to size; the bytes stay as they are. */
    sm_tree *t = b.t;
    sm_tree_node *nodes = realloc(t->node, sizeof *nodes * (size_t)t->n_nodes);
    if (nodes)
        t->node = nodes;
    double *value = realloc(t->value, sizeof *value * (size_t)t->n_nodes * k);
    if (value)
        t->value = value;
    b.t = NULL;
    builder_free(&b);
    free(nc);
    return t;
oom:
    sm_err_set(err, "tree fit: out of memory (%d samples × %d features)", n, d);
    sm_tree_destroy(&b.t);
    builder_free(&b);
    free(nc), free(orig);
    return NULL;
}

int sm_tree_leaf(const sm_tree *t, const double *x)
{
    int c = 0;
    while (t->node[c].feature >= 0)
        c = x[t->node[c].feature] <= t->node[c].threshold ? t->node[c].left
                                                          : t->node[c].right;
    return c;
}

int sm_tree_predict(const sm_tree *t, const double *x)
{
    return t->node[sm_tree_leaf(t, x)].label;
}

void sm_tree_importances(const sm_tree *t, double *imp)
{
    /* sklearn's compute_feature_importances: in node order, then divided
     * by the root's weight and normalised. */
    int d = t->n_features;
    memset(imp, 0, sizeof *imp * (size_t)d);
    for (int c = 0; c < t->n_nodes; c++) {
        const sm_tree_node *a = &t->node[c];
        if (a->feature < 0)
            continue;
        const sm_tree_node *l = &t->node[a->left], *r = &t->node[a->right];
        imp[a->feature] += a->weight * a->impurity - l->weight * l->impurity -
                           r->weight * r->impurity;
    }
    double sum = 0;
    for (int f = 0; f < d; f++) {
        imp[f] /= t->node[0].weight;
        sum += imp[f];
    }
    if (sum > 0)
        for (int f = 0; f < d; f++)
            imp[f] /= sum;
}

/* ---- rules ---------------------------------------------------------- */

/* Scratch for reading paths: parents and per-feature bounds. */
typedef struct paths {
    int *parent;
    double *lo, *hi;
    unsigned char *used;
} paths;

static void paths_free(paths *ps)
{
    free(ps->parent), free(ps->lo), free(ps->hi), free(ps->used);
}

static int paths_new(const sm_tree *t, paths *ps, sm_err *err)
{
    int d = t->n_features;
    ps->parent = malloc(sizeof *ps->parent * (size_t)t->n_nodes);
    ps->lo = malloc(sizeof *ps->lo * (size_t)d);
    ps->hi = malloc(sizeof *ps->hi * (size_t)d);
    ps->used = malloc((size_t)d);
    if (!ps->parent || !ps->lo || !ps->hi || !ps->used) {
        paths_free(ps);
        return sm_err_set(err, "tree rules: out of memory (%d nodes)",
                          t->n_nodes);
    }
    ps->parent[0] = -1;
    for (int c = 0; c < t->n_nodes; c++)
        if (t->node[c].feature >= 0) {
            ps->parent[t->node[c].left] = c;
            ps->parent[t->node[c].right] = c;
        }
    return 0;
}

/* The rule of leaf: its path's conditions intersected per feature. With x,
 * only the conditions x falsifies, and their premises as the cost. */
static int leaf_rule(const sm_tree *t, paths *ps, int leaf, const double *x,
                     sm_tree_rule *r, sm_err *err)
{
    int d = t->n_features, nc = 0;
    memset(ps->used, 0, (size_t)d);
    for (int c = leaf; ps->parent[c] >= 0; c = ps->parent[c]) {
        const sm_tree_node *a = &t->node[ps->parent[c]];
        int f = a->feature;
        if (!ps->used[f])
            ps->used[f] = 1, ps->lo[f] = -INFINITY, ps->hi[f] = INFINITY;
        if (a->left == c)
            ps->hi[f] = fmin(ps->hi[f], a->threshold);
        else
            ps->lo[f] = fmax(ps->lo[f], a->threshold);
    }
    for (int f = 0; f < d; f++)
        if (ps->used[f] && x && ps->lo[f] < x[f] && x[f] <= ps->hi[f])
            ps->used[f] = 0;
    for (int f = 0; f < d; f++)
        nc += ps->used[f];
    *r = (sm_tree_rule){.leaf = leaf, .label = t->node[leaf].label};
    if (nc > 0 && !(r->cond = malloc(sizeof *r->cond * (size_t)nc)))
        return sm_err_set(err, "tree rules: out of memory (%d conditions)", nc);
    for (int f = 0; f < d; f++) {
        if (!ps->used[f])
            continue;
        r->cond[r->n_cond++] = (sm_tree_cond){f, ps->lo[f], ps->hi[f]};
        if (x)
            r->cost += (ps->lo[f] > -INFINITY) + (ps->hi[f] < INFINITY);
    }
    return 0;
}

int sm_tree_rule_of(const sm_tree *t, const double *x, sm_tree_rule *r,
                    sm_err *err)
{
    paths ps;
    *r = (sm_tree_rule){.leaf = -1};
    if (paths_new(t, &ps, err) < 0)
        return -1;
    int rc = leaf_rule(t, &ps, sm_tree_leaf(t, x), NULL, r, err);
    paths_free(&ps);
    return rc;
}

static int by_cost(const void *a, const void *b)
{
    const sm_tree_rule *r = a, *s = b;
    if (r->cost != s->cost)
        return r->cost < s->cost ? -1 : 1;
    if (r->label != s->label)
        return r->label < s->label ? -1 : 1;
    return (r->leaf > s->leaf) - (r->leaf < s->leaf);
}

int sm_tree_counterfactuals(const sm_tree *t, const double *x,
                            sm_tree_rule **out, int *n, sm_err *err)
{
    *out = NULL, *n = 0;
    int own = t->node[sm_tree_leaf(t, x)].label, count = 0;
    for (int c = 0; c < t->n_nodes; c++)
        count += t->node[c].feature < 0 && t->node[c].label != own;
    if (count == 0)
        return 0;
    paths ps;
    sm_tree_rule *r = calloc((size_t)count, sizeof *r);
    if (!r)
        return sm_err_set(err, "tree rules: out of memory (%d rules)", count);
    if (paths_new(t, &ps, err) < 0) {
        free(r);
        return -1;
    }
    int got = 0;
    for (int c = 0; c < t->n_nodes; c++) {
        if (t->node[c].feature >= 0 || t->node[c].label == own)
            continue;
        if (leaf_rule(t, &ps, c, x, &r[got], err) < 0) {
            paths_free(&ps);
            sm_tree_rules_free(r, got);
            return -1;
        }
        got++;
    }
    paths_free(&ps);
    qsort(r, (size_t)count, sizeof *r, by_cost);
    *out = r, *n = count;
    return 0;
}

void sm_tree_rule_free(sm_tree_rule *r)
{
    if (!r)
        return;
    free(r->cond);
    r->cond = NULL;
    r->n_cond = 0;
}

void sm_tree_rules_free(sm_tree_rule *r, int n)
{
    if (!r)
        return;
    for (int i = 0; i < n; i++)
        sm_tree_rule_free(&r[i]);
    free(r);
}

static int int_cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

void sm_tree_dense_labels(int *y, int64_t n, int *cls, int *k)
{
    memcpy(cls, y, sizeof(int) * (size_t)n);
    qsort(cls, (size_t)n, sizeof(int), int_cmp);
    *k = 0;
    for (int64_t i = 0; i < n; i++)
        if (*k == 0 || cls[*k - 1] != cls[i])
            cls[(*k)++] = cls[i];
    for (int64_t i = 0; i < n; i++) {
        const int *at = bsearch(&y[i], cls, (size_t)*k, sizeof(int), int_cmp);
        y[i] = (int)(at - cls);
    }
}

int sm_tree_counterfactuals_kept(const sm_tree_rule *cf, int n,
                                 const int *model_label, int label,
                                 uint8_t *keep)
{
    int rejected = 0;
    for (int k = 0; k < n; k++) {
        int first = 1;
        keep[k] = 0;
        for (int j = 0; j < k && first; j++)
            first = !(keep[j] && cf[j].label == cf[k].label);
        if (!first)
            continue; /* its class has a confirmed one already */
        if (model_label[k] == label)
            rejected++;
        else
            keep[k] = 1;
    }
    return rejected;
}
