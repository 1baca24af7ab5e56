/* OUT/job.json: what is written is read back; a broken or foreign file is
 * refused naming the file and the key. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/jobinfo.h"
#include "tdata.h"

static sm_jobinfo sample(const sm_jobinfo_method *m, const char *const *w)
{
    return (sm_jobinfo){
        .id = "j1", .model = "models/m.onnx", .model_hash = "ab12",
        .dataset = "data/set", .channels = 3, .height = 32, .width = 40,
        .methods = m, .n_methods = 2, .seed = 7, .limit = 5,
        .target = "label", .score = "prob", .metrics = 1, .images = 5,
        .started = 1796600000, .finished = 1796600012.0, .workers = w,
        .n_workers = 2, .maps = 9, .failed = 1, .state = "done"};
}

Test(jobinfo, what_is_written_is_read_back)
{
    char *dir = tdata_tmpdir();
    sm_jobinfo_method m[2] = {{"sal", "{}", 0},
                              {"lime", "{\"samples\": 300, \"hide\": \"mean\"}", 1}};
    const char *w[2] = {"w1", "w \"2\""};
    sm_jobinfo in = sample(m, w);
    sm_err err = {0};
    cr_assert_eq(sm_jobinfo_write(dir, &in, &err), 0, "%s", err.msg);
    sm_jobinfo_file *f = sm_jobinfo_load(dir, &err);
    cr_assert_not_null(f, "%s", err.msg);
    const sm_jobinfo *ji = sm_jobinfo_of(f);
    cr_assert_str_eq(ji->id, "j1");
    cr_assert_null(ji->name);
    cr_assert_null(ji->config);
    cr_assert_str_eq(ji->dataset, "data/set");
    cr_assert(ji->channels == 3 && ji->height == 32 && ji->width == 40);
    cr_assert_eq(ji->n_methods, 2);
    cr_assert_str_eq(ji->methods[1].name, "lime");
    cr_assert_eq(ji->methods[1].signed_map, 1);
    cr_assert_eq(ji->methods[0].signed_map, 0);
    cr_assert_str_eq(ji->methods[1].params, "{\"samples\":300,\"hide\":\"mean\"}");
    cr_assert(ji->seed == 7 && ji->limit == 5 && ji->images == 5);
    cr_assert(ji->maps == 9 && ji->failed == 1 && ji->metrics == 1);
    cr_assert_str_eq(ji->target, "label");
    cr_assert_eq(ji->started, 1796600000.0);
    cr_assert_eq(ji->finished, 1796600012.0);
    cr_assert_eq(ji->n_workers, 2);
    cr_assert_str_eq(ji->workers[1], "w \"2\"");
    cr_assert_str_eq(ji->state, "done");
    cr_assert_eq(sm_jobinfo_method_find(ji, "lime"), &ji->methods[1]);
    cr_assert_null(sm_jobinfo_method_find(ji, "grad"));
    sm_jobinfo_file_destroy(&f);
    cr_assert_null(f);
    tdata_rmtree(dir);
}

Test(jobinfo, a_running_job_has_no_end)
{
    char *dir = tdata_tmpdir(), path[TDATA_PATH];
    sm_jobinfo_method m[2] = {{"sal", "{}", 0}, {"grad", "{}", 1}};
    const char *w[2] = {"w1", "w2"};
    sm_jobinfo in = sample(m, w);
    in.finished = 0;
    sm_err err = {0};
    cr_assert_eq(sm_jobinfo_write(dir, &in, &err), 0, "%s", err.msg);
    size_t len;
    FILE *fp = fopen(tdata_path(path, dir, "job.json"), "r");
    char text[4096];
    len = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[len] = '\0';
    cr_assert(tdata_has(text, "\"finished\": null"), "%s", text);
    sm_jobinfo_file *f = sm_jobinfo_load(dir, &err);
    cr_assert_not_null(f, "%s", err.msg);
    cr_assert_eq(sm_jobinfo_of(f)->finished, 0);
    sm_jobinfo_file_destroy(&f);
    tdata_rmtree(dir);
}

Test(jobinfo, a_bad_file_is_refused_naming_it_and_the_key)
{
    char *dir = tdata_tmpdir(), path[TDATA_PATH];
    sm_err err = {0};
    cr_assert_null(sm_jobinfo_load(dir, &err));
    cr_assert(tdata_has(err.msg, "job.json"), "%s", err.msg);
    tdata_text(path, dir, "job.json", "{\"salmap\": 1,\n \"id\": ");
    cr_assert_null(sm_jobinfo_load(dir, &err));
    cr_assert(tdata_has(err.msg, "job.json:2"), "%s", err.msg);
    tdata_text(path, dir, "job.json",
               "{\"dataset\": \"d\", \"input\": {\"channels\": 2, "
               "\"height\": 1, \"width\": 1}}");
    cr_assert_null(sm_jobinfo_load(dir, &err));
    cr_assert(tdata_has(err.msg, "input.channels"), "%s", err.msg);
    tdata_text(path, dir, "job.json", "[1, 2]");
    cr_assert_null(sm_jobinfo_load(dir, &err));
    cr_assert(tdata_has(err.msg, "(the document)"), "%s", err.msg);
    tdata_rmtree(dir);
}
