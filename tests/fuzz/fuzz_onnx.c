/* libFuzzer target for the ONNX reader and the model engine: the input as
 * a serialized ModelProto to sm_model_load_buffer (protobuf decoding,
 * core/onnx's tensor and attribute readers, graph building, BatchNorm
 * folding, the shape check and plan for the declared input shape). A
 * model that loads and whose inputs are small is run once on a fixed
 * input and, when that works, back-propagated from output 0, so that the
 * operators' kernels and gradients see the shapes the planner accepted.
 * `make fuzz` builds it, `make fuzz-run` runs it (tests/fuzz/corpus/onnx:
 * small models of the fixtures and of the ONNX node tests). */
#include <stdint.h>
#include <stdlib.h>

#include "model/model.h"

/* Inputs with more elements than this are loaded (and planned) but not
 * run: a run costs time in proportion, and the planner has checked the
 * shapes already. */
#define MAX_RUN_ELEMS 4096

static void run_once(sm_model *m)
{
    sm_err err = {0};
    int n_in = sm_model_n_inputs(m), n_out = sm_model_n_outputs(m);
    if (n_in < 1 || n_in > 8 || n_out < 1)
        return;
    sm_tensor *in[8] = {0};
    const sm_tensor *cin[8];
    const sm_tensor **out = calloc((size_t)n_out, sizeof *out);
    const sm_tensor **grads = calloc((size_t)n_in, sizeof *grads);
    sm_tensor *seed = NULL;
    int ok = out && grads;
    for (int i = 0; ok && i < n_in; i++) {
        int64_t shape[SM_MAX_DIMS];
        int rank = sm_model_input_shape(m, i, shape);
        for (int d = 0; d < rank; d++)
            shape[d] = shape[d] < 0 ? 1 : shape[d];
        int64_t numel = sm_shape_numel(rank, shape);
        if (numel < 0 || numel > MAX_RUN_ELEMS ||
            !(in[i] = sm_tensor_new(rank, shape))) {
            ok = 0;
            break;
        }
        for (int64_t k = 0; k < numel; k++)
            in[i]->data[k] = (float)(k % 7 - 3) * 0.25f;
        cin[i] = in[i];
    }
    if (ok && sm_model_run(m, cin, n_in, out, &err) == 0 &&
        (seed = sm_tensor_new(out[0]->ndim, out[0]->shape))) {
        /* numel once: an output can be large (a Conv's padding), and the
         * instrumented call at every element made such inputs time out */
        const int64_t n = sm_tensor_numel(seed);
        for (int64_t k = 0; k < n; k++)
            seed->data[k] = 1.0f;
        sm_model_backward(m, 0, seed, grads, &err);
    }
    sm_tensor_destroy(&seed);
    for (int i = 0; i < n_in; i++)
        sm_tensor_destroy(&in[i]);
    free(out);
    free(grads);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sm_err err = {0};
    sm_model *m = sm_model_load_buffer(data, size, "fuzz.onnx", &err);
    if (m) {
        run_once(m);
        sm_model_destroy(&m);
    }
    return 0;
}
