/* ustar headers (gateway/tar.h; POSIX.1-2001, pax "ustar Interchange Format"). */
#include "gateway/tar.h"

#include <stdio.h>
#include <string.h>

int sm_gw_tar_header(uint8_t hdr[SM_GW_TAR_BLOCK], const char *path, uint64_t size)
{
    size_t n = strlen(path), split = 0;
    if (n > 100) { /* the longest prefix of at most 155 bytes ending before a '/' */
        for (size_t k = n - 1; k > 0; k--)
            if (path[k] == '/' && k <= 155 && n - k - 1 <= 100 && n - k - 1 > 0) {
                split = k;
                break;
            }
        if (!split)
            return -1;
    }
    if (size > 077777777777ULL) /* 11 octal digits */
        return -1;
    memset(hdr, 0, SM_GW_TAR_BLOCK);
    char *h = (char *)hdr;
    if (split) {
        memcpy(h + 345, path, split);
        memcpy(h, path + split + 1, n - split - 1);
    } else {
        memcpy(h, path, n);
    }
    snprintf(h + 100, 8, "%07o", 0644);
    snprintf(h + 108, 8, "%07o", 0);
    snprintf(h + 116, 8, "%07o", 0);
    snprintf(h + 124, 12, "%011llo", (unsigned long long)size);
    snprintf(h + 136, 12, "%011o", 0);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6); /* with its NUL */
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8); /* the checksum counts its own field as spaces */
    unsigned sum = 0;
    for (size_t k = 0; k < SM_GW_TAR_BLOCK; k++)
        sum += hdr[k];
    snprintf(h + 148, 8, "%06o", sum);
    h[155] = ' ';
    return 0;
}

size_t sm_gw_tar_pad(uint64_t size)
{
    return (size_t)((SM_GW_TAR_BLOCK - size % SM_GW_TAR_BLOCK) % SM_GW_TAR_BLOCK);
}
