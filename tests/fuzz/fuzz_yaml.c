/* libFuzzer target for the YAML loaders (core/config/, the strict layer
 * over libcyaml, and core/explain/jobfile.c): the input as the text of a
 * model config, a broker and a worker config, a job file and an AAE file,
 * each parsed from memory except the AAE file (its loader takes a path:
 * an in-memory file). None may crash, leak or read past the input, which
 * is not NUL-terminated. A model config that loads must give usable
 * preprocessing. `make fuzz` builds it, `make fuzz-run` runs it
 * (tests/fuzz/corpus/yaml: the shipped configs, job files and model
 * YAMLs). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config/aae_config.h"
#include "config/daemon_config.h"
#include "config/model_config.h"
#include "data/image.h"
#include "explain/jobfile.h"
#include "tests/fuzz/memfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *yaml = (const char *)data;
    sm_err err = {0};

    sm_model_config *mc = sm_model_config_parse(yaml, size, "fuzz.yaml", &err);
    if (mc) {
        sm_preproc pp;
        sm_model_config_preproc(mc, &pp);
        if (sm_preproc_check(&pp, &err)) {
            fprintf(stderr, "fuzz_yaml: a model config that loads gives "
                    "unusable preprocessing: %s\n", err.msg);
            abort();
        }
        sm_model_config_destroy(&mc);
    }

    sm_broker_config bc;
    sm_broker_config_parse(yaml, size, "fuzz.yaml", &bc, &err);
    sm_worker_config wc;
    sm_worker_config_parse(yaml, size, "fuzz.yaml", &wc, &err);

    sm_jobfile *jf = NULL;
    sm_jobfile_parse(yaml, size, "fuzz.yaml", &jf, &err);
    sm_jobfile_destroy(&jf);

    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0)
        abort();
    sm_aae_config ac;
    if (sm_aae_config_load(path, &ac, &err) == 0)
        sm_aae_config_free(&ac);
    close(fd);
    return 0;
}
