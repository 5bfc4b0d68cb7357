# hogrec - one entry point.  `make help` lists the targets.
#
# Layout: library code in common/ store/ ingest/ models/ models/nn/ trainer/
# is archived into $(BUILD)/libhogrec.a; every file named main_<prog>.c
# becomes $(BIN)/<prog>; tests/unit/test_<x>.c becomes $(BUILD)/tests/test_<x>.
# Sanitizer and fuzz builds use their own BUILD and BIN directories.
#
# Debian packages come in three sets, each installed by its own target and
# only when missing: deps (build, run, test), deps-dev (clang, sanitizer
# runtimes, clang-format: asan, tsan, fuzz, format-check), deps-bench
# (PyTorch and the timing tool for make bench).

CC      ?= cc
BUILD   ?= build
BIN     ?= $(if $(filter build,$(BUILD)),bin,$(BUILD)/bin)
OPT     ?= -O3 -g
SAN     ?=
WARN    = -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
          -Wmissing-prototypes -Wvla -Wwrite-strings -Wformat=2 -fno-common \
          -Werror
# -ffp-contract=fast: -std=c11 alone turns contraction off, and every
# a * b + c of the kernels stays a multiply and an add; fused, the GEMM tiles
# (models/nn/gemm.c) run twice as fast.
CFLAGS  = -std=c11 -D_GNU_SOURCE -pthread -fno-math-errno -ffp-contract=fast -I. $(WARN) $(OPT) $(SAN) -MMD -MP
LDLIBS  = -lopenblas -llmdb -lmsgpackc -ljansson -lz -lsystemd -linih -lmicrohttpd -lm -lpthread
TEST_LDLIBS = -lcmocka $(LDLIBS)

LIB_DIRS  = common store ingest models models/nn trainer serve
ALL_SRC   = $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
MAIN_SRC  = $(foreach d,$(LIB_DIRS),$(wildcard $(d)/main_*.c))
LIB_SRC   = $(filter-out $(MAIN_SRC),$(ALL_SRC))
LIB_OBJ   = $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB       = $(BUILD)/libhogrec.a
PROGS     = $(foreach f,$(MAIN_SRC),$(BIN)/$(patsubst main_%.c,%,$(notdir $(f))))
TEST_SRC  = $(wildcard tests/unit/test_*.c)
TESTS     = $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC  ?= $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_TIME ?= 20

.PHONY: all run report test check bench asan tsan fuzz deps deps-dev deps-bench clean help unit \
        format format-check

all: $(PROGS) $(TESTS)

help:
	@echo "make deps         install what build, run and test need (Debian packages, as root)"
	@echo "make              build programs into $(BIN)/ and tests into $(BUILD)/"
	@echo "make run          the main job: synthetic ml-1m (or DATA=dir) -> store -> model -> metrics"
	@echo "                  (one run directory per data set under build/run/; MODEL=, EPOCHS=)"
	@echo "make report RUN=dir  a run directory's learning curves as RUN/report.svg (gnuplot)"
	@echo "make test         every test: unit (cmocka), integration and interop scripts"
	@echo "make deps-dev     install clang, sanitizer runtimes and clang-format (for the next four)"
	@echo "make asan         build and test under AddressSanitizer + UBSan (clang)"
	@echo "make tsan         build and test under ThreadSanitizer (clang)"
	@echo "make fuzz         run each libFuzzer target for FUZZ_TIME seconds (clang)"
	@echo "make format       apply .clang-format; make format-check lists files that differ"
	@echo "make deps-bench   install PyTorch and the timing tool make bench needs"
	@echo "make bench        benchmarks beside pandas and PyTorch references, JSON lines on stdout"
	@echo "make clean        remove build/ and bin/ (build/run too: stores and models of make run)"

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

define prog_rule
$(BIN)/$(patsubst main_%.c,%,$(notdir $(1))): $(BUILD)/$(1:.c=.o) $(LIB)
	@mkdir -p $(BIN)
	$$(CC) $$(CFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach f,$(MAIN_SRC),$(eval $(call prog_rule,$(f))))

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(TEST_LDLIBS)

# The main job end to end: data -> store -> trained model -> test metrics.
# DATA=path/to/ml-1m uses a real download; without it the synthetic
# generator writes an ml-1m-shaped data set (again only when bin/mlgen is
# newer) and prints its oracle AUC.  Each data set has its own run
# directory, build/run/<name of DATA> (build/run/synthetic without DATA):
# store.lmdb and model/ there are replaced by the next run on the same data
# (it says so), never by a run on other data.  MODEL (dssm) and EPOCHS (2)
# choose the training run; metrics are JSON lines on stdout and in
# RUN_DIR/model/metrics.jsonl.
DATA ?=
RUN_NAME = $(if $(DATA),$(notdir $(patsubst %/,%,$(DATA))),synthetic)
RUN_DIR ?= build/run/$(RUN_NAME)
MODEL ?= dssm
EPOCHS ?= 2
run: all
	@set -e; data="$(DATA)"; \
	if [ -n "$$data" ] && [ ! -d "$$data" ]; then \
	  echo "make run: DATA='$$data' is not a directory" >&2; exit 66; fi; \
	mkdir -p $(RUN_DIR); \
	if [ -z "$$data" ]; then data=$(RUN_DIR)/ml-1m; \
	  if [ ! -f $$data/ratings.dat ] || [ $(BIN)/mlgen -nt $$data/ratings.dat ]; then \
	    rm -rf $$data; $(BIN)/mlgen -o $$data; fi; \
	  $(BIN)/mlgen --oracle $$data; fi; \
	if [ -e $(RUN_DIR)/store.lmdb ] || [ -e $(RUN_DIR)/model ]; then \
	  echo "make run: replacing the previous run's store and model in $(RUN_DIR)" >&2; fi; \
	$(BIN)/ingest --force --split user -o $(RUN_DIR)/store.lmdb $$data; \
	rm -rf $(RUN_DIR)/model; \
	$(BIN)/trainer --data $(RUN_DIR)/store.lmdb --model $(MODEL) --epochs $(EPOCHS) \
	  --out $(RUN_DIR)/model

# Every test: unit programs, then integration/interop scripts.  The runner
# prints one closing line "N passed, N failed".
test: all
	@BUILD=$(BUILD) BIN=$(BIN) tests/run.sh

# A run's learning curves: bin/trainer report (trainer/report.h).
report: $(BIN)/trainer
	@[ -n "$(RUN)" ] || { echo "make report RUN=dir (a bin/trainer --out directory)" >&2; exit 64; }
	$(BIN)/trainer report $(RUN)

unit: $(TESTS)
	@BUILD=$(BUILD) BIN=$(BIN) tests/run.sh --unit-only

check: test

bench: all
	@BIN=$(BIN) bench/run.sh

asan:
	HOGREC_SANITIZER=address $(MAKE) CC=clang BUILD=build/asan BIN=build/asan/bin OPT="-O1 -g" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" test

# The suppressions cover only the two Hogwild update functions (see the file).
tsan:
	TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=1 $(TSAN_OPTIONS)" \
	HOGREC_SANITIZER=thread $(MAKE) CC=clang BUILD=build/tsan BIN=build/tsan/bin OPT="-O1 -g" \
	  SAN="-fsanitize=thread" test

# libFuzzer targets: each links the library built with coverage and ASan.
# allocator_may_return_null: msgpack-c allocates an array's objects when it
# reads the header, so a forged header asks for up to 64 GiB; in production
# that malloc fails and the decoder reports a malformed record, which is the
# behaviour under test (ASan would otherwise abort on the request itself).
FUZZ_BUILD = build/fuzz
FUZZ_SAN   = -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
fuzz:
	$(MAKE) CC=clang BUILD=$(FUZZ_BUILD) BIN=$(FUZZ_BUILD)/bin OPT="-O1 -g" SAN="$(FUZZ_SAN)" $(FUZZ_BUILD)/libhogrec.a
	@mkdir -p $(FUZZ_BUILD)/targets
	@set -e; for f in $(FUZZ_SRC); do \
	  t=$$(basename $$f .c); \
	  clang -std=c11 -D_GNU_SOURCE -I. $(WARN) -O1 -g -fsanitize=fuzzer,address,undefined \
	    -o $(FUZZ_BUILD)/targets/$$t $$f $(FUZZ_BUILD)/libhogrec.a $(LDLIBS); \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	  echo "fuzz: $$t for $(FUZZ_TIME)s"; \
	  ASAN_OPTIONS=allocator_may_return_null=1 \
	  $(FUZZ_BUILD)/targets/$$t -max_total_time=$(FUZZ_TIME) -max_len=4096 -malloc_limit_mb=4096 -artifact_prefix=$(FUZZ_BUILD)/$$t- \
	    $(FUZZ_BUILD)/corpus/$$t tests/fuzz/seeds/$$t 2>$(FUZZ_BUILD)/$$t.log \
	    || { tail -40 $(FUZZ_BUILD)/$$t.log; exit 1; }; \
	  tail -1 $(FUZZ_BUILD)/$$t.log; \
	done

# Debian packages, installed without recommends and only when missing.
# deps: compiler, the libraries hogrec links (libmicrohttpd: bin/recommend
# --serve), curl (the server's integration tests are its client), and the
# Python modules the interop tests read stores and checkpoints with (pandas:
# the test that compares the store with bench/ingest_pandas.py's record for
# record).
DEB_PKGS       = build-essential liblmdb-dev libmsgpack-dev libopenblas-dev libcmocka-dev \
                 libjansson-dev zlib1g-dev libinih-dev libsystemd-dev gnuplot-nox \
                 libmicrohttpd-dev curl \
                 python3 python3-lmdb python3-msgpack python3-numpy python3-pandas
# deps-dev: clang with its sanitizer and libFuzzer runtimes (a recommend of
# clang's, so named here), llvm-symbolizer for readable reports, clang-format.
DEB_PKGS_DEV   = clang libclang-rt-dev llvm clang-format
# deps-bench: the PyTorch references, /usr/bin/time for peak memory, wrk
# (HTTP load on the recommendation server).
DEB_PKGS_BENCH = python3-torch time wrk
define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "$(2): all present"; fi
endef
deps:
	$(call apt_install,$(DEB_PKGS),deps)
deps-dev:
	$(call apt_install,$(DEB_PKGS_DEV),deps-dev)
deps-bench:
	$(call apt_install,$(DEB_PKGS_BENCH),deps-bench)

# One code format (.clang-format): `make format` applies it to every C file
# git tracks; `make format-check` (run by CI) lists the files that differ.
FORMAT_SRC = $(shell git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	@bad=$$(for f in $(FORMAT_SRC); do clang-format "$$f" | cmp -s - "$$f" || echo "$$f"; done); \
	if [ -n "$$bad" ]; then echo "not in the project's format (run make format):" $$bad; exit 1; fi; \
	echo "format-check: $(words $(FORMAT_SRC)) files ok"

clean:
	rm -rf build bin

-include $(LIB_OBJ:.o=.d) $(MAIN_SRC:%.c=$(BUILD)/%.d) $(TESTS:=.d)
