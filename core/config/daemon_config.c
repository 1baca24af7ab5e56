#include "config/daemon_config.h"

#include <arpa/inet.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cyaml/cyaml.h>

#include "config/yaml_strict.h"
#include "util/file.h"

#define MIB ((size_t)1 << 20)
#define DEFAULT_MAX_MESSAGE (256 * MIB)
/* Above this a single message would not fit in memory alongside the
 * model and its buffers on any machine salmap is meant for. */
#define MAX_MESSAGE_MB 4096
/* A heartbeat or reconnect delay longer than an hour is a typo. */
#define MAX_SECONDS 3600.0

/* ---- what libcyaml loads ------------------------------------------------ */

/* Every value is loaded as text and converted by the field tables below,
 * so that numbers are parsed strictly and every message names its line
 * (config/yaml_strict.h says why libcyaml's own readers will not do). */
typedef struct raw_broker {
    char *client_endpoint, *worker_endpoint, *state_dir;
    char *heartbeat_interval, *heartbeat_liveness, *max_task_failures;
    char *max_message_mb, *max_parts, *task_timeout;
    char *curve_secret_key, *curve_allow_dir;
    char *insecure_allow_plaintext, *output_root;
    char **dataset_roots;
    unsigned dataset_roots_count;
} raw_broker;

typedef struct raw_worker {
    char *broker, *name, *capacity, *threads;
    char *heartbeat_interval, *heartbeat_liveness;
    char *reconnect_min, *reconnect_max, *max_message_mb, *model_cache;
    char *curve_server_key, *curve_secret_key;
} raw_worker;

/* Empty values are allowed by the schema ("curve_secret_key:" means no
 * CURVE); the conversion refuses them where a value is needed. */
#define OPT_TEXT(raw, key)                                                     \
    CYAML_FIELD_STRING_PTR(#key, CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER,     \
                           raw, key, 0, CYAML_UNLIMITED)

static const cyaml_schema_value_t root_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED)};

static const cyaml_schema_field_t broker_fields[] = {
    OPT_TEXT(raw_broker, client_endpoint),
    OPT_TEXT(raw_broker, worker_endpoint),
    OPT_TEXT(raw_broker, state_dir),
    OPT_TEXT(raw_broker, heartbeat_interval),
    OPT_TEXT(raw_broker, heartbeat_liveness),
    OPT_TEXT(raw_broker, max_task_failures),
    OPT_TEXT(raw_broker, max_message_mb),
    OPT_TEXT(raw_broker, max_parts),
    OPT_TEXT(raw_broker, task_timeout),
    OPT_TEXT(raw_broker, curve_secret_key),
    OPT_TEXT(raw_broker, curve_allow_dir),
    OPT_TEXT(raw_broker, insecure_allow_plaintext),
    OPT_TEXT(raw_broker, output_root),
    CYAML_FIELD_SEQUENCE("dataset_roots", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER,
                         raw_broker, dataset_roots, &root_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_field_t worker_fields[] = {
    OPT_TEXT(raw_worker, broker),
    OPT_TEXT(raw_worker, name),
    OPT_TEXT(raw_worker, capacity),
    OPT_TEXT(raw_worker, threads),
    OPT_TEXT(raw_worker, heartbeat_interval),
    OPT_TEXT(raw_worker, heartbeat_liveness),
    OPT_TEXT(raw_worker, reconnect_min),
    OPT_TEXT(raw_worker, reconnect_max),
    OPT_TEXT(raw_worker, max_message_mb),
    OPT_TEXT(raw_worker, model_cache),
    OPT_TEXT(raw_worker, curve_server_key),
    OPT_TEXT(raw_worker, curve_secret_key),
    CYAML_FIELD_END};

static const cyaml_schema_value_t broker_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_broker, broker_fields)};
static const cyaml_schema_value_t worker_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_worker, worker_fields)};

/* ---- field tables ------------------------------------------------------- */

typedef enum field_kind {
    F_PATH,     /* char[size]; may be empty */
    F_NAME,     /* char[size]; may be empty */
    F_ENDPOINT, /* char[size]; transport://address */
    F_INT,      /* int in [min, max] */
    F_SECONDS,  /* double in (0, MAX_SECONDS] */
    F_MIB,      /* size_t bytes, given in whole MiB in [1, MAX_MESSAGE_MB] */
    F_BOOL,     /* int 0 or 1, given as false or true */
} field_kind;

typedef struct field {
    const char *key;
    field_kind kind;
    size_t raw_off; /* of the char * in the raw struct */
    size_t cfg_off; /* of the value in the config */
    size_t size;    /* strings: the array's bytes */
    int min, max;   /* F_INT */
} field;

#define TEXT(raw, cfg, key, kind)                                              \
    {#key, kind, offsetof(raw, key), offsetof(cfg, key),                       \
     sizeof ((cfg *)0)->key, 0, 0}
#define NUM(raw, cfg, key, kind, min, max)                                     \
    {#key, kind, offsetof(raw, key), offsetof(cfg, key), 0, min, max}

static const field broker_table[] = {
    TEXT(raw_broker, sm_broker_config, client_endpoint, F_ENDPOINT),
    TEXT(raw_broker, sm_broker_config, worker_endpoint, F_ENDPOINT),
    TEXT(raw_broker, sm_broker_config, state_dir, F_PATH),
    NUM(raw_broker, sm_broker_config, heartbeat_interval, F_SECONDS, 0, 0),
    NUM(raw_broker, sm_broker_config, heartbeat_liveness, F_INT, 1, 1000),
    NUM(raw_broker, sm_broker_config, max_task_failures, F_INT, 1, 1000),
    {"max_message_mb", F_MIB, offsetof(raw_broker, max_message_mb),
     offsetof(sm_broker_config, max_message), 0, 0, 0},
    NUM(raw_broker, sm_broker_config, max_parts, F_INT, 1, 1024),
    NUM(raw_broker, sm_broker_config, task_timeout, F_INT, 0, 604800),
    TEXT(raw_broker, sm_broker_config, curve_secret_key, F_PATH),
    TEXT(raw_broker, sm_broker_config, curve_allow_dir, F_PATH),
    NUM(raw_broker, sm_broker_config, insecure_allow_plaintext, F_BOOL, 0, 1),
    TEXT(raw_broker, sm_broker_config, output_root, F_PATH),
};

static const field worker_table[] = {
    TEXT(raw_worker, sm_worker_config, broker, F_ENDPOINT),
    TEXT(raw_worker, sm_worker_config, name, F_NAME),
    NUM(raw_worker, sm_worker_config, capacity, F_INT, 1, 4096),
    NUM(raw_worker, sm_worker_config, threads, F_INT, 0, 4096),
    NUM(raw_worker, sm_worker_config, heartbeat_interval, F_SECONDS, 0, 0),
    NUM(raw_worker, sm_worker_config, heartbeat_liveness, F_INT, 1, 1000),
    NUM(raw_worker, sm_worker_config, reconnect_min, F_SECONDS, 0, 0),
    NUM(raw_worker, sm_worker_config, reconnect_max, F_SECONDS, 0, 0),
    {"max_message_mb", F_MIB, offsetof(raw_worker, max_message_mb),
     offsetof(sm_worker_config, max_message), 0, 0, 0},
    NUM(raw_worker, sm_worker_config, model_cache, F_INT, 1, 4096),
    TEXT(raw_worker, sm_worker_config, curve_server_key, F_PATH),
    TEXT(raw_worker, sm_worker_config, curve_secret_key, F_PATH),
};

/* ---- conversion --------------------------------------------------------- */

static int check_endpoint(const char *s, sm_err *err)
{
    /* libzmq's transports are lower-case words; the address is checked by
     * zmq_bind / zmq_connect, which know each transport's syntax. */
    size_t t = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789");
    if (t == 0 || strncmp(s + t, "://", 3) != 0 || !s[t + 3] ||
        strpbrk(s, " \t\r\n"))
        return sm_err_set(err, "'%s' is not of the form transport://address "
                          "(e.g. tcp://*:5555)", s);
    return 0;
}

static int copy_text(char *dst, size_t size, const char *s, sm_err *err)
{
    size_t n = strlen(s);
    if (n >= size)
        return sm_err_set(err, "longer than %zu characters", size - 1);
    memcpy(dst, s, n + 1);
    return 0;
}

int sm_daemon_set_endpoint(char *dst, const char *endpoint, sm_err *err)
{
    return check_endpoint(endpoint, err) ||
                   copy_text(dst, SM_ENDPOINT_MAX, endpoint, err)
               ? -1
               : 0;
}

int sm_daemon_endpoint_loopback(const char *ep)
{
    if (!strncmp(ep, "ipc://", 6) || !strncmp(ep, "inproc://", 9))
        return 1;
    if (strncmp(ep, "tcp://", 6) != 0)
        return 0;
    char host[SM_ENDPOINT_MAX];
    const char *h = ep + 6, *colon = strrchr(h, ':');
    size_t n = colon ? (size_t)(colon - h) : strlen(h);
    if (n >= sizeof host)
        return 0;
    memcpy(host, h, n);
    host[n] = '\0';
    if (!strcmp(host, "localhost"))
        return 1;
    unsigned char a[16];
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127;
    if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
        host[n - 1] = '\0';
        return inet_pton(AF_INET6, host + 1, a) == 1 &&
               !memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16);
    }
    return 0;
}

int sm_daemon_set_path(char *dst, const char *path, sm_err *err)
{
    return copy_text(dst, SM_DAEMON_PATH_MAX, path, err);
}

/* Sets one field of cfg from text; -1 with a message without the key. */
static int set_field(const field *f, const char *s, void *cfg, sm_err *err)
{
    char *at = (char *)cfg + f->cfg_off;
    int i;
    float x;
    switch (f->kind) {
    case F_ENDPOINT:
        if (check_endpoint(s, err))
            return -1;
        /* fall through */
    case F_PATH:
    case F_NAME:
        return copy_text(at, f->size, s, err);
    case F_INT:
        if (sm_yaml_parse_int(s, &i))
            return sm_err_set(err, "'%s' is not an integer", s);
        if (i < f->min || i > f->max)
            return sm_err_set(err, "must be in %d..%d, not %d", f->min,
                              f->max, i);
        memcpy(at, &i, sizeof i);
        return 0;
    case F_SECONDS: {
        /* The float parser checks the text (finite, decimal, nothing
         * after); strtod then reads it at double precision. */
        if (sm_yaml_parse_float(s, &x))
            return sm_err_set(err, "'%s' is not a number of seconds", s);
        double d = strtod(s, NULL);
        if (!(d > 0 && d <= MAX_SECONDS))
            return sm_err_set(err, "must be > 0 and at most %g seconds, not "
                              "%s", MAX_SECONDS, s);
        memcpy(at, &d, sizeof d);
        return 0;
    }
    case F_BOOL:
        if (strcmp(s, "true") && strcmp(s, "false"))
            return sm_err_set(err, "'%s' is neither true nor false", s);
        i = !strcmp(s, "true");
        memcpy(at, &i, sizeof i);
        return 0;
    case F_MIB: {
        if (sm_yaml_parse_int(s, &i))
            return sm_err_set(err, "'%s' is not a whole number of MiB", s);
        if (i < 1 || i > MAX_MESSAGE_MB)
            return sm_err_set(err, "must be in 1..%d (MiB), not %d",
                              MAX_MESSAGE_MB, i);
        size_t bytes = (size_t)i * MIB;
        memcpy(at, &bytes, sizeof bytes);
        return 0;
    }
    }
    return sm_err_set(err, "unknown field kind");
}

/* Every field the file gives, into cfg. */
static int convert(const field *table, size_t n, const void *raw, void *cfg,
                   const sm_yaml_keys *ix, const char *name, sm_err *err)
{
    for (size_t k = 0; k < n; k++) {
        const field *f = &table[k];
        const char *s = *(char *const *)((const char *)raw + f->raw_off);
        if (!s)
            continue;
        if (!*s && f->kind != F_PATH && f->kind != F_NAME)
            return sm_err_set(err, "%s:%d: %s: needs a value", name,
                              sm_yaml_line(ix, f->key, 0), f->key);
        if (set_field(f, s, cfg, err))
            return sm_err_prefix(err, "%s:%d: %s", name,
                                 sm_yaml_line(ix, f->key, 0), f->key);
    }
    return 0;
}

/* ---- the two daemons ---------------------------------------------------- */

static int has_key(const sm_yaml_keys *ix, const char *path)
{
    for (int i = 0; i < ix->n; i++)
        if (strcmp(ix->keys[i].path, path) == 0)
            return 1;
    return 0;
}

/* The list of dataset_roots: each a folder path, at most
 * SM_DATASET_ROOTS_MAX. */
static int convert_roots(const raw_broker *r, sm_broker_config *c,
                         const sm_yaml_keys *ix, const char *name, sm_err *err)
{
    int line = sm_yaml_line(ix, "dataset_roots", 0);
    if (r->dataset_roots_count > SM_DATASET_ROOTS_MAX)
        return sm_err_set(err, "%s:%d: dataset_roots: %u folders, at most %d",
                          name, line, r->dataset_roots_count,
                          SM_DATASET_ROOTS_MAX);
    for (unsigned k = 0; k < r->dataset_roots_count; k++) {
        const char *s = r->dataset_roots[k];
        if (!s[0])
            return sm_err_set(err, "%s:%d: dataset_roots[%u]: an empty path",
                              name, line, k);
        if (copy_text(c->dataset_roots[k], sizeof c->dataset_roots[k], s, err))
            return sm_err_prefix(err, "%s:%d: dataset_roots[%u]", name, line, k);
    }
    c->n_dataset_roots = (int)r->dataset_roots_count;
    return 0;
}

/* Checks across keys, run once every key is converted. */
static int check_broker(const void *raw, void *cfg, const sm_yaml_keys *ix,
                        const char *name, sm_err *err)
{
    sm_broker_config *c = cfg;
    if (raw && convert_roots(raw, c, ix, name, err))
        return -1;
    if (!c->state_dir[0])
        return sm_err_set(err, "%s:%d: state_dir: needs a folder", name,
                          sm_yaml_line(ix, "state_dir", 0));
    /* An allowlist without CURVE would check nothing: refuse it rather
     * than run open while the operator believes peers are checked. */
    if (c->curve_allow_dir[0] && !c->curve_secret_key[0])
        return sm_err_set(err, "%s:%d: curve_allow_dir: needs "
                          "curve_secret_key (an allowlist without CURVE "
                          "checks nothing)", name,
                          sm_yaml_line(ix, "curve_allow_dir", 0));
    return 0;
}

static int check_worker(const void *raw, void *cfg, const sm_yaml_keys *ix,
                        const char *name, sm_err *err)
{
    (void)raw;
    const sm_worker_config *c = cfg;
    if (c->reconnect_max < c->reconnect_min) {
        /* Blame the key the file gives: reconnect_max when it is there,
         * else reconnect_min, set above the default maximum. */
        if (has_key(ix, "reconnect_max"))
            return sm_err_set(err, "%s:%d: reconnect_max: %g is below "
                              "reconnect_min (%g)", name,
                              sm_yaml_line(ix, "reconnect_max", 0),
                              c->reconnect_max, c->reconnect_min);
        return sm_err_set(err, "%s:%d: reconnect_min: %g is above "
                          "reconnect_max (%g)", name,
                          sm_yaml_line(ix, "reconnect_min", 0),
                          c->reconnect_min, c->reconnect_max);
    }
    /* CURVE needs both keys: with one alone the worker could not connect,
     * and silently running in the clear would be worse. */
    if (!c->curve_server_key[0] != !c->curve_secret_key[0]) {
        int server = c->curve_server_key[0] != '\0';
        const char *given = server ? "curve_server_key" : "curve_secret_key";
        const char *other = server ? "curve_secret_key" : "curve_server_key";
        return sm_err_set(err, "%s:%d: %s: needs %s too (CURVE takes both)",
                          name, sm_yaml_line(ix, given, 0), given, other);
    }
    return 0;
}

typedef union any_config {
    sm_broker_config broker;
    sm_worker_config worker;
} any_config;

typedef struct daemon_kind {
    const cyaml_schema_value_t *schema;
    const field *table;
    size_t n_fields;
    size_t size; /* of its config */
    /* what the table cannot convert (lists), and checks across keys */
    int (*check)(const void *raw, void *cfg, const sm_yaml_keys *ix,
                 const char *name, sm_err *err);
} daemon_kind;

static const daemon_kind broker_kind = {
    &broker_schema, broker_table, sizeof broker_table / sizeof *broker_table,
    sizeof(sm_broker_config), check_broker};
static const daemon_kind worker_kind = {
    &worker_schema, worker_table, sizeof worker_table / sizeof *worker_table,
    sizeof(sm_worker_config), check_worker};

/* The defaults in *c overridden by the YAML; copied to *cfg on success
 * only, so that a failed load leaves the caller's config as it was. */
static int parse(const daemon_kind *k, const char *yaml, size_t len,
                 const char *name, any_config *c, void *cfg, sm_err *err)
{
    sm_yaml_keys ix = {0};
    void *raw = NULL;
    int rc = sm_yaml_load(yaml, len, name, k->schema, &raw, &ix, err);
    if (rc == 0 && raw)
        rc = convert(k->table, k->n_fields, raw, c, &ix, name, err);
    if (rc == 0)
        rc = k->check(raw, c, &ix, name, err);
    sm_yaml_free(k->schema, raw);
    sm_yaml_keys_free(&ix);
    if (rc == 0)
        memcpy(cfg, c, k->size);
    return rc;
}

static int load_file(const daemon_kind *k, const char *path, any_config *c,
                     void *cfg, sm_err *err)
{
    size_t len;
    unsigned char *buf =
        sm_file_read(path, SM_DAEMON_CONFIG_MAX_BYTES, &len, err);
    if (!buf)
        return -1;
    int rc = parse(k, (const char *)buf, len, path, c, cfg, err);
    free(buf);
    return rc;
}

/* ---- public ------------------------------------------------------------- */

void sm_broker_config_defaults(sm_broker_config *cfg)
{
    *cfg = (sm_broker_config){
        .client_endpoint = "tcp://127.0.0.1:5555",
        .worker_endpoint = "tcp://127.0.0.1:5556",
        .state_dir = "state",
        .heartbeat_interval = 1.0,
        .heartbeat_liveness = 3,
        .max_task_failures = 3,
        .max_message = DEFAULT_MAX_MESSAGE,
        .max_parts = 16,
        .task_timeout = 3600,
    };
}

void sm_worker_config_defaults(sm_worker_config *cfg)
{
    *cfg = (sm_worker_config){
        .broker = "tcp://localhost:5556",
        .capacity = 2,
        .threads = 0,
        .heartbeat_interval = 1.0,
        .heartbeat_liveness = 3,
        .reconnect_min = 0.25,
        .reconnect_max = 8.0,
        .max_message = DEFAULT_MAX_MESSAGE,
        .model_cache = 4,
    };
}

int sm_broker_config_parse(const char *yaml, size_t len, const char *name,
                           sm_broker_config *cfg, sm_err *err)
{
    any_config c;
    sm_broker_config_defaults(&c.broker);
    return parse(&broker_kind, yaml, len, name, &c, cfg, err);
}

int sm_worker_config_parse(const char *yaml, size_t len, const char *name,
                           sm_worker_config *cfg, sm_err *err)
{
    any_config c;
    sm_worker_config_defaults(&c.worker);
    return parse(&worker_kind, yaml, len, name, &c, cfg, err);
}

int sm_broker_config_load(const char *path, sm_broker_config *cfg,
                          sm_err *err)
{
    any_config c;
    sm_broker_config_defaults(&c.broker);
    return load_file(&broker_kind, path, &c, cfg, err);
}

int sm_worker_config_load(const char *path, sm_worker_config *cfg,
                          sm_err *err)
{
    any_config c;
    sm_worker_config_defaults(&c.worker);
    return load_file(&worker_kind, path, &c, cfg, err);
}

int sm_daemon_args(int argc, char **argv, const sm_daemon_opt *opts,
                   sm_err *err)
{
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return 1;
        const sm_daemon_opt *o = opts;
        while (o->name && strcmp(o->name, a) != 0)
            o++;
        if (!o->name)
            return sm_err_set(err, "unknown option '%s'", a);
        if (i + 1 >= argc)
            return sm_err_set(err, "%s needs a value", a);
        *o->value = argv[i + 1];
    }
    return 0;
}

static atomic_int stop_flag; /* set by on_signal only */

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_flag, 1);
}

atomic_int *sm_daemon_stop_on_signals(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return &stop_flag;
}
