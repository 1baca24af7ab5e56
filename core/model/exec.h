/* Internal to core/model: the model object (a loaded graph and what runs
 * it) and the graph's execution: plans (plan.c), runs split over lanes
 * (run.c), and what backward.c and relevance.c share. The graph itself is
 * graph.h's, which knows nothing of this. */
#ifndef SM_MODEL_EXEC_H
#define SM_MODEL_EXEC_H

#include "model/graph.h"
#include "model/model.h"
#include "util/team.h"

/* Plans kept per model: one per distinct set of input shapes (batch size).
 * A worker typically alternates between a full batch and a last partial one. */
#define MAX_PLANS 4

/* The least FLOPs of a node split over the model's threads when its batch
 * is not. A layer alone gains from 5 MFLOP on (bench/split: 1.5x, and
 * 1.9x at 231), but inside a network its input was just written by the
 * other core, and the fixtures' layers of 0.3 to 5 MFLOP ran slower
 * split (resnet18s' 4.8 MFLOP stem: the whole net 10% slower). */
#define SM_PLAN_SPLIT_FLOPS 8388608.0
/* Nodes from this many FLOPs up to SM_PLAN_SPLIT_FLOPS split only when
 * the plan's own trials find that the whole run is faster so: on some
 * machines of this kind two threads made one image 1.2-1.4x faster
 * (resnet18s), on others, whose two virtual CPUs behave as one core,
 * 1.5-2x slower (docs/PERFORMANCE.md). Either way the bits are the same
 * (run_part). */
#define SM_PLAN_SPLIT_TRY_FLOPS 262144.0
/* The trials: every SM_PLAN_SPLIT_PERIOD runs of a plan with a team,
 * the first SM_PLAN_SPLIT_TRIALS alternate with and without the tried
 * splits, and the faster of the two (the best run each way) holds until
 * the next period: a machine's load may change. */
#define SM_PLAN_SPLIT_PERIOD 4096
#define SM_PLAN_SPLIT_TRIALS 16
/* ... or sooner, after this many runs in a row this much slower than the
 * trials found their way */
#define SM_PLAN_SPLIT_SLOW 4
#define SM_PLAN_SPLIT_SLOWER 1.5

/* plan.split[i]: whether node i is split over the team. */
enum { SPLIT_NEVER, SPLIT_TRIED, SPLIT_ALWAYS };

/* A plan's trials of its SPLIT_TRIED nodes (run.c). */
typedef struct split_trials {
    unsigned long runs;   /* runs with a team since the trials began */
    double best[2];       /* the trials' best seconds without, with */
    int split;            /* the choice: 1 split the tried nodes */
    int slow;             /* chosen runs in a row slower than its best */
} split_trials;

typedef struct plan {
    int64_t key[8][SM_MAX_DIMS + 1]; /* per input: ndim then dims */
    sm_tensor *vals;         /* per value: shape and data (borrowed) */
    unsigned char *folded;   /* per node: computed at planning, its
                                outputs in buffers of their own */
    size_t *offset;          /* per value: a node output's place in the
                                lane's arena */
    size_t total, ws_len;    /* floats of arena and workspace it needs */
    const float *bound;      /* the arena its activations point into */
    float *ws;               /* the lane's workspace */
    unsigned char *is_const; /* per value: constant or folded */
    int *fuse;               /* per node: j + 1 when node j, a Relu of this
                                node's output 0, runs inside it (op.h,
                                run_relu); -1 for that Relu node; 0 */
    unsigned char *split;    /* per node: worth splitting over the model's
                                threads when the batch is not (op.h,
                                run_part): SPLIT_NEVER, _TRIED, _ALWAYS */
    int tried;               /* it has SPLIT_TRIED nodes */
    split_trials trials;
    double flops;
    unsigned long last_use;
    /* Backward, allocated at the first backward through this plan: */
    sm_tensor *grads;        /* per value: shape and gradient buffer */
    float *garena;
    float *bws;
    /* Relevance scratch (relevance.c), allocated at the first pass: */
    float *rarena;
    size_t rcap;             /* floats in rarena */
} plan;

/* A plan cache. Each thread of a data-parallel run has its own. Its
 * plans share one arena of activations and one workspace (a lane runs one
 * plan at a time), grown to the largest plan's and never given back: a
 * fresh page costs a fault at its first touch, which costs more than the
 * whole run of a small batch, and adaptive methods ask for batches of
 * every size. */
typedef struct lane {
    plan *plans[MAX_PLANS];
    plan *last;
    unsigned long clock;
    float *arena, *ws;
    size_t arena_cap, ws_cap; /* floats */
} lane;

struct sm_model {
    sm_graph g;              /* what was loaded; plans read it */
    lane lanes[SM_MODEL_MAX_THREADS];
    int threads;
    sm_team *team;           /* threads kept for split nodes and lanes:
                                made at the first run that needs them */
    sm_tensor *gathered;     /* n_outputs: a split run's joined outputs */
    size_t *gathered_cap;    /* floats allocated in each gathered[i] */
    int unbatched;           /* 1: its outputs do not follow the batch */
    double last_flops;
    /* The last run, for backward: its lanes, their plans and batch rows. */
    int last_lanes;
    plan *last_plan[SM_MODEL_MAX_THREADS];
    int64_t last_n0[SM_MODEL_MAX_THREADS + 1];
    int last_infer;          /* 1: the last run was sm_model_infer's */
    size_t infer_bytes;      /* sm_model_set_infer_bytes; 0: the default */
    int last_joined;         /* 1: the last run's results were joined from
                                split lanes, 0: lane 0's own */
    sm_tensor *ggathered;    /* n_inputs: a split backward's joined grads */
    size_t *ggathered_cap;
    unsigned char *live;     /* n_vals: values the last backward went through */
    unsigned char *fresh;    /* n_vals: 1 when the last backward's first
                                writer of the value's gradient writes it
                                whole (op.h backward_fresh): not zeroed */
    unsigned *bwd_fresh;     /* n_nodes: the `fresh` bits each node's
                                backward_fresh was given */
    sm_tensor act_joined;    /* sm_model_activation of a split run */
    size_t act_cap;
    int *params, n_params;   /* value indices of the float initializers */
    float **packed;          /* n_nodes, or NULL: each node's constant
                                inputs as its op packed them (op.h), NULL
                                when it packs none; kept across plans and
                                lanes, dropped with them */
    unsigned char *pack_asked; /* n_nodes: pack_size was asked */
    float **bwd_packed;      /* n_nodes, or NULL: the same for the
                                backward pass (op.h bwd_pack), packed
                                when a backward first meets the node */
    unsigned char *bwd_pack_asked; /* n_nodes: bwd_pack_size was asked */
    sm_tensor *pgrad;        /* n_params: gradients of the last backward */
};

/* One lane's share of a run or backward. */
typedef struct lane_job {
    const sm_model *m;
    plan *p;
    const sm_tensor *in[8];
    sm_tensor seed;          /* backward: this lane's rows of the seed */
    int out;                 /* backward: the output seeded */
    void (*fn)(struct lane_job *);
    const void *ctx;         /* relevance: the pass's rules (relevance.c) */
} lane_job;

/* Runs jobs[t].fn(&jobs[t]) for t < lanes (at most m->threads), in
 * parallel on the model's team (util/team.h). */
void sm_lanes_run(sm_model *m, lane_job *jobs, int lanes);

/* Jobs for a reverse sweep (backward or relevance) over the last run's
 * lanes: plan, output, fn, ctx and each lane's rows of the seed (borrowed).
 * jobs has m->last_lanes entries. */
void sm_lanes_seed_jobs(sm_model *m, int out, const sm_tensor *seed,
                        lane_job *jobs, void (*fn)(lane_job *),
                        const void *ctx);

/* Joins the first n0[t+1] - n0[t] rows of per-lane tensors of values
 * vals[0..nv) (from each plan's vals, or its grads when grads is 1) into
 * dst[0..nv), growing their buffers (capacities in cap). 0; 1 when a
 * value's first dim is not its lane's batch; -1 on out of memory. */
int sm_lanes_gather(const sm_model *m, plan *const *lp, const int64_t *n0,
                    int lanes,
                    const int *vals, int nv, int grads, sm_tensor *dst,
                    size_t *cap, sm_err *err);

/* The plan of lane ln for these input shapes: cached, or built (shapes
 * inferred and checked, buffers allocated, constant nodes folded). NULL with
 * a message when the shapes do not fit. */
plan *sm_plan_get(sm_model *m, lane *ln, const sm_tensor *const *in,
                  sm_err *err);

/* Runs node i of planned plan p as a run does: nothing when it is
 * folded or a Relu fused into its producer, with its producer's Relu
 * when one is fused into it. */
void sm_plan_run_node(const sm_model *m, plan *p, int i);

/* Frees every lane's plans (after the graph's constants changed). */
void sm_plan_drop_all(sm_model *m);

/* Node n's input and output views among a plan's values (NULL: absent). */
void sm_plan_node_io(const node *n, sm_tensor *vals, const sm_tensor **in,
                     sm_tensor **out);

/* --- Shared by backward.c and relevance.c -------------------------------- */

/* Checks that there was a run and that seed fits output out as the caller
 * saw it (joined over the lanes); pass names the sweep in the message. */
int sm_model_check_seed(const sm_model *m, int out, const sm_tensor *seed,
                        const char *pass, sm_err *err);

/* Allocates plan p's gradient buffers (which relevance also uses) once,
 * and packs its nodes' constants for the backward pass (sm_plan_pack_node)
 * the first time a plan meets them. 0, or -1 with a message. */
int sm_plan_ensure_grads(sm_model *m, plan *p, sm_err *err);

/* Packs node i's constant inputs for the forward pass (bwd 0: op.h pack)
 * or the backward pass (bwd 1: bwd_pack) the first time a plan meets it,
 * into m->packed[i] or m->bwd_packed[i], kept for every plan and lane
 * after; nothing when an input but the first is not constant (a trainable
 * parameter). is_const is indexed by value. 0, or -1 with a message. */
int sm_plan_pack_node(sm_model *m, int i, int bwd,
                      const unsigned char *is_const,
                      const sm_tensor *const *nin,
                      const sm_tensor *const *nout, sm_err *err);

/* A lane's reverse sweep starts here: zeroes the buffers of the values in
 * m->live, but for those whose skip[v] is 1 (NULL: none), and copies the
 * lane's seed onto the seeded output. Returns 1 when that output is a
 * constant (nothing flows), else 0. */
int sm_plan_seed(const lane_job *j, const unsigned char *skip);

/* Node i's step of a reverse sweep over plan p: adds its vector-Jacobian
 * products to the gradients of its inputs in m->live, or writes those of
 * m->bwd_fresh[i]'s bits; nothing when none of its outputs is live or it
 * is folded. */
void sm_plan_backward_node(const sm_model *m, plan *p, int i);

/* After a reverse sweep (backward or relevance) over every lane of the last
 * run: zeroes the inputs the sweep did not reach (m->live), then fills
 * grads[0..n_inputs) with each input's buffer, joined over the lanes when
 * the run was split. 0 or -1 with a message. */
int sm_model_input_grads(sm_model *m, const sm_tensor **grads, sm_err *err);

#endif
