# hogrec - one entry point.  `make help` lists the targets.
#
# Layout: library code in common/ store/ ingest/ (later trainer/ models/) is
# archived into $(BUILD)/libhogrec.a; every file named main_<prog>.c becomes
# $(BIN)/<prog>; tests/unit/test_<x>.c becomes $(BUILD)/tests/test_<x>.
# Sanitizer builds use their own BUILD and BIN directories.

CC      ?= cc
BUILD   ?= build
BIN     ?= $(if $(filter build,$(BUILD)),bin,$(BUILD)/bin)
OPT     ?= -O3 -g
SAN     ?=
WARN    = -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
          -Wmissing-prototypes -Wvla -Wwrite-strings -Wformat=2 -fno-common \
          -Werror
CFLAGS  = -std=c11 -D_GNU_SOURCE -pthread -fno-math-errno -I. $(WARN) $(OPT) $(SAN) -MMD -MP
LDLIBS  = -lopenblas -llmdb -lmsgpackc -ljansson -lz -lsystemd -linih -lm -lpthread
TEST_LDLIBS = -lcmocka $(LDLIBS)

LIB_DIRS  = common store ingest models models/nn trainer
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

.PHONY: all run test check bench asan tsan fuzz deps clean help unit format format-check

all: $(PROGS) $(TESTS)

help:
	@echo "make deps    install the Debian packages hogrec needs (as root)"
	@echo "make         build programs into $(BIN)/ and tests into $(BUILD)/"
	@echo "make run     the main job: synthetic ml-1m (or DATA=dir) -> store -> model -> metrics"
	@echo "make test    run every test (unit, integration, interop, fuzz smoke)"
	@echo "make bench   benchmarks, JSON lines on stdout"
	@echo "make asan    build and test under AddressSanitizer + UBSan (clang)"
	@echo "make tsan    build and test under ThreadSanitizer (clang)"
	@echo "make fuzz    run each libFuzzer target for FUZZ_TIME seconds (clang)"

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
# generator writes an ml-1m-shaped data set (once) and prints its oracle AUC.
# MODEL (dssm) and EPOCHS (2) choose the training run; metrics are JSON
# lines on stdout and in $(RUN_DIR)/model/metrics.jsonl.
DATA ?=
RUN_DIR ?= build/run
MODEL ?= dssm
EPOCHS ?= 2
run: all
	@set -e; mkdir -p $(RUN_DIR); data="$(DATA)"; \
	if [ -z "$$data" ]; then data=$(RUN_DIR)/ml-1m; \
	  if [ ! -f $$data/ratings.dat ] || [ $(BIN)/mlgen -nt $$data/ratings.dat ]; then \
	    rm -rf $$data; $(BIN)/mlgen -o $$data; fi; \
	  $(BIN)/mlgen --oracle $$data; fi; \
	$(BIN)/ingest --force --split user -o $(RUN_DIR)/store.lmdb $$data; \
	rm -rf $(RUN_DIR)/model; \
	$(BIN)/trainer --data $(RUN_DIR)/store.lmdb --model $(MODEL) --epochs $(EPOCHS) \
	  --out $(RUN_DIR)/model

# Every test: unit programs, then integration/interop scripts.  The runner
# prints one closing line "N passed, N failed".
test: all
	@BUILD=$(BUILD) BIN=$(BIN) tests/run.sh

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

# Debian packages; installs only what is missing.
DEB_PKGS = build-essential clang llvm pkg-config time liblmdb-dev lmdb-utils \
           libmsgpack-dev libopenblas-dev libcmocka-dev libjansson-dev zlib1g-dev \
           libinih-dev libsystemd-dev python3 python3-lmdb python3-msgpack \
           python3-numpy python3-pandas python3-torch
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: all present"; fi

# One code format (.clang-format): `make format` applies it to every C file
# git tracks; `make format-check` (run by CI) lists the files that differ.
FORMAT_SRC = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	@bad=$$(for f in $(FORMAT_SRC); do clang-format "$$f" | cmp -s - "$$f" || echo "$$f"; done); \
	if [ -n "$$bad" ]; then echo "not in the project's format (run make format):" $$bad; exit 1; fi; \
	echo "format-check: $(words $(FORMAT_SRC)) files ok"

clean:
	rm -rf build bin

-include $(LIB_OBJ:.o=.d) $(MAIN_SRC:%.c=$(BUILD)/%.d)
