/* Grid: cells x cells rectangles; row and column boundaries at
 * floor(i * size / cells), so cell sizes differ by at most one pixel.
 * Labels in row-major order of the cells. */
#include "segment/segment.h"

int sm_segment_grid(const sm_segment_params *p, int h, int w,
                    int32_t *labels, sm_err *err)
{
    (void)err;
    long long g = p->grid.cells;
    for (int y = 0; y < h; y++) {
        int32_t row = (int32_t)(y * g / h);
        for (int x = 0; x < w; x++)
            labels[(long long)y * w + x] = (int32_t)(row * g + x * g / w);
    }
    return (int)(g * g);
}
