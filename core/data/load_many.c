/* Decoding many images at once, on several threads: libvips decodes one
 * image per call, so a batch's images are shared out in contiguous ranges. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"

#define MAX_THREADS 64

typedef struct range_job {
    const sm_dataset *ds;
    const size_t *idx;
    size_t first;
    const sm_preproc *pp;
    float *dst;
    int *status;
    sm_err *errs;
    size_t begin, end, failed;
} range_job;

static void *load_range(void *arg)
{
    range_job *j = arg;
    size_t per = (size_t)j->pp->channels * (size_t)j->pp->height *
                 (size_t)j->pp->width;
    for (size_t r = j->begin; r < j->end; r++) {
        sm_err e = {0};
        j->status[r] = sm_dataset_load(j->ds, j->idx ? j->idx[r] : j->first + r, j->pp,
                                       j->dst + r * per, &e);
        if (j->status[r]) {
            j->failed++;
            if (j->errs)
                j->errs[r] = e;
        }
    }
    return NULL;
}

size_t sm_dataset_load_many(const sm_dataset *ds, const size_t *idx,
                            size_t first, size_t n, const sm_preproc *pp,
                            float *dst, int threads, int *status, sm_err *errs)
{
    if (threads < 1)
        threads = 1;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    if ((size_t)threads > n)
        threads = n ? (int)n : 1;
    range_job jobs[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 0; t < threads; t++) {
        jobs[t] = (range_job){ds, idx, first, pp, dst, status, errs,
                              n * (size_t)t / (size_t)threads,
                              n * (size_t)(t + 1) / (size_t)threads, 0};
        started[t] = t > 0 && pthread_create(&tid[t], NULL, load_range, &jobs[t]) == 0;
    }
    for (int t = 0; t < threads; t++)
        if (!started[t]) /* this thread's share, or a thread not to be had */
            load_range(&jobs[t]);
    size_t failed = 0;
    for (int t = 0; t < threads; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        failed += jobs[t].failed;
    }
    return failed;
}

size_t sm_dataset_load_range(const sm_dataset *ds, size_t i0, size_t i1,
                             const sm_preproc *pp, float *dst, int threads,
                             size_t *loaded,
                             void (*on_error)(const sm_err *e, void *u),
                             void *u)
{
    size_t n = i1 - i0, per = (size_t)pp->channels * (size_t)pp->height *
                              (size_t)pp->width;
    int *status = malloc(sizeof(int) * (n ? n : 1));
    sm_err *errs = malloc(sizeof(sm_err) * (n ? n : 1));
    if (!status || !errs) {
        free(status);
        free(errs);
        sm_err e;
        sm_err_set(&e, "out of memory loading images %zu to %zu", i0, i1);
        if (on_error)
            on_error(&e, u);
        return 0;
    }
    sm_dataset_load_many(ds, NULL, i0, n, pp, dst, threads, status, errs);
    size_t k = 0;
    for (size_t r = 0; r < n; r++) {
        if (status[r]) {
            if (on_error)
                on_error(&errs[r], u);
            continue;
        }
        if (k != r)
            memmove(dst + k * per, dst + r * per, per * sizeof(float));
        loaded[k++] = i0 + r;
    }
    free(status);
    free(errs);
    return k;
}
