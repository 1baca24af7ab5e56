#include "broker/journal.h"

#include <sqlite3.h>
#include <stdlib.h>

struct sm_journal {
    sqlite3 *db;
};

static int db_err(sm_journal *j, const char *what, sm_err *err)
{
    return sm_err_set(err, "journal: %s: %s", what, sqlite3_errmsg(j->db));
}

sm_journal *sm_journal_open(const char *path, sm_err *err)
{
    sm_journal *j = calloc(1, sizeof *j);
    if (!j) {
        sm_err_set(err, "out of memory");
        return NULL;
    }
    if (sqlite3_open(path ? path : ":memory:", &j->db) != SQLITE_OK) {
        sm_err_set(err, "journal %s: %s", path ? path : ":memory:",
                   j->db ? sqlite3_errmsg(j->db) : "cannot open");
        sm_journal_destroy(&j);
        return NULL;
    }
    /* WAL: a crash mid-write leaves the last committed state. */
    const char *schema =
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
        "CREATE TABLE IF NOT EXISTS jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " id TEXT UNIQUE NOT NULL, body BLOB NOT NULL, state TEXT NOT NULL,"
        " error TEXT, maps_done INTEGER DEFAULT 0, maps_failed INTEGER DEFAULT 0);";
    char *msg = NULL;
    if (sqlite3_exec(j->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        sm_err_set(err, "journal %s: %s", path ? path : ":memory:",
                   msg ? msg : "cannot create its table");
        sqlite3_free(msg);
        sm_journal_destroy(&j);
        return NULL;
    }
    return j;
}

void sm_journal_destroy(sm_journal **j)
{
    if (!j || !*j)
        return;
    sqlite3_close((*j)->db);
    free(*j);
    *j = NULL;
}

int sm_journal_add(sm_journal *j, const char *id, const void *body,
                   size_t len, sm_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(j->db, "INSERT INTO jobs (id, body, state) "
                           "VALUES (?, ?, 'queued')", -1, &st, NULL) != SQLITE_OK)
        return db_err(j, "add", err);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, body, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_err(j, "add", err);
    sqlite3_finalize(st);
    return rc;
}

int sm_journal_set(sm_journal *j, const char *id, const char *state,
                   const char *error, uint64_t maps_done, uint64_t maps_failed,
                   sm_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(j->db, "UPDATE jobs SET state = ?, error = ?, "
                           "maps_done = ?, maps_failed = ? WHERE id = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return db_err(j, "update", err);
    sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
    if (error)
        sqlite3_bind_text(st, 2, error, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)maps_done);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)maps_failed);
    sqlite3_bind_text(st, 5, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_err(j, "update", err);
    sqlite3_finalize(st);
    return rc;
}

int sm_journal_delete(sm_journal *j, const char *id, sm_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(j->db, "DELETE FROM jobs WHERE id = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return db_err(j, "delete", err);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_err(j, "delete", err);
    sqlite3_finalize(st);
    return rc;
}

int sm_journal_each(sm_journal *j, int (*fn)(const sm_journal_row *r, void *u),
                    void *u, sm_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(j->db, "SELECT id, body, state, error, maps_done, "
                           "maps_failed FROM jobs ORDER BY seq", -1, &st,
                           NULL) != SQLITE_OK)
        return db_err(j, "read", err);
    int rc = 0, s;
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        sm_journal_row r = {
            .id = (const char *)sqlite3_column_text(st, 0),
            .body = sqlite3_column_blob(st, 1),
            .len = (size_t)sqlite3_column_bytes(st, 1),
            .state = (const char *)sqlite3_column_text(st, 2),
            .error = (const char *)sqlite3_column_text(st, 3),
            .maps_done = (uint64_t)sqlite3_column_int64(st, 4),
            .maps_failed = (uint64_t)sqlite3_column_int64(st, 5),
        };
        if (!r.id || !r.state)
            rc = sm_err_set(err, "journal: a job row without id or state");
        else
            rc = fn(&r, u);
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = db_err(j, "read", err);
    sqlite3_finalize(st);
    return rc;
}
