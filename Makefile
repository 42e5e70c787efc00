# ngx_sendgrid_integrations_module
#
#   make            install what is missing, build the dynamic module
#   make run        the gateway in front of a local mock SendGrid
#   make test       every test: unit, fuzz, and t/ against every nginx of
#                   the version matrix (Debian 12's and 13's, the
#                   nginx-*.tar.gz in NGINX_SOURCES, two sanitizer builds)
#
# See README.md for the rest.

SHELL      := /bin/bash
BUILD      := build
MOD        := ngx_sendgrid_integrations_module
SG_SRCS    := $(wildcard $(MOD)/sg_*.c)
SG_HDRS    := $(wildcard $(MOD)/*.h)
MOD_SRCS   := $(wildcard $(MOD)/*.c) $(SG_HDRS) config

UNIT_SRCS  := $(wildcard t/unit/test_*.c)
UNIT_BINS  := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))
FUZZ_SRCS  := $(wildcard fuzz/fuzz_*.c)
FUZZ_BINS  := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))

# the plain-C parts are held to -Wall -Wextra -Werror with gcc and clang
WARN       := -Wall -Wextra -Werror -Wpointer-arith -Wshadow
UNIT_CC    ?= gcc
UNIT_FLAGS := -g -O1 $(WARN) -fsanitize=address,undefined \
              -fno-sanitize-recover=all -fno-omit-frame-pointer
SG_LIBS    := -ljansson -lz
FUZZ_FLAGS := -g -O1 $(WARN) -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=all
FUZZ_SECONDS ?= 60

PROVE      := prove -I t/lib --timer
TESTS      ?= t/*.t
JOBS       ?= 2

# nginx source tarballs (nginx-*.tar.gz) for the version matrix; relative
# paths are relative to the repository's root
NGINX_SOURCES ?= ../shared/nginx
# the nginx of the matrix to test: an extended regex on their names as
# build/matrix/list gives them (e.g. 1.31.4, -asan$$); empty: all
VERSIONS   ?=

.PHONY: all module static asan deps unit fuzz fuzz-run \
        matrix test test-dynamic test-asan test-matrix run bench clean

all: module

deps:
	@scripts/install-deps

module: deps
	@scripts/build-nginx dynamic

static: deps
	@scripts/build-nginx static

asan: deps
	@scripts/build-nginx asan

# every nginx of the version matrix, listed in build/matrix/list
matrix: deps
	@scripts/build-nginx matrix $(NGINX_SOURCES)

$(BUILD)/unit/%: t/unit/%.c $(wildcard t/unit/*.h) $(SG_SRCS) $(SG_HDRS)
	@mkdir -p $(dir $@)
	$(UNIT_CC) $(UNIT_FLAGS) -o $@ $< $(SG_SRCS) $(SG_LIBS)

unit: deps $(UNIT_BINS)
	$(PROVE) --exec '' $(UNIT_BINS)

$(BUILD)/fuzz/%: fuzz/%.c $(wildcard t/unit/*.h) $(SG_SRCS) $(SG_HDRS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -o $@ $< $(SG_SRCS) $(SG_LIBS)

fuzz: deps $(FUZZ_BINS)

# each target runs FUZZ_SECONDS from its corpus in fuzz/corpus/; new
# inputs go to a scratch directory so the kept corpus stays reviewed
fuzz-run: fuzz
	@set -e; for f in $(FUZZ_BINS); do \
	    name=$$(basename $$f); \
	    scratch=$(BUILD)/fuzz/corpus-$$name; mkdir -p $$scratch; \
	    dict=fuzz/$${name#fuzz_}.dict; \
	    [ -f $$dict ] && dict=-dict=$$dict || dict=; \
	    echo "fuzz: $$name for $(FUZZ_SECONDS)s"; \
	    $$f $$dict -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(BUILD)/fuzz/$$name- \
	        $$scratch fuzz/corpus/$$name 2>$(BUILD)/fuzz/$$name.log \
	    || { tail -50 $(BUILD)/fuzz/$$name.log; exit 1; }; \
	    grep -E '^stat::number_of_executed_units' $(BUILD)/fuzz/$$name.log; \
	done

# the suite against Debian's nginx with the dynamic module
test-dynamic: module
	$(PROVE) -j$(JOBS) $(TESTS)

# the same suite against nginx built with AddressSanitizer and UBSan
test-asan: asan
	TEST_NGINX_BINARY=$(CURDIR)/$(BUILD)/asan/nginx TEST_NGINX_MODULE= \
	    $(PROVE) -j$(JOBS) $(TESTS)

# the suite once against each nginx of the matrix (those VERSIONS
# matches); every one runs, then the versions that failed are named
test-matrix: matrix
	@failed=; ran=0; \
	while read -r name binary module; do \
	    [ -z '$(VERSIONS)' ] || echo "$$name" | grep -Eq -- '$(VERSIONS)' \
	        || continue; \
	    [ "$$module" = - ] && module=; \
	    echo "== t/ against nginx $$name: $$binary $$module"; \
	    TEST_NGINX_BINARY=$$binary TEST_NGINX_MODULE=$$module \
	        $(PROVE) -j$(JOBS) $(TESTS) || failed="$$failed $$name"; \
	    ran=$$((ran + 1)); \
	done < $(BUILD)/matrix/list; \
	[ $$ran -gt 0 ] || { echo "no nginx matches VERSIONS=$(VERSIONS)"; exit 1; }; \
	[ -z "$$failed" ] || { echo "t/ failed on nginx:$$failed"; exit 1; }

# every test: plain-C units (gcc and clang), the suite on every nginx of
# the matrix, the fuzzers
test: deps
	$(MAKE) unit
	$(MAKE) unit UNIT_CC=clang BUILD=$(BUILD)/clang
	$(MAKE) test-matrix
	$(MAKE) fuzz-run

# the gateway on 127.0.0.1:8080 in front of a local mock SendGrid
run: module
	@scripts/run

bench: module
	@bench/run

clean:
	rm -rf $(BUILD)
