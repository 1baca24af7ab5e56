/* Confinement of paths to folders: is a path, once every `..` and
 * symlink is resolved (realpath), inside one of some root folders? The
 * broker checks with it the dataset and output folder a job names against
 * its config's dataset_roots and output_root (docs/DEPLOY.md, "Paths"), so
 * that `../`, absolute paths elsewhere and symlinks pointing out are
 * refused, while a symlink that stays inside is taken. */
#ifndef SM_CONFINE_H
#define SM_CONFINE_H

#include <stddef.h>

#include "util/err.h"

/* Resolves root (which must exist and be a folder) into resolved (a
 * PATH_MAX buffer, malloc'd; caller frees). 0, or -1 with "<key>: '<root>':
 * <why>". */
int sm_confine_root(const char *root, const char *key, char **resolved,
                    sm_err *err);

/* 0 when path resolves inside one of the n resolved roots (a root itself
 * counts as inside). A path that does not exist yet (an output folder) is
 * judged by its nearest existing ancestor, and the part that does not
 * exist may hold no `..` (mkdir -p would climb out with it) and no
 * dangling symlink. -1 with "<what> '<path>': ..." naming where it
 * resolves and the config key of the roots. */
int sm_confine_check(const char *path, char *const *roots, size_t n,
                     int may_be_missing, const char *what, const char *key,
                     sm_err *err);

#endif
