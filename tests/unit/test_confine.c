/* Paths confined to root folders (util/confine.h): `..`, absolute paths
 * elsewhere and symlinks out are refused, symlinks that stay in are
 * taken, and a folder not made yet is judged by its nearest existing
 * parent. Real files and symlinks in a temporary folder. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tdata.h"
#include "util/confine.h"

TDATA_SUITE(confine);

/* dir/root (with data/a.png and out/) and dir/outside (with b.png); the
 * root resolved into *root. */
static void tree(char **root)
{
    char p[TDATA_PATH], q[TDATA_PATH];
    sm_err err;
    tdata_text(p, dir, "root/data/a.png", "x");
    tdata_text(p, dir, "outside/b.png", "y");
    cr_assert_eq(mkdir(tdata_path(p, dir, "root/out"), 0755), 0);
    cr_assert_eq(sm_confine_root(tdata_path(p, dir, "root"), "output_root", root,
                                 &err), 0, "%s", err.msg);
    /* a symlink that leads out, one that stays in, one to nothing */
    cr_assert_eq(symlink(tdata_path(q, dir, "outside"),
                         tdata_path(p, dir, "root/escape")), 0);
    cr_assert_eq(symlink("data", tdata_path(p, dir, "root/inner")), 0);
    cr_assert_eq(symlink(tdata_path(q, dir, "outside/nothing"),
                         tdata_path(p, dir, "root/dangling")), 0);
}

/* sm_confine_check of dir/rel (rel absolute: as is); 0 or -1, message in err. */
static int check(const char *root, const char *rel, int missing, sm_err *err)
{
    char p[TDATA_PATH];
    char *const roots[] = {(char *)root};
    const char *path = rel[0] == '/' ? rel : tdata_path(p, dir, rel);
    return sm_confine_check(path, roots, 1, missing, "out", "output_root", err);
}

Test(confine, inside_and_outside)
{
    char *root;
    sm_err err;
    tree(&root);
    cr_assert_eq(check(root, "root/data/a.png", 0, &err), 0, "%s", err.msg);
    cr_assert_eq(check(root, "root", 0, &err), 0, "the root itself: %s", err.msg);
    cr_assert_eq(check(root, "root/out/../data", 0, &err), 0, "'..' that stays in: %s",
                 err.msg);
    /* '..' out, an absolute path elsewhere, a sibling sharing the prefix */
    cr_assert_eq(check(root, "root/../outside/b.png", 0, &err), -1);
    cr_assert(tdata_has(err.msg, "outside output_root"), "%s", err.msg);
    cr_assert(tdata_has(err.msg, "/outside/b.png"), "names where it resolves: %s",
              err.msg);
    cr_assert_eq(check(root, "/etc/passwd", 0, &err), -1);
    cr_assert(tdata_has(err.msg, "out '/etc/passwd' resolves to /etc/passwd, "
                        "outside output_root ("), "%s", err.msg);
    char p[TDATA_PATH];
    tdata_text(p, dir, "rootx/c.png", "z"); /* "<root>x" starts with the root */
    cr_assert_eq(check(root, "rootx/c.png", 0, &err), -1, "a prefix is not a folder");
    free(root);
}

Test(confine, symlinks)
{
    char *root;
    sm_err err;
    tree(&root);
    cr_assert_eq(check(root, "root/escape/b.png", 0, &err), -1, "a symlink out");
    cr_assert(tdata_has(err.msg, "outside output_root"), "%s", err.msg);
    cr_assert_eq(check(root, "root/inner/a.png", 0, &err), 0, "a symlink in: %s",
                 err.msg);
    /* a root named through a symlink is resolved too */
    char p[TDATA_PATH], q[TDATA_PATH], *via;
    cr_assert_eq(symlink(tdata_path(q, dir, "root"), tdata_path(p, dir, "link")), 0);
    cr_assert_eq(sm_confine_root(p, "output_root", &via, &err), 0, "%s", err.msg);
    cr_assert_str_eq(via, root);
    free(via);
    /* a symlink to nothing: mkdir would make its target wherever it points */
    cr_assert_eq(check(root, "root/dangling/new", 1, &err), -1);
    cr_assert(tdata_has(err.msg, "is a symlink to nothing"), "%s", err.msg);
    free(root);
}

Test(confine, folders_not_made_yet)
{
    char *root;
    sm_err err;
    tree(&root);
    cr_assert_eq(check(root, "root/out/job1/deeper", 1, &err), 0, "%s", err.msg);
    cr_assert_eq(check(root, "root/new/", 1, &err), 0, "%s", err.msg);
    /* but only when the caller allows it */
    cr_assert_eq(check(root, "root/out/job1", 0, &err), -1);
    cr_assert(tdata_has(err.msg, "No such file"), "%s", err.msg);
    /* its nearest existing parent outside */
    cr_assert_eq(check(root, "outside/job2", 1, &err), -1);
    cr_assert(tdata_has(err.msg, "outside output_root"), "%s", err.msg);
    cr_assert_eq(check(root, "/nonexistent-salmap/x", 1, &err), -1);
    /* '..' in the part to be made climbs out once it exists */
    cr_assert_eq(check(root, "root/out/new/../../../outside/x", 1, &err), -1);
    cr_assert(tdata_has(err.msg, "'..' in a part that does not exist yet"), "%s",
              err.msg);
    /* relative paths resolve against the current folder */
    char cwd[TDATA_PATH], *here;
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    cr_assert_eq(chdir(root), 0);
    cr_assert_eq(sm_confine_root(".", "output_root", &here, &err), 0, "%s", err.msg);
    char *const roots[] = {here};
    cr_assert_eq(sm_confine_check("out/j", roots, 1, 1, "out", "output_root", &err), 0,
                 "%s", err.msg);
    cr_assert_eq(sm_confine_check("../outside", roots, 1, 1, "out", "output_root",
                                  &err), -1);
    cr_assert_eq(chdir(cwd), 0);
    free(here);
    free(root);
}

Test(confine, roots)
{
    char p[TDATA_PATH], *r = NULL;
    sm_err err;
    cr_assert_eq(sm_confine_root(tdata_path(p, dir, "nope"), "dataset_roots", &r, &err),
                 -1);
    cr_assert(tdata_has(err.msg, "dataset_roots: '"), "%s", err.msg);
    cr_assert(tdata_has(err.msg, "No such file"), "%s", err.msg);
    cr_assert_eq(sm_confine_root(tdata_text(p, dir, "file", "x"), "dataset_roots", &r,
                                 &err), -1);
    cr_assert(tdata_has(err.msg, "not a folder"), "%s", err.msg);
    cr_assert_null(r);
    /* several roots: inside any one */
    char *a, *b;
    tdata_text(p, dir, "a/x.png", "x");
    tdata_text(p, dir, "b/y.png", "y");
    cr_assert_eq(sm_confine_root(tdata_path(p, dir, "a"), "k", &a, &err), 0);
    cr_assert_eq(sm_confine_root(tdata_path(p, dir, "b"), "k", &b, &err), 0);
    char *const roots[] = {a, b};
    cr_assert_eq(sm_confine_check(tdata_path(p, dir, "b/y.png"), roots, 2, 0, "dataset",
                                  "dataset_roots", &err), 0, "%s", err.msg);
    cr_assert_eq(sm_confine_check(tdata_path(p, dir, "file"), roots, 2, 0, "dataset",
                                  "dataset_roots", &err), -1);
    cr_assert(tdata_has(err.msg, "outside dataset_roots ("), "%s", err.msg);
    cr_assert(tdata_has(err.msg, a) && tdata_has(err.msg, b), "names both roots: %s",
              err.msg);
    free(a);
    free(b);
}
