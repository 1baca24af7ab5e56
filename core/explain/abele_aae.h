/* The autoencoder a job's abele needs, found and checked when the job is
 * submitted: the YAML `salmap train-aae` wrote (setting abele.aae, or by
 * default <model's folder>/<model's name up to its first '_'>_aae.yaml,
 * models/mnist_cnn.onnx -> models/mnist_aae.yaml), its input the model's,
 * its three nets added to the job's auxiliary models as aae_encoder,
 * aae_decoder and aae_discriminator (travelling by content hash like the
 * model). */
#ifndef SM_EXPLAIN_ABELE_AAE_H
#define SM_EXPLAIN_ABELE_AAE_H

#include "explain/explainer.h"
#include "explain/job.h"

#define SM_ABELE_PATH 4096

/* Storage for the job's auxiliary model lists once the nets are added. */
typedef struct sm_abele_aux {
    const char *names[SM_EXPLAIN_MAX_AUX], *paths[SM_EXPLAIN_MAX_AUX];
    char yaml[SM_ABELE_PATH];
    char nets[3][SM_ABELE_PATH];
} sm_abele_aux;

/* When job's methods include abele: its autoencoder's nets appended to the
 * job's auxiliary models (job->aux_names and aux_paths then point into a,
 * which must outlive the job's use; names the job gives itself win). 0,
 * also without abele; -1 with a message that names the YAML looked for
 * and how to train one (none there), or the mismatch (another input
 * size, a bad net). */
int sm_abele_job_aux(sm_explain_job *job, sm_abele_aux *a, sm_err *err);

#endif
