/* The gateway's JSON: a job document (docs/API.md, the keys of a job file,
 * docs/EXPLAIN.md) into a libsalmap-client job, and a job's status out.
 * Everything here reads hostile input: every key is checked and an error
 * names it. */
#ifndef SM_GW_JSON_H
#define SM_GW_JSON_H

#include <jansson.h>

#include "client/lib/salmap_client.h"
#include "util/err.h"

/* What a job document may name on the broker's disk. */
typedef struct sm_gw_paths {
    const char *out_root;            /* each job's folder is made under it */
    const char *const *dataset_roots; /* datasets must lie under one */
    size_t n_dataset_roots;
} sm_gw_paths;

/* A parsed job: job borrows strings from the JSON document it came from
 * (keep it alive) and from what the job owns. */
typedef struct sm_gw_job {
    sm_client_job job;
    char out[1024];
    void **owned; /* everything allocated for job */
    size_t n_owned, cap_owned;
} sm_gw_job;

/* Reads the job document doc into j. inline_image: the document names
 * one image as "image" (base64 bytes), the per-request explain; else
 * "dataset" or "images". 0, or -1 with a message naming the key. */
int sm_gw_job_parse(json_t *doc, const sm_gw_paths *paths, int inline_image,
                    sm_gw_job *j, sm_err *err);

/* Frees what j owns (not the document). */
void sm_gw_job_free(sm_gw_job *j);

/* A job's status as the API answers it: progress, rate and ETA. */
json_t *sm_gw_status_json(const sm_client_status *st);

/* GET /v1/workers's answer: {workers: [...], faults: [...]}; NULL when out
 * of memory. */
json_t *sm_gw_workers_json(const sm_client_workers *w);

/* 1 when s is a path a client may name inside a job's folder: not empty,
 * relative, no "..", no backslash or control character (PROTOCOL.md 3.3). */
int sm_gw_path_safe(const char *s);

/* Base64 (the standard alphabet, padded) of data; NULL when out of memory. */
char *sm_gw_base64(const void *data, size_t len);

#endif
