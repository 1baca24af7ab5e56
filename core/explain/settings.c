#include "explain/settings.h"

#include <stdlib.h>
#include <string.h>

int sm_settings_split(const char *set, char *method, size_t mcap, char *key,
                      size_t kcap, const char **value, sm_err *err)
{
    const char *dot = strchr(set, '.'), *eq = strchr(set, '=');
    if (!dot || !eq || eq < dot || dot == set || eq == dot + 1)
        return sm_err_set(err, "setting '%s': expected method.key=value", set);
    size_t ml = (size_t)(dot - set), kl = (size_t)(eq - dot - 1);
    if (ml >= mcap || kl >= kcap)
        return sm_err_set(err, "setting '%s': name too long", set);
    memcpy(method, set, ml);
    method[ml] = '\0';
    memcpy(key, dot + 1, kl);
    key[kl] = '\0';
    *value = eq + 1;
    return 0;
}

sm_explainer *sm_settings_explainer(const char *name,
                                    const char *const *settings, size_t n,
                                    sm_err *err)
{
    sm_explainer *e = sm_explainer_new(name, err);
    if (e && sm_settings_apply(e, settings, n, err))
        sm_explainer_destroy(&e);
    return e;
}

int sm_settings_apply(sm_explainer *e, const char *const *settings, size_t n,
                      sm_err *err)
{
    const char *name = sm_explainer_class_of(e)->name;
    for (size_t k = 0; k < n; k++) {
        const char *eq = strchr(settings[k], '=');
        char key[64];
        if (!eq || eq == settings[k] || (size_t)(eq - settings[k]) >= sizeof key)
            return sm_err_set(err, "%s: setting '%s': expected key=value",
                              name, settings[k]);
        memcpy(key, settings[k], (size_t)(eq - settings[k]));
        key[eq - settings[k]] = '\0';
        if (sm_explainer_set(e, key, eq + 1, err))
            return -1;
    }
    return 0;
}

int sm_settings_explainers(const char *const *methods, size_t n_methods,
                           const char *const *settings, size_t n_settings,
                           sm_explainer **ex, sm_err *err)
{
    if (n_methods < 1)
        return sm_err_set(err, "no methods to run");
    for (size_t m = 0; m < n_methods; m++) {
        for (size_t k = 0; k < m; k++)
            if (strcmp(methods[k], methods[m]) == 0)
                return sm_err_set(err, "method '%s' is listed twice", methods[m]);
        if (!(ex[m] = sm_explainer_new(methods[m], err)))
            return -1;
    }
    for (size_t k = 0; k < n_settings; k++) {
        char method[64], key[64];
        const char *value;
        if (sm_settings_split(settings[k], method, sizeof method, key,
                              sizeof key, &value, err))
            return -1;
        size_t m = 0;
        while (m < n_methods && strcmp(methods[m], method) != 0)
            m++;
        if (m == n_methods)
            return sm_err_set(err, "setting '%s': %s is not among the methods "
                              "asked for", settings[k], method);
        if (sm_explainer_set(ex[m], key, value, err))
            return sm_err_prefix(err, "setting '%s'", settings[k]);
    }
    return 0;
}

void sm_settings_of(const char *method, const char *const *settings,
                    size_t n_settings, const char **out, size_t *n)
{
    size_t ml = strlen(method);
    *n = 0;
    for (size_t k = 0; k < n_settings; k++)
        if (strncmp(settings[k], method, ml) == 0 && settings[k][ml] == '.')
            out[(*n)++] = settings[k] + ml + 1;
}
