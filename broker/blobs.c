#include "broker/blobs.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/path.h"
#include "schemas/msg.h"
#include "util/file.h"

int sm_blobs_path(const char *dir, const char *hash, char *buf, size_t cap)
{
    struct stat st;
    if (!sm_hash_valid(hash) ||
        snprintf(buf, cap, "%s/%s", dir, hash) >= (int)cap)
        return 0;
    return stat(buf, &st) == 0 && S_ISREG(st.st_mode);
}

int sm_blobs_put(const char *dir, const char *hash, const void *data,
                 size_t len, sm_err *err)
{
    char have[SM_HASH_HEX + 1], path[BPATH_MAX];
    if (!sm_hash_valid(hash))
        return sm_err_set(err, "'%.80s' is not a content hash", hash);
    sm_hash_hex(data, len, have);
    if (strcmp(have, hash) != 0)
        return sm_err_set(err, "blob %s: its bytes hash to %s", hash, have);
    if (sm_blobs_path(dir, hash, path, sizeof path))
        return 0; /* content-addressed: the same bytes are there */
    return sm_file_mkdirs(dir, err) || sm_file_write_atomic(path, data, len, err)
               ? -1
               : 0;
}
