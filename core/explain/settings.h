/* Method settings as text: "method.key=value" (the command line's --set,
 * a job file's params, the wire's SUBMIT) and "key=value" (one method's
 * share of them, as a task carries it). */
#ifndef SM_EXPLAIN_SETTINGS_H
#define SM_EXPLAIN_SETTINGS_H

#include <stddef.h>

#include "explain/explainer.h"

/* Splits "method.key=value": method and key into the buffers (cap bytes
 * each), *value points into set. -1 with a message naming set when it is
 * not of that form or a name is too long. */
int sm_settings_split(const char *set, char *method, size_t mcap, char *key,
                      size_t kcap, const char **value, sm_err *err);

/* The method `name` with its defaults and then the "key=value" settings
 * applied in order; NULL with a message naming the method and setting. */
sm_explainer *sm_settings_explainer(const char *name,
                                    const char *const *settings, size_t n,
                                    sm_err *err);

/* The same for e, whatever its class: the "key=value" settings[0..n)
 * applied. 0 or -1 with a message naming the method. */
int sm_settings_apply(sm_explainer *e, const char *const *settings, size_t n,
                      sm_err *err);

/* Checks "method.key=value" settings against the methods of a job: each
 * method must be among them, and is listed at most once. Then creates one
 * explainer a method into ex[0..n_methods) (NULL-initialised by the
 * caller; on failure those made are left for the caller to destroy).
 * 0 or -1 with a message naming the setting or method. */
int sm_settings_explainers(const char *const *methods, size_t n_methods,
                           const char *const *settings, size_t n_settings,
                           sm_explainer **ex, sm_err *err);

/* The settings of one method: "method.key=value" -> "key=value", pointers
 * into settings (borrowed) stored in out[0..*n) (out has room for
 * n_settings). */
void sm_settings_of(const char *method, const char *const *settings,
                    size_t n_settings, const char **out, size_t *n);

#endif
