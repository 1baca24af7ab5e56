/* Another service's view of salmap: send one image to a broker, wait for
 * its maps, and receive them over the wire, with libsalmap-client only.
 *
 *   cc submit_image.c $(pkg-config --cflags --libs salmap-client)
 *   ./a.out tcp://broker:5555 models/mnist_cnn.onnx digit.png OUT_ON_BROKER
 *
 * The model is uploaded once (by content hash); the image goes inline; the
 * maps come back as files (maps/<id>/<method>.npy, float32 H x W). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "salmap_client.h"

static int on_file(const char *path, const void *data, size_t len, void *u)
{
    (void)data;
    (void)u;
    printf("received %s (%zu bytes)\n", path, len);
    return 0;
}

static void *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    void *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s BROKER MODEL.onnx IMAGE OUT\n", argv[0]);
        return 2;
    }
    size_t len;
    void *png = slurp(argv[3], &len);
    if (!png) {
        fprintf(stderr, "%s: cannot read\n", argv[3]);
        return 1;
    }
    const char *methods[] = {"sal", "lime"};
    sm_client_image image = {.id = "query", .data = png, .len = len};
    sm_client_job job = {.name = "example", .model = argv[2], .images = &image,
                         .n_images = 1, .methods = methods, .n_methods = 2,
                         .out = argv[4], .metrics = 1};
    sm_client *c = sm_client_new(argv[1]);
    char id[SM_CLIENT_ID_MAX];
    sm_client_status st;
    int rc = 1;
    if (!c)
        return 1;
    if (sm_client_submit(c, &job, id) || sm_client_wait(c, id, NULL, NULL, &st) ||
        sm_client_fetch_each(c, id, on_file, NULL))
        fprintf(stderr, "%s\n", sm_client_error(c));
    else if (strcmp(st.state, "done"))
        fprintf(stderr, "job %s %s: %s\n", id, st.state, st.error);
    else
        rc = 0;
    sm_client_destroy(&c);
    free(png);
    return rc;
}
