/* Every saliency method, one line each. */
#include <string.h>

#include "explain/explainer.h"

extern const sm_explainer_class sm_explainer_sal;
extern const sm_explainer_class sm_explainer_grad;
extern const sm_explainer_class sm_explainer_intg;
extern const sm_explainer_class sm_explainer_smoothgrad;
extern const sm_explainer_class sm_explainer_gradcam;
extern const sm_explainer_class sm_explainer_elrp;
extern const sm_explainer_class sm_explainer_occlusion;
extern const sm_explainer_class sm_explainer_rise;
extern const sm_explainer_class sm_explainer_extremal;
extern const sm_explainer_class sm_explainer_lime;
extern const sm_explainer_class sm_explainer_kernelshap;
extern const sm_explainer_class sm_explainer_anchor;
extern const sm_explainer_class sm_explainer_lore;
extern const sm_explainer_class sm_explainer_abele;

static const sm_explainer_class *const all[] = {
    &sm_explainer_sal,
    &sm_explainer_grad,
    &sm_explainer_intg,
    &sm_explainer_smoothgrad,
    &sm_explainer_gradcam,
    &sm_explainer_elrp,
    &sm_explainer_occlusion,
    &sm_explainer_rise,
    &sm_explainer_extremal,
    &sm_explainer_lime,
    &sm_explainer_kernelshap,
    &sm_explainer_anchor,
    &sm_explainer_lore,
    &sm_explainer_abele,
    NULL,
};

const sm_explainer_class *sm_explainer_find(const char *name)
{
    for (int i = 0; all[i]; i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}

const sm_explainer_class *const *sm_explainer_all(void)
{
    return all;
}
