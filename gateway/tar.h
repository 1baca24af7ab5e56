/* POSIX ustar headers, for a job's output sent as one tar stream. */
#ifndef SM_GW_TAR_H
#define SM_GW_TAR_H

#include <stddef.h>
#include <stdint.h>

#define SM_GW_TAR_BLOCK 512

/* The header of a regular file path of size bytes (mode 0644, time 0:
 * the same job gives the same bytes). 0, or -1 when path does not fit
 * ustar's name and prefix fields (100 and 155 bytes, split at a '/'). */
int sm_gw_tar_header(uint8_t hdr[SM_GW_TAR_BLOCK], const char *path, uint64_t size);

/* The zero bytes that pad a file of size bytes to whole blocks. */
size_t sm_gw_tar_pad(uint64_t size);

#endif
