/* salmap: saliency maps for image classifiers. Entry point and dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: salmap <command> [options]\n"
    "\n"
    "Saliency maps for image classifiers exported to ONNX.\n"
    "\n"
    "commands:\n"
    "  predict   run a model on a dataset (accuracy, per-image predictions)\n"
    "            or on a preprocessed .npy array (raw outputs)\n"
    "  explain   saliency maps for a dataset, with faithfulness scores\n"
    "  sanity    the model-randomisation sanity check of saliency methods\n"
    "  render    PNGs of an output folder's maps (maps, overlays, inputs)\n"
    "  train     train a classifier on a labelled dataset (ONNX + config)\n"
    "  train-aae train the adversarial autoencoder ABELE explains a\n"
    "            classifier with (three ONNX nets + YAML)\n"
    "  submit    send a job file to a broker; prints the job id\n"
    "  status    a broker's jobs, or one job's state\n"
    "  wait      follow a job until it ends (exit 0 when done)\n"
    "  cancel    stop a job\n"
    "  delete    forget an ended job and remove its files\n"
    "  fetch     copy a job's maps and index from the broker\n"
    "  keygen    write a CURVE key pair (NAME.key, NAME.pub)\n"
    "  figure    an output folder's comparison figure (PNG and SVG)\n"
    "  report    an output folder's HTML report\n"
    "\n"
    "Run `salmap <command> --help` for a command's options.\n";

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "predict") == 0)
        return sm_cli_predict(argc - 1, argv + 1);
    if (strcmp(argv[1], "explain") == 0)
        return sm_cli_explain(argc - 1, argv + 1);
    if (strcmp(argv[1], "sanity") == 0)
        return sm_cli_sanity(argc - 1, argv + 1);
    if (strcmp(argv[1], "render") == 0)
        return sm_cli_render(argc - 1, argv + 1);
    if (strcmp(argv[1], "train") == 0)
        return sm_cli_train(argc - 1, argv + 1);
    if (strcmp(argv[1], "train-aae") == 0)
        return sm_cli_train_aae(argc - 1, argv + 1);
    if (strcmp(argv[1], "submit") == 0)
        return sm_cli_submit(argc - 1, argv + 1);
    if (strcmp(argv[1], "status") == 0)
        return sm_cli_status(argc - 1, argv + 1);
    if (strcmp(argv[1], "wait") == 0)
        return sm_cli_wait(argc - 1, argv + 1);
    if (strcmp(argv[1], "cancel") == 0)
        return sm_cli_cancel(argc - 1, argv + 1);
    if (strcmp(argv[1], "delete") == 0)
        return sm_cli_delete(argc - 1, argv + 1);
    if (strcmp(argv[1], "fetch") == 0)
        return sm_cli_fetch(argc - 1, argv + 1);
    if (strcmp(argv[1], "keygen") == 0)
        return sm_cli_keygen(argc - 1, argv + 1);
    if (strcmp(argv[1], "figure") == 0)
        return sm_cli_figure(argc - 1, argv + 1);
    if (strcmp(argv[1], "report") == 0)
        return sm_cli_report(argc - 1, argv + 1);
    fprintf(stderr, "salmap: unknown command '%s'\n\n%s", argv[1], usage);
    return 2;
}
